//! The server's typed configuration, read from `msgc_server.conf`:
//! `msgc_server { }` and `msgcserver_listener { Listen ... }`.

use std::collections::BTreeMap;
use std::time::Duration;

use service_kit::listen::{ListenAddr, ListenSpec};
use service_kit::tls::ClientTlsFiles;

/// Momentum's default msgc port.
pub const DEFAULT_PORT: u16 = 4809;

/// Everything a server needs to run, with Momentum's defaults.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// This server's name: a key of `peers`.
    pub name: String,
    /// Every server of the cluster (this one included): name -> `host:port` to dial.
    pub peers: BTreeMap<String, String>,
    /// `connect_timeout`: how long one dial may take.
    pub connect_timeout: Duration,
    /// `keepalive_interval`: a quiet link sends a keepalive every half
    /// interval; 1.5 intervals of silence cut it.
    pub keepalive_interval: Duration,
    /// `reconnect_interval`: wait between dials of a lost peer.
    pub reconnect_interval: Duration,
    /// `idle_timeout`: a session that sends nothing (not even its hello) for
    /// this long before its hello is cut.
    pub idle_timeout: Duration,
    /// `max_backlog`: queued messages after which a client or peer link is cut.
    pub max_backlog: usize,
    /// `max_peer_bytes`: bytes queued for one peer after which its link is
    /// cut (not a Momentum option; view-change frames can be large, so peer
    /// queues are bounded in bytes as well as in messages).
    pub max_peer_bytes: usize,
    /// `messages_per_iter`: frames the core handles per turn before yielding.
    pub messages_per_iter: usize,
    /// `tcpbuf_size`: socket buffer and HTTP/2 window size for peer links.
    pub tcpbuf_size: usize,
    /// `max_message_size`: largest payload accepted (not a Momentum option).
    pub max_payload: usize,
    /// `debug_level`, as a tracing filter.
    pub log_level: String,
    /// The enabled `Listen` sockets of `msgcserver_listener`.
    pub listens: Vec<ListenSpec>,
    /// How peers are dialled: `None` plaintext; else TLS with the first
    /// enabled TCP `Listen`'s certificate, verifying each peer's certificate
    /// names it. With it set, accepted peer links must be TLS with a
    /// certificate naming the peer their hello claims.
    pub peer_tls: Option<ClientTlsFiles>,
    /// `msgcserver_listener { admin_listen }`: where the admin HTTP listener
    /// serves Prometheus `/metrics`; `None` (the default) is off.
    pub admin_listen: Option<std::net::SocketAddr>,
}

impl ServerConfig {
    /// A bus of `peers` with every default timer; `name` is this server.
    pub fn with_peers(name: &str, peers: BTreeMap<String, String>) -> Self {
        Self {
            name: name.to_owned(),
            peers,
            connect_timeout: Duration::from_secs(60),
            keepalive_interval: Duration::from_secs(5),
            reconnect_interval: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
            max_backlog: 5000,
            max_peer_bytes: 64 << 20,
            messages_per_iter: 20,
            tcpbuf_size: 131_072,
            max_payload: 1 << 20,
            log_level: "error".to_owned(),
            listens: vec![ListenSpec::plain(ListenAddr::Tcp(
                std::net::SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)),
            ))],
            peer_tls: None,
            admin_listen: None,
        }
    }

    /// Digest of the `peers` dictionary: servers with different peer lists
    /// refuse each other.
    pub fn cluster_digest(&self) -> String {
        // FNV-1a: stable across builds and platforms, unlike std's hasher.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for (name, addr) in &self.peers {
            for b in name.bytes().chain([0]).chain(addr.bytes()).chain([0]) {
                hash ^= u64::from(b);
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
        }
        format!("{hash:016x}")
    }

    /// Peers other than this server.
    pub fn others(&self) -> impl Iterator<Item = (&String, &String)> {
        self.peers
            .iter()
            .filter(move |(name, _)| **name != self.name)
    }

    /// How many ops this server may have submitted but not yet stable: the
    /// flow-control window. All servers together keep at most a quarter of
    /// `max_backlog` in flight, so a session held at its high watermark
    /// (three quarters) never passes `max_backlog` while the bus waits for it.
    pub fn submit_window(&self) -> usize {
        (self.max_backlog / (4 * self.peers.len().max(1))).max(16)
    }
}

/// The configuration used when no file is given.
pub const EMBEDDED_DEFAULT: &str = include_str!("default.conf");

/// Why a configuration was refused. Displays as the rendered diagnostics
/// (file:line:col, source line, caret) or one clear line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Syntax, include, schema or type errors, with locations.
    #[error("{0}")]
    Invalid(#[from] confparse::Diagnostics),
    /// A whole-configuration rule was broken.
    #[error("{0}")]
    Refused(String),
}

/// The scopes msgc-server owns (`msgc_server`, `msgcserver_listener`,
/// `msgc_client`), with Momentum's defaults.
pub fn schema() -> confparse::Schema {
    confparse::momentum::msgc_server_schema()
}

/// Where the configuration comes from.
#[derive(Debug, Clone, Default)]
pub struct Source {
    /// A file, or `None` for [`EMBEDDED_DEFAULT`].
    pub file: Option<std::path::PathBuf>,
    /// `--name`, if given.
    pub name: Option<String>,
    /// Environment: `EC_NODE_NAME`, and `EC_CONF__<SCOPE>__<OPTION>` overrides.
    pub env: Vec<(String, String)>,
}

impl Source {
    /// A source that reads the process environment.
    pub fn from_process(file: Option<std::path::PathBuf>, name: Option<String>) -> Self {
        Self {
            file,
            name,
            env: std::env::vars().collect(),
        }
    }
}

fn int_in<T: TryFrom<i64>>(
    scope: confparse::ScopeRef<'_>,
    option: &str,
    min: i64,
) -> Result<T, ConfigError> {
    let value = scope
        .get_int(option)
        .map_err(|d| confparse::Diagnostics(vec![d]))?
        .unwrap_or(min);
    if value < min {
        return Err(ConfigError::Refused(format!(
            "msgc_server {option} must be at least {min}, not {value}"
        )));
    }
    T::try_from(value)
        .map_err(|_| ConfigError::Refused(format!("msgc_server {option} = {value} is too large")))
}

/// The dial address of a peer: `host` (then `port` applies), `host:port`,
/// `[v6]:port`, or a bare IPv6 address.
pub fn peer_address(value: &str, port: u16) -> String {
    if value.starts_with('[') {
        if value.contains("]:") {
            value.to_owned()
        } else {
            format!("{value}:{port}")
        }
    } else {
        match value.matches(':').count() {
            0 => format!("{value}:{port}"),
            1 => value.to_owned(),
            _ => format!("[{value}]:{port}"),
        }
    }
}

/// Loads, validates and types the configuration.
pub fn load(source: &Source) -> Result<ServerConfig, ConfigError> {
    let loader = confparse::Loader::new();
    let mut conf = match &source.file {
        Some(path) => loader.load_file(path)?,
        None => loader.load_str("<embedded msgc_server.conf>", EMBEDDED_DEFAULT, None)?,
    };
    conf.apply_overrides(confparse::env_overrides_from(source.env.iter().cloned()))?;
    conf.validate(&schema())?;
    let root = conf.root();
    let env_name = source
        .env
        .iter()
        .find(|(k, _)| k == service_kit::node_name::NODE_NAME_ENV)
        .map(|(_, v)| v.as_str());
    let name = service_kit::node_name::resolve(source.name.as_deref(), env_name);

    let Some(scope) = root.scope("msgc_server") else {
        return Err(ConfigError::Refused(
            "msgc_server { peers = [ ... ] } is missing".to_owned(),
        ));
    };
    let diag = |d| ConfigError::Invalid(confparse::Diagnostics(vec![d]));
    let port: u16 = int_in(scope, "port", 1)?;
    let duration = |option: &str| -> Result<Duration, ConfigError> {
        Ok(scope
            .get_duration(option)
            .map_err(diag)?
            .unwrap_or_default())
    };

    let mut peers = BTreeMap::new();
    match scope.option("peers") {
        Some(option) => {
            let entries = scope.get_dict("peers").map_err(diag)?.unwrap_or_default();
            for (peer, addr) in entries {
                if peer != peer.to_lowercase() {
                    return Err(ConfigError::Refused(format!(
                        "{}: msgc_server peer name {peer:?} is not lower-case; msgc peer names must be lower-case",
                        option.location()
                    )));
                }
                peers.insert(peer, peer_address(&addr, port));
            }
        }
        None if source.file.is_none() => {
            peers.insert(name.to_lowercase(), format!("127.0.0.1:{port}"));
        }
        None => {
            return Err(ConfigError::Refused(
                "msgc_server { peers = [ ... ] } is missing".to_owned(),
            ));
        }
    }
    let name = if source.file.is_none() && scope.option("peers").is_none() {
        name.to_lowercase()
    } else {
        name
    };
    if !peers.contains_key(&name) {
        let known: Vec<&str> = peers.keys().map(String::as_str).collect();
        return Err(ConfigError::Refused(format!(
            "this server's name {name:?} is not in msgc_server peers ({}); set --name or EC_NODE_NAME",
            known.join(", ")
        )));
    }

    let listens = service_kit::listen::read_listens(root, "msgcserver_listener")?;
    let listens: Vec<_> = listens.into_iter().filter(|l| l.enabled).collect();
    if listens.is_empty() {
        return Err(ConfigError::Refused(
            "msgcserver_listener has no enabled Listen".to_owned(),
        ));
    }
    let admin_listen = service_kit::metrics::read_admin_listen(root, "msgcserver_listener")
        .map_err(|d| ConfigError::Invalid(confparse::Diagnostics(vec![d])))?;
    let peer_tls = service_kit::listen::dial_tls(&listens, "msgcserver_listener")
        .map_err(|e| ConfigError::Refused(e.to_string()))?;
    let debug_level = scope
        .get_str("debug_level")
        .map_err(diag)?
        .unwrap_or_default();
    Ok(ServerConfig {
        name,
        peers,
        connect_timeout: duration("connect_timeout")?,
        keepalive_interval: duration("keepalive_interval")?.max(Duration::from_millis(10)),
        reconnect_interval: duration("reconnect_interval")?,
        idle_timeout: duration("idle_timeout")?,
        max_backlog: int_in(scope, "max_backlog", 1)?,
        max_peer_bytes: int_in(scope, "max_peer_bytes", 1)?,
        messages_per_iter: int_in(scope, "messages_per_iter", 1)?,
        tcpbuf_size: int_in(scope, "tcpbuf_size", 0)?,
        max_payload: int_in(scope, "max_message_size", 1)?,
        log_level: service_kit::telemetry::level_from_debug_level(&debug_level).to_owned(),
        listens,
        peer_tls,
        admin_listen,
    })
}
