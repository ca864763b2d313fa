//! The node's typed configuration, read from `ecelerity-cluster.conf` (and what
//! it includes, usually `msgc_server.conf`) through `confparse`.
//!
//! Owned scopes (mistakes in them are errors with file:line):
//! * `ECCluster_Listener { Listen "..." { } ... }` — the listener options of
//!   `confparse::momentum::listener`;
//! * `cluster { }` — `nodename`, `nodeaddr`, `cluster_group`, `control_group`,
//!   `subcluster`, `node_type`, `logs`, `heartbeats_per_sec`,
//!   `view_mature_time`, `enabled`, `debug_level`, and for the data paths
//!   `state_dir`, `spool_dir`, `outgoing_dir`, `max_message_size`. Its sub-scopes belong to
//!   modules this node does not implement: `Topology` is checked against
//!   Momentum's options, `Replicate` is accepted unchecked (the schema is
//!   `confparse::momentum::cluster_listener_schema`);
//! * `msgc_client { }` — `server`, `bind_address`, the msgc timers and TLS
//!   to the bus (`tls_ca`, `tls_certificate`, `tls_key`).
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
//! * Every default comes from the schema, `confparse::momentum::cluster` and
//!   `msgc_client` (subcluster `default`, so group `ec_sc_default`; node type
//!   `node`; ...), also when a scope is absent.
//! * `heartbeats_per_sec` and `view_mature_time` are accepted and checked but
//!   have no effect: membership comes from the bus's group views.
//! * `enabled = false`: the node serves its listener but does not join the bus.
//! * `logs` names must be plain names (letters, digits, `_ - .`, not starting
//!   with `.`): they become directory names of checkpoints and pulled copies.
//! * `state_dir` holds log checkpoints; `spool_dir` receives moved messages; both are created when
//!   first needed, so a node whose directories cannot be created still serves
//!   everything else.
//! * `outgoing_dir` (the only directory `MoveTo` reads from) defaults to
//!   `<spool_dir>/outgoing`, so it follows `spool_dir`; it is not created:
//!   the MTA that queues files there owns it.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use confparse::{Diagnostic, ScopeRef};
use service_kit::config::Embedded;
use service_kit::listen::{ListenAddr, ListenSpec};
use service_kit::tls::ClientTlsFiles;

/// `nodeaddr` when neither the config nor a Listen gives one (a derived
/// value, not a schema default).
pub const FALLBACK_NODEADDR: &str = "127.0.0.1";

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
    /// `tls_ca` (and `tls_certificate`, `tls_key`): TLS to the bus; `None` is
    /// plaintext.
    pub tls: Option<ClientTlsFiles>,
}

/// Everything a node needs to run, with Momentum's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// The loaded configuration itself, for `config get` (console).
    pub conf: LoadedConf,
    /// `nodename`: this node's name in the cluster.
    pub nodename: String,
    /// `nodeaddr`: the host or IP peers dial to reach this node's listener.
    pub nodeaddr: String,
    /// `cluster_group` (`ec_cluster`): the group whose membership is the cluster.
    pub cluster_group: String,
    /// `control_group` (`ec_console`): console commands fanned out to nodes.
    pub control_group: String,
    /// `subcluster` (`default`); the node joins `ec_sc_<subcluster>`.
    pub subcluster: String,
    /// `node_type` (`node`), advertised in the node record.
    pub node_type: String,
    /// `logs`: logs this node offers for pulling, name -> path.
    pub logs: BTreeMap<String, String>,
    /// `state_dir` (`/var/lib/ecelerity/cluster`): log checkpoints, one file per
    /// (log, subscriber).
    pub state_dir: PathBuf,
    /// `spool_dir` (`/var/spool/ecelerity/cluster`): moved messages arrive in
    /// `incoming/` by way of `tmp/`.
    pub spool_dir: PathBuf,
    /// `outgoing_dir` (`<spool_dir>/outgoing`): the only directory `MoveTo`
    /// reads files from (see [`crate::outgoing`]).
    pub outgoing_dir: PathBuf,
    /// `max_message_size` (64 MiB): the largest message
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
    /// How this node dials other nodes (Ping, MoveTo, console replies, the
    /// client subcommands): as it is dialled, with the TLS files of its first
    /// enabled TCP `Listen`, the other node's certificate naming that node.
    /// `None` is plaintext.
    pub dial_tls: Option<ClientTlsFiles>,
    /// `msgc_client { }`.
    pub msgc: MsgcClientConfig,
    /// `ECCluster_Listener { admin_listen }`: where the admin HTTP listener
    /// serves Prometheus `/metrics`; `None` (the default) is off.
    pub admin_listen: Option<std::net::SocketAddr>,
}

impl NodeConfig {
    /// A node named `nodename` on `127.0.0.1:0` using the msgc `servers`, every
    /// other option at its schema default (for tests and embedding).
    pub fn new(nodename: &str, servers: Vec<String>) -> Self {
        let conf = service_kit::config::load(&Source::default(), TEST_BASE, &schema())
            .expect("the built-in base configuration is valid");
        let source = Source {
            name: Some("node".to_owned()),
            ..Source::default()
        };
        let mut cfg = from_conf(conf, &source).expect("the built-in base configuration is valid");
        nodename.clone_into(&mut cfg.nodename);
        cfg.msgc.servers = servers;
        cfg
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

pub use service_kit::config::{ConfigError, Source};

/// The configuration a [`LoadedConf`] holds, shared; compared by identity.
#[derive(Clone)]
pub struct LoadedConf(pub Arc<confparse::Config>);

impl PartialEq for LoadedConf {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for LoadedConf {}

impl std::fmt::Debug for LoadedConf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoadedConf")
    }
}

/// What [`NodeConfig::new`] starts from.
const TEST_BASE: Embedded = Embedded {
    origin: "<built-in base ecelerity-cluster.conf>",
    text: "ECCluster_Listener { Listen \"127.0.0.1:0\" { } }\n",
};

/// The embedded default as [`service_kit::config::load`] takes it.
const EMBEDDED: Embedded = Embedded {
    origin: "<embedded ecelerity-cluster.conf>",
    text: EMBEDDED_DEFAULT,
};

/// The scopes cluster-listener owns (`ECCluster_Listener`, `cluster`,
/// `msgc_client`, and the msgc scopes of the included `msgc_server.conf`),
/// with Momentum's defaults.
pub fn schema() -> confparse::Schema {
    confparse::momentum::cluster_listener_schema()
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

/// Reads the options of one owned scope: the scope as written, or (when the
/// file has none) an empty one, so the schema's defaults apply either way.
#[derive(Clone, Copy)]
struct Reader<'a> {
    scope: ScopeRef<'a>,
}

impl<'a> Reader<'a> {
    fn str(&self, name: &str) -> Result<String, ConfigError> {
        Ok(self.scope.get_str(name)?.unwrap_or_default())
    }
    /// An error located at option `name` if it was written, else one line.
    fn located(&self, name: &str, message: String) -> ConfigError {
        match self.scope.option(name) {
            Some(option) => Diagnostic::error(message)
                .at(option.location().clone())
                .into(),
            None => ConfigError::Refused(message),
        }
    }
    fn group(&self, name: &str) -> Result<String, ConfigError> {
        let value = self.str(name)?;
        if is_group_name(&value) {
            Ok(value)
        } else {
            Err(self.located(
                name,
                format!(
                    "cluster {name} {value:?} is not a group name (1-64 printable bytes, no spaces)"
                ),
            ))
        }
    }
    fn dir(&self, name: &str) -> Result<PathBuf, ConfigError> {
        match self.str(name)? {
            d if d.is_empty() => Err(self.located(name, format!("cluster {name} is empty"))),
            d => Ok(PathBuf::from(d)),
        }
    }
    fn positive(&self, name: &str) -> Result<u64, ConfigError> {
        let n = self.scope.get_int(name)?.unwrap_or_default();
        u64::try_from(n)
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| self.located(name, format!("cluster {name} must be 1 or more, not {n}")))
    }
}

/// Empty owned scopes, validated, whose getters give the schema's defaults.
const EMPTY_SCOPES: &str = "cluster { }\nmsgc_client { }\n";

/// Loads, validates and types the configuration.
pub fn load(source: &Source) -> Result<NodeConfig, ConfigError> {
    let conf = service_kit::config::load(source, EMBEDDED, &schema())?;
    from_conf(conf, source)
}

/// Types a loaded and validated configuration.
fn from_conf(conf: confparse::Config, source: &Source) -> Result<NodeConfig, ConfigError> {
    let mut empty = confparse::Loader::new().load_str("<schema defaults>", EMPTY_SCOPES, None)?;
    empty.validate(&schema())?;
    let root = conf.root();
    let owned = |name: &str| Reader {
        scope: root
            .scope(name)
            .or_else(|| empty.root().scope(name))
            .expect("both owned scopes exist in EMPTY_SCOPES"),
    };
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
    let cluster = owned("cluster");
    let (nodename, nodeaddr) = identity(cluster, source, &listens)?;
    let subcluster = cluster.str("subcluster")?;
    if subcluster.is_empty() || !is_group_name(&format!("ec_sc_{subcluster}")) {
        return Err(cluster.located(
            "subcluster",
            format!("cluster subcluster {subcluster:?} does not make a group name"),
        ));
    }
    let msgc = read_msgc_client(owned("msgc_client"))?;
    let dial_tls = service_kit::listen::dial_tls(&listens, "ECCluster_Listener")
        .map_err(|e| ConfigError::Refused(e.to_string()))?;
    let admin_listen = service_kit::metrics::read_admin_listen(root, "ECCluster_Listener")?;
    let spool_dir = cluster.dir("spool_dir")?;
    let scope = cluster.scope;
    Ok(NodeConfig {
        nodename,
        nodeaddr,
        cluster_group: cluster.group("cluster_group")?,
        control_group: cluster.group("control_group")?,
        subcluster,
        node_type: Some(cluster.str("node_type")?)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| cluster.located("node_type", "cluster node_type is empty".into()))?,
        logs: read_logs(cluster)?,
        state_dir: cluster.dir("state_dir")?,
        outgoing_dir: match cluster.scope.get_str("outgoing_dir")? {
            Some(_) => cluster.dir("outgoing_dir")?,
            None => spool_dir.join("outgoing"),
        },
        spool_dir,
        max_message_size: cluster.positive("max_message_size")?,
        heartbeats_per_sec: u32::try_from(cluster.positive("heartbeats_per_sec")?)
            .map_err(|_| cluster.located("heartbeats_per_sec", "too large".into()))?,
        view_mature_time: scope.get_duration("view_mature_time")?.unwrap_or_default(),
        enabled: scope.get_bool("enabled")?.unwrap_or_default(),
        log_level: service_kit::telemetry::level_from_debug_level(&cluster.str("debug_level")?)
            .to_owned(),
        listens,
        dial_tls,
        msgc,
        admin_listen,
        conf: LoadedConf(Arc::new(conf.clone())),
    })
}

/// `nodename` (the config's, else `--name`, `EC_NODE_NAME`, the host name)
/// and `nodeaddr` (the config's, else the first specific TCP Listen's IP,
/// else [`FALLBACK_NODEADDR`]).
fn identity(
    cluster: Reader<'_>,
    source: &Source,
    listens: &[ListenSpec],
) -> Result<(String, String), ConfigError> {
    let nodename = match cluster.str("nodename")? {
        name if name.is_empty() => source.node_name(),
        name => name,
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
    let nodeaddr = match cluster.scope.get_str("nodeaddr")? {
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
    Ok((nodename, nodeaddr))
}

/// `cluster { logs = [ name = "/path" ] }`, names checked as path components.
fn read_logs(cluster: Reader<'_>) -> Result<BTreeMap<String, String>, ConfigError> {
    let logs: BTreeMap<String, String> = cluster
        .scope
        .get_dict("logs")?
        .unwrap_or_default()
        .into_iter()
        .collect();
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
    Ok(logs)
}

fn read_msgc_client(client: Reader<'_>) -> Result<MsgcClientConfig, ConfigError> {
    let scope = client.scope;
    let servers = scope.get_list("server")?.unwrap_or_default();
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
    let duration = |name: &str| -> Result<Duration, ConfigError> {
        Ok(scope.get_duration(name)?.unwrap_or_default())
    };
    Ok(MsgcClientConfig {
        servers,
        bind_address,
        connect_timeout: duration("connect_timeout")?.max(Duration::from_millis(10)),
        keepalive_interval: duration("keepalive_interval")?.max(Duration::from_millis(10)),
        reconnect_interval: duration("reconnect_interval")?,
        tls: service_kit::tls::read_client(scope)?,
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
        assert_eq!(cfg.state_dir, PathBuf::from("/var/lib/ecelerity/cluster"));
        assert_eq!(cfg.spool_dir, PathBuf::from("/var/spool/ecelerity/cluster"));
        assert_eq!(cfg.max_message_size, 64 << 20);
        assert_eq!(
            cfg.outgoing_dir,
            PathBuf::from("/var/spool/ecelerity/cluster/outgoing")
        );
        let cfg = load_text(
            "ECCluster_Listener { Listen \"127.0.0.1:0\" {} }\ncluster { nodename = a outgoing_dir = \"/q/out\" }",
            &[],
        )
        .unwrap();
        assert_eq!(cfg.outgoing_dir, PathBuf::from("/q/out"));
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
        assert_eq!(cfg.outgoing_dir, PathBuf::from("/sp/outgoing"));
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
