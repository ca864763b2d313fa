//! The node's typed configuration, read from `ecelerity-cluster.conf` (and what
//! it includes, usually `msgc_server.conf`) through `confparse`.
//!
//! Owned scopes (mistakes in them are errors with file:line):
//! * `ECCluster_Listener { Listen "..." { } ... }` — the listener options of
//!   `confparse::momentum::listener`;
//! * `cluster { }` — `nodename`, `nodeaddr`, `cluster_group`, `control_group`,
//!   `subcluster`, `node_type`, `logs`, `heartbeats_per_sec`,
//!   `view_mature_time`, `enabled`, `debug_level`, and for the data paths
//!   `state_dir`, `spool_dir`, `max_message_size`. Its sub-scopes belong to
//!   modules this node does not implement: `Topology` is checked against
//!   Momentum's options, `Replicate` is accepted unchecked (the schema is
//!   `confparse::momentum::cluster_listener_schema`);
//! * `msgc_client { }` — `server`, `bind_address` and the msgc timers.
//!
//! Every other scope (`msgc_server`, `msgcserver_listener`, `Security`,
//! `ec_logger`, ...) is accepted and ignored.
//!
//! Decisions where Momentum is silent:
//! * `nodename`: the config's value, else `--name`, else `EC_NODE_NAME`, else the
//!   host name up to its first dot.
//! * `nodeaddr`: when unset, the IP of the first enabled, non-wildcard TCP
//!   `Listen` (e.g. `10.0.0.5` of `Listen "10.0.0.5:4802"`), else `127.0.0.1`
//!   (fine on one host; in a real cluster set it, e.g. from the pod IP with
//!   `EC_CONF__CLUSTER__NODEADDR`).
//! * The advertised listener address is `nodeaddr:port`, where `port` is the
//!   bound port of the first enabled TCP `Listen` whose IP is `nodeaddr` or a
//!   wildcard, else of the first enabled TCP `Listen` ([`NodeConfig::advertised_address`]).
//! * `subcluster` unset: the node is in subcluster `default` (group `ec_sc_default`).
//! * `node_type` unset: `node`.
//! * `heartbeats_per_sec` and `view_mature_time` are accepted and checked but
//!   have no effect: membership comes from the bus's group views.
//! * `enabled = false`: the node serves its listener but does not join the bus.
//! * `logs` names must be plain names (letters, digits, `_ - .`, not starting
//!   with `.`): they become directory names of checkpoints and pulled copies.
//! * `state_dir` ([`DEFAULT_STATE_DIR`]) holds log checkpoints; `spool_dir`
//!   ([`DEFAULT_SPOOL_DIR`]) receives moved messages; both are created when
//!   first needed, so a node whose directories cannot be created still serves
//!   everything else.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use confparse::{Diagnostic, Diagnostics, ScopeRef};
use service_kit::listen::{ListenAddr, ListenOptions, ListenSpec};

/// Momentum's default ECCluster_Listener port.
pub const DEFAULT_PORT: u16 = 4802;
/// Momentum's default msgc port.
pub const DEFAULT_MSGC_SERVER: &str = "127.0.0.1:4809";
/// `nodeaddr` when neither the config nor a Listen gives one.
pub const FALLBACK_NODEADDR: &str = "127.0.0.1";
/// Subcluster of a node that names none.
pub const DEFAULT_SUBCLUSTER: &str = "default";
/// Node type of a node that names none.
pub const DEFAULT_NODE_TYPE: &str = "node";

/// Where log checkpoints live when `cluster { state_dir }` is unset.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/ecelerity/cluster";
/// Where moved messages land when `cluster { spool_dir }` is unset.
pub const DEFAULT_SPOOL_DIR: &str = "/var/spool/ecelerity/cluster";
/// `cluster { max_message_size }` when unset: 64 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 64 << 20;

/// The configuration used when no file is given: listen `*:4802`, msgc server
/// `127.0.0.1:4809`.
pub const EMBEDDED_DEFAULT: &str = include_str!("default.conf");

/// How this node's msgc client reaches the bus (`msgc_client { }`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsgcClientConfig {
    /// `server`: msgc servers (`host:port`), tried in turn.
    pub servers: Vec<String>,
    /// `bind_address`: local IP to dial from (None = the OS chooses).
    pub bind_address: Option<IpAddr>,
    /// `connect_timeout`: how long one dial (and the session's welcome) may take.
    pub connect_timeout: Duration,
    /// `keepalive_interval`: HTTP/2 keepalive on the link; three intervals of
    /// silence cut it.
    pub keepalive_interval: Duration,
    /// `reconnect_interval`: wait before dialling again once every server failed.
    pub reconnect_interval: Duration,
}

impl Default for MsgcClientConfig {
    fn default() -> Self {
        Self {
            servers: vec![DEFAULT_MSGC_SERVER.to_owned()],
            bind_address: None,
            connect_timeout: Duration::from_secs(60),
            keepalive_interval: Duration::from_secs(5),
            reconnect_interval: Duration::from_secs(5),
        }
    }
}

/// Everything a node needs to run, with Momentum's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// `nodename`: this node's name in the cluster.
    pub nodename: String,
    /// `nodeaddr`: the host or IP peers dial to reach this node's listener.
    pub nodeaddr: String,
    /// `cluster_group` (`ec_cluster`): the group whose membership is the cluster.
    pub cluster_group: String,
    /// `control_group` (`ec_console`): console commands fanned out to nodes.
    pub control_group: String,
    /// `subcluster` ([`DEFAULT_SUBCLUSTER`]); the node joins `ec_sc_<subcluster>`.
    pub subcluster: String,
    /// `node_type` ([`DEFAULT_NODE_TYPE`]), advertised in the node record.
    pub node_type: String,
    /// `logs`: logs this node offers for pulling, name -> path.
    pub logs: BTreeMap<String, String>,
    /// `state_dir` ([`DEFAULT_STATE_DIR`]): log checkpoints, one file per
    /// (log, subscriber).
    pub state_dir: PathBuf,
    /// `spool_dir` ([`DEFAULT_SPOOL_DIR`]): moved messages arrive in
    /// `incoming/` by way of `tmp/`.
    pub spool_dir: PathBuf,
    /// `max_message_size` ([`DEFAULT_MAX_MESSAGE_SIZE`]): the largest message
    /// body a move may carry, in bytes.
    pub max_message_size: u64,
    /// `heartbeats_per_sec` (1): accepted, no effect.
    pub heartbeats_per_sec: u32,
    /// `view_mature_time` (5 s): accepted, no effect.
    pub view_mature_time: Duration,
    /// `enabled` (true): join the bus.
    pub enabled: bool,
    /// `debug_level`, as a tracing filter.
    pub log_level: String,
    /// Every `Listen` of `ECCluster_Listener`, disabled ones included.
    pub listens: Vec<ListenSpec>,
    /// `msgc_client { }`.
    pub msgc: MsgcClientConfig,
}

impl NodeConfig {
    /// A node named `nodename` on `127.0.0.1:0` using the msgc `servers`, every
    /// other option at its default (for tests and embedding).
    pub fn new(nodename: &str, servers: Vec<String>) -> Self {
        Self {
            nodename: nodename.to_owned(),
            nodeaddr: FALLBACK_NODEADDR.to_owned(),
            cluster_group: "ec_cluster".to_owned(),
            control_group: "ec_console".to_owned(),
            subcluster: DEFAULT_SUBCLUSTER.to_owned(),
            node_type: DEFAULT_NODE_TYPE.to_owned(),
            logs: BTreeMap::new(),
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            spool_dir: PathBuf::from(DEFAULT_SPOOL_DIR),
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            heartbeats_per_sec: 1,
            view_mature_time: Duration::from_secs(5),
            enabled: true,
            log_level: "error".to_owned(),
            listens: vec![ListenSpec {
                addr: ListenAddr::Tcp(std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
                options: ListenOptions::default(),
                enabled: true,
            }],
            msgc: MsgcClientConfig {
                servers,
                ..MsgcClientConfig::default()
            },
        }
    }

    /// The subcluster's group, `ec_sc_<subcluster>`.
    pub fn subcluster_group(&self) -> String {
        format!("ec_sc_{}", self.subcluster)
    }

    /// The groups the node joins, in order, without repeats.
    pub fn groups(&self) -> Vec<String> {
        let mut groups: Vec<String> = Vec::new();
        for g in [
            self.cluster_group.clone(),
            self.control_group.clone(),
            self.subcluster_group(),
        ] {
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
        groups
    }

    /// The enabled `Listen`s, the ones that bind.
    pub fn enabled_listens(&self) -> Vec<ListenSpec> {
        self.listens.iter().filter(|l| l.enabled).cloned().collect()
    }

    /// `nodeaddr:port` as peers should dial it, given the addresses actually
    /// bound (so a configured port 0 advertises the real port). `None` when no
    /// TCP socket is bound.
    pub fn advertised_address(&self, bound: &[ListenAddr]) -> Option<String> {
        let tcp: Vec<std::net::SocketAddr> = bound
            .iter()
            .filter_map(|a| match a {
                ListenAddr::Tcp(s) => Some(*s),
                ListenAddr::Unix(_) => None,
            })
            .collect();
        let want: Option<IpAddr> = self
            .nodeaddr
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok();
        let port = tcp
            .iter()
            .find(|s| Some(s.ip()) == want)
            .or_else(|| {
                tcp.iter().find(|s| {
                    s.ip().is_unspecified() && want.is_none_or(|w| w.is_ipv4() == s.is_ipv4())
                })
            })
            .or_else(|| tcp.first())?
            .port();
        Some(host_port(&self.nodeaddr, port))
    }
}

/// `host:port`, bracketing a bare IPv6 address.
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Why a configuration was refused. Displays as the rendered diagnostics
/// (file:line:col, source line, caret) or one clear line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Syntax, include, schema or type errors, with locations.
    #[error("{0}")]
    Invalid(#[from] Diagnostics),
    /// A whole-configuration rule was broken.
    #[error("{0}")]
    Refused(String),
}

impl From<Diagnostic> for ConfigError {
    fn from(d: Diagnostic) -> Self {
        Self::Invalid(Diagnostics(vec![d]))
    }
}

/// The scopes cluster-listener owns (`ECCluster_Listener`, `cluster`,
/// `msgc_client`, and the msgc scopes of the included `msgc_server.conf`),
/// with Momentum's defaults.
pub fn schema() -> confparse::Schema {
    confparse::momentum::cluster_listener_schema()
}

/// Where the configuration comes from.
#[derive(Debug, Clone, Default)]
pub struct Source {
    /// A file, or `None` for [`EMBEDDED_DEFAULT`].
    pub file: Option<PathBuf>,
    /// `--name`, if given.
    pub name: Option<String>,
    /// Environment: `EC_NODE_NAME`, and `EC_CONF__<SCOPE>__<OPTION>` overrides.
    pub env: Vec<(String, String)>,
}

impl Source {
    /// A source that reads the process environment.
    pub fn from_process(file: Option<PathBuf>, name: Option<String>) -> Self {
        Self {
            file,
            name,
            env: std::env::vars().collect(),
        }
    }
}

/// The same rule the bus applies to group names: 1-64 printable bytes, no whitespace.
fn is_group_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_graphic())
}

/// A name that is safe as one path component: 1-64 bytes of letters, digits,
/// `_`, `-`, `.`, not starting with `.` (log names, subscriber names).
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Reads option `name` of `scope` (or the top level when the scope is absent).
struct Reader<'a> {
    scope: Option<ScopeRef<'a>>,
}

impl<'a> Reader<'a> {
    fn str(&self, name: &str) -> Result<Option<String>, Diagnostic> {
        self.scope.map_or(Ok(None), |s| s.get_str(name))
    }
    fn located(&self, name: &str, message: String) -> ConfigError {
        match self.scope.and_then(|s| s.option(name)) {
            Some(option) => Diagnostic::error(message)
                .at(option.location().clone())
                .into(),
            None => ConfigError::Refused(message),
        }
    }
}

/// Loads, validates and types the configuration.
pub fn load(source: &Source) -> Result<NodeConfig, ConfigError> {
    let loader = confparse::Loader::new();
    let mut conf = match &source.file {
        Some(path) => loader.load_file(path)?,
        None => loader.load_str("<embedded ecelerity-cluster.conf>", EMBEDDED_DEFAULT, None)?,
    };
    conf.apply_overrides(confparse::env_overrides_from(source.env.iter().cloned()))?;
    conf.validate(&schema())?;
    let root = conf.root();

    let listens = service_kit::listen::read_listens(root, "ECCluster_Listener")?;
    if root.scope("ECCluster_Listener").is_none() {
        return Err(ConfigError::Refused(
            "ECCluster_Listener { Listen \"*:4802\" { } } is missing".to_owned(),
        ));
    }
    if !listens.iter().any(|l| l.enabled) {
        return Err(ConfigError::Refused(
            "ECCluster_Listener has no enabled Listen".to_owned(),
        ));
    }

    let cluster = Reader {
        scope: root.scope("cluster"),
    };
    let env_name = source
        .env
        .iter()
        .find(|(k, _)| k == service_kit::node_name::NODE_NAME_ENV)
        .map(|(_, v)| v.as_str());
    let nodename = match cluster.str("nodename")?.filter(|n| !n.is_empty()) {
        Some(name) => name,
        None => service_kit::node_name::resolve(source.name.as_deref(), env_name),
    };
    if nodename.is_empty()
        || nodename
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(cluster.located(
            "nodename",
            format!("cluster nodename {nodename:?} must be non-empty, without whitespace"),
        ));
    }
    let nodeaddr = match cluster.str("nodeaddr")? {
        Some(addr) if addr.is_empty() || addr.chars().any(|c| c.is_whitespace() || c == '/') => {
            return Err(cluster.located(
                "nodeaddr",
                format!("cluster nodeaddr {addr:?} is not a host name or IP address"),
            ));
        }
        Some(addr) => addr,
        None => listens
            .iter()
            .filter(|l| l.enabled)
            .find_map(|l| match &l.addr {
                ListenAddr::Tcp(s) if !s.ip().is_unspecified() => Some(s.ip().to_string()),
                _ => None,
            })
            .unwrap_or_else(|| FALLBACK_NODEADDR.to_owned()),
    };
    let group = |name: &str, default: &str| -> Result<String, ConfigError> {
        let value = cluster.str(name)?.unwrap_or_else(|| default.to_owned());
        if is_group_name(&value) {
            Ok(value)
        } else {
            Err(cluster.located(
                name,
                format!(
                    "cluster {name} {value:?} is not a group name (1-64 printable bytes, no spaces)"
                ),
            ))
        }
    };
    let cluster_group = group("cluster_group", "ec_cluster")?;
    let control_group = group("control_group", "ec_console")?;
    let subcluster = cluster
        .str("subcluster")?
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_SUBCLUSTER.to_owned());
    if !is_group_name(&format!("ec_sc_{subcluster}")) {
        return Err(cluster.located(
            "subcluster",
            format!("cluster subcluster {subcluster:?} does not make a group name"),
        ));
    }
    let node_type = cluster
        .str("node_type")?
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_NODE_TYPE.to_owned());
    let logs: BTreeMap<String, String> = match cluster.scope {
        Some(s) => s
            .get_dict("logs")?
            .unwrap_or_default()
            .into_iter()
            .collect(),
        None => BTreeMap::new(),
    };
    for (name, path) in &logs {
        if !is_plain_name(name) {
            return Err(cluster.located(
                "logs",
                format!("cluster logs name {name:?} must be letters, digits, `_`, `-` or `.`, not starting with `.`"),
            ));
        }
        if path.is_empty() {
            return Err(cluster.located("logs", format!("cluster logs {name:?} has an empty path")));
        }
    }
    let dir = |name: &str, default: &str| -> Result<PathBuf, ConfigError> {
        match cluster.str(name)? {
            Some(d) if d.is_empty() => {
                Err(cluster.located(name, format!("cluster {name} is empty")))
            }
            Some(d) => Ok(PathBuf::from(d)),
            None => Ok(PathBuf::from(default)),
        }
    };
    let state_dir = dir("state_dir", DEFAULT_STATE_DIR)?;
    let spool_dir = dir("spool_dir", DEFAULT_SPOOL_DIR)?;
    let max_message_size = match cluster.scope {
        Some(s) => s.get_int("max_message_size")?,
        None => None,
    }
    .map_or(Ok(DEFAULT_MAX_MESSAGE_SIZE), |n| {
        u64::try_from(n).ok().filter(|n| *n >= 1).ok_or_else(|| {
            cluster.located(
                "max_message_size",
                format!("cluster max_message_size must be 1 byte or more, not {n}"),
            )
        })
    })?;
    let heartbeats = match cluster.scope {
        Some(s) => s.get_int("heartbeats_per_sec")?.unwrap_or(1),
        None => 1,
    };
    let heartbeats_per_sec = u32::try_from(heartbeats)
        .ok()
        .filter(|h| *h >= 1)
        .ok_or_else(|| {
            cluster.located(
                "heartbeats_per_sec",
                format!("cluster heartbeats_per_sec must be 1 or more, not {heartbeats}"),
            )
        })?;
    let (view_mature_time, enabled, debug_level) = match cluster.scope {
        Some(s) => (
            s.get_duration("view_mature_time")?
                .unwrap_or(Duration::from_secs(5)),
            s.get_bool("enabled")?.unwrap_or(true),
            s.get_str("debug_level")?
                .unwrap_or_else(|| "ERROR".to_owned()),
        ),
        None => (Duration::from_secs(5), true, "ERROR".to_owned()),
    };

    let msgc = read_msgc_client(Reader {
        scope: root.scope("msgc_client"),
    })?;
    Ok(NodeConfig {
        nodename,
        nodeaddr,
        cluster_group,
        control_group,
        subcluster,
        node_type,
        logs,
        state_dir,
        spool_dir,
        max_message_size,
        heartbeats_per_sec,
        view_mature_time,
        enabled,
        log_level: service_kit::telemetry::level_from_debug_level(&debug_level).to_owned(),
        listens,
        msgc,
    })
}

fn read_msgc_client(client: Reader<'_>) -> Result<MsgcClientConfig, ConfigError> {
    let defaults = MsgcClientConfig::default();
    let Some(scope) = client.scope else {
        return Ok(defaults);
    };
    let servers = scope.get_list("server")?.unwrap_or(defaults.servers);
    if servers.is_empty() {
        return Err(client.located(
            "server",
            "msgc_client server is an empty list: name at least one msgc server".to_owned(),
        ));
    }
    for server in &servers {
        let ok = server
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !ok {
            return Err(client.located(
                "server",
                format!("msgc_client server {server:?} is not host:port"),
            ));
        }
    }
    let bind_address = match scope.get_str("bind_address")? {
        None => None,
        Some(text) if text.is_empty() => None,
        Some(text) => Some(
            text.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .map_err(|_| {
                    client.located(
                        "bind_address",
                        format!("msgc_client bind_address {text:?} is not an IP address"),
                    )
                })?,
        ),
    };
    let duration = |name: &str, default: Duration| -> Result<Duration, ConfigError> {
        Ok(scope.get_duration(name)?.unwrap_or(default))
    };
    Ok(MsgcClientConfig {
        servers,
        bind_address,
        connect_timeout: duration("connect_timeout", defaults.connect_timeout)?
            .max(Duration::from_millis(10)),
        keepalive_interval: duration("keepalive_interval", defaults.keepalive_interval)?
            .max(Duration::from_millis(10)),
        reconnect_interval: duration("reconnect_interval", defaults.reconnect_interval)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str, env: &[(&str, &str)]) -> Result<NodeConfig, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ecelerity-cluster.conf");
        std::fs::write(&path, text).unwrap();
        let env = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        load(&Source {
            file: Some(path),
            name: None,
            env,
        })
    }

    #[test]
    fn embedded_default_listens_on_4802_and_uses_the_local_bus() {
        let env = vec![("EC_NODE_NAME".to_owned(), "laptop".to_owned())];
        let cfg = load(&Source {
            file: None,
            name: None,
            env,
        })
        .unwrap();
        assert_eq!(cfg.nodename, "laptop");
        assert_eq!(cfg.listens.len(), 1);
        assert_eq!(cfg.listens[0].addr, ListenAddr::parse("*:4802").unwrap());
        assert_eq!(cfg.msgc.servers, vec!["127.0.0.1:4809"]);
        assert_eq!(cfg.nodeaddr, "127.0.0.1");
        assert_eq!(
            cfg.groups(),
            vec!["ec_cluster", "ec_console", "ec_sc_default"]
        );
        assert_eq!(cfg.msgc.reconnect_interval, Duration::from_secs(5));
        assert!(cfg.enabled);
    }

    #[test]
    fn the_sample_config_follows_its_include_and_ignores_unowned_scopes() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/conf-examples/ecelerity-cluster.conf"
        );
        let cfg = load(&Source {
            file: Some(path.into()),
            name: Some("ignored".into()),
            env: vec![],
        })
        .unwrap();
        assert_eq!(cfg.nodename, "node1");
        assert_eq!(cfg.nodeaddr, "10.10.0.11");
        assert_eq!(cfg.msgc.servers, vec!["127.0.0.1:4809"]);
        assert_eq!(
            cfg.logs.get("mainlog").map(String::as_str),
            Some("/var/log/ecelerity/mainlog.cluster")
        );
        let bound = [ListenAddr::parse("0.0.0.0:4802").unwrap()];
        assert_eq!(
            cfg.advertised_address(&bound).as_deref(),
            Some("10.10.0.11:4802")
        );
    }

    #[test]
    fn nodeaddr_defaults_to_the_first_specific_listen_ip_else_loopback() {
        let cfg = load_text(
            "ECCluster_Listener { Listen \"*:1\" {} Listen \"10.1.2.3:2\" { enable = false } Listen \"127.0.0.5:3\" {} }\n\
             cluster { nodename = n }",
            &[],
        )
        .unwrap();
        assert_eq!(cfg.nodeaddr, "127.0.0.5");
        let bound = [
            ListenAddr::parse("0.0.0.0:1").unwrap(),
            ListenAddr::parse("127.0.0.5:3").unwrap(),
        ];
        assert_eq!(
            cfg.advertised_address(&bound).as_deref(),
            Some("127.0.0.5:3")
        );

        let cfg = load_text(
            "ECCluster_Listener { Listen \"*:7\" {} }\ncluster { nodename = n }",
            &[],
        )
        .unwrap();
        assert_eq!(cfg.nodeaddr, "127.0.0.1");
        let bound = [ListenAddr::parse("0.0.0.0:7").unwrap()];
        assert_eq!(
            cfg.advertised_address(&bound).as_deref(),
            Some("127.0.0.1:7")
        );
    }

    #[test]
    fn env_overrides_set_nodeaddr_and_name_fills_in_for_a_missing_nodename() {
        let cfg = load_text(
            "ECCluster_Listener { Listen \"*:4802\" {} }\n",
            &[
                ("EC_CONF__CLUSTER__NODEADDR", "fd00::5"),
                ("EC_NODE_NAME", "pod-1"),
            ],
        )
        .unwrap();
        assert_eq!(cfg.nodename, "pod-1");
        assert_eq!(cfg.nodeaddr, "fd00::5");
        let bound = [ListenAddr::parse("0.0.0.0:4802").unwrap()];
        assert_eq!(
            cfg.advertised_address(&bound).as_deref(),
            Some("[fd00::5]:4802")
        );
    }

    #[test]
    fn subcluster_node_type_and_timers_are_read() {
        let cfg = load_text(
            "ECCluster_Listener { Listen \"127.0.0.1:0\" {} }\n\
             cluster { nodename = a subcluster = east node_type = manager enabled = no }\n\
             msgc_client { server = ( \"h1:1\" \"h2:2\" ) reconnect_interval = 200ms bind_address = 127.0.0.1 }",
            &[],
        )
        .unwrap();
        assert_eq!(cfg.groups(), vec!["ec_cluster", "ec_console", "ec_sc_east"]);
        assert_eq!(cfg.node_type, "manager");
        assert!(!cfg.enabled);
        assert_eq!(cfg.msgc.servers, vec!["h1:1", "h2:2"]);
        assert_eq!(cfg.msgc.reconnect_interval, Duration::from_millis(200));
        assert_eq!(cfg.msgc.bind_address, Some(IpAddr::from([127, 0, 0, 1])));
        assert_eq!(cfg.state_dir, PathBuf::from(DEFAULT_STATE_DIR));
        assert_eq!(cfg.spool_dir, PathBuf::from(DEFAULT_SPOOL_DIR));
        assert_eq!(cfg.max_message_size, DEFAULT_MAX_MESSAGE_SIZE);
    }

    #[test]
    fn data_path_options_are_read_checked_and_overridable() {
        let cfg = load_text(
            "ECCluster_Listener { Listen \"127.0.0.1:0\" {} }\n\
             cluster { nodename = a logs = [ mainlog = \"/var/log/m\" ] state_dir = \"/s\" max_message_size = 1024 }",
            &[("EC_CONF__CLUSTER__SPOOL_DIR", "\"/sp\"")],
        )
        .unwrap();
        assert_eq!(cfg.state_dir, PathBuf::from("/s"));
        assert_eq!(cfg.spool_dir, PathBuf::from("/sp"));
        assert_eq!(cfg.max_message_size, 1024);
        let err = load_text(
            "ECCluster_Listener { Listen \"*:1\" {} }\ncluster {\n  logs = [ \"../x\" = \"/p\" ]\n}\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("ecelerity-cluster.conf:3:") && err.contains("logs name"),
            "{err}"
        );
        let err = load_text(
            "ECCluster_Listener { Listen \"*:1\" {} }\ncluster {\n  max_message_size = 0\n}\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("max_message_size"), "{err}");
        assert!(is_plain_name("main.log-1_x") && !is_plain_name(".x") && !is_plain_name("a/b"));
    }

    #[test]
    fn mistakes_in_owned_scopes_are_located_and_unowned_scopes_pass() {
        let err = load_text(
            "ECCluster_Listener { Listen \"*:1\" {} }\ncluster {\n  nodeadr = x\n}\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown option `nodeadr`"), "{err}");
        assert!(err.contains("ecelerity-cluster.conf:3:"), "{err}");
        assert!(err.contains("nodeaddr"), "did you mean: {err}");

        let err = load_text("ECCluster_Listener { Listen \"*:1\" {} }\nmsgc_client {\n  server = ( \"nohost\" )\n}\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ecelerity-cluster.conf:3:") && err.contains("not host:port"),
            "{err}"
        );

        let err = load_text(
            "ECCluster_Listener { Listen \"*:1\" { enable = off } }\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("no enabled Listen"), "{err}");

        load_text(
            "ECCluster_Listener { Listen \"*:1\" {} }\nSecurity { user = x }\nec_logger \"l\" { mainlog = y }\n\
             msgc_server { whatever = 1 }\ncluster { nodename = n Replicate \"r\" { anything = 1 } }\n",
            &[],
        )
        .unwrap();
    }
}
