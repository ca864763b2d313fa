//! The server's typed configuration, read from `msgc_server.conf`:
//! `msgc_server { }` and `msgcserver_listener { Listen ... }`.

use std::collections::BTreeMap;
use std::time::Duration;

use service_kit::listen::{ListenAddr, ListenOptions};

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
    /// `keepalive_interval`: a link idle this long sends a keepalive; three
    /// intervals of silence cut it.
    pub keepalive_interval: Duration,
    /// `reconnect_interval`: wait between dials of a lost peer.
    pub reconnect_interval: Duration,
    /// `idle_timeout`: a session that sends nothing (not even its hello) for
    /// this long before its hello is cut.
    pub idle_timeout: Duration,
    /// `max_backlog`: queued messages after which a client or peer link is cut.
    pub max_backlog: usize,
    /// `messages_per_iter`: frames the core handles per turn before yielding.
    pub messages_per_iter: usize,
    /// `tcpbuf_size`: socket buffer and HTTP/2 window size for peer links.
    pub tcpbuf_size: usize,
    /// `max_message_size`: largest payload accepted (not a Momentum option).
    pub max_payload: usize,
    /// `debug_level`, as a tracing filter.
    pub log_level: String,
    /// The `Listen` sockets of `msgcserver_listener`.
    pub listens: Vec<(ListenAddr, ListenOptions)>,
}

impl ServerConfig {
    /// A single-server bus named `name` with every default, listening on
    /// `:4809` (the embedded default when no file is given).
    pub fn single(name: &str) -> Self {
        Self::with_peers(name, [(name.to_owned(), format!("127.0.0.1:{DEFAULT_PORT}"))].into())
    }

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
            messages_per_iter: 20,
            tcpbuf_size: 131_072,
            max_payload: 1 << 20,
            log_level: "error".to_owned(),
            listens: vec![(
                ListenAddr::Tcp(std::net::SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT))),
                ListenOptions::default(),
            )],
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
        self.peers.iter().filter(move |(name, _)| **name != self.name)
    }

    /// How many ops this server may have submitted but not yet stable: the
    /// flow-control window, sized so all servers together stay well under
    /// `max_backlog` on any link.
    pub fn submit_window(&self) -> usize {
        (self.max_backlog / (2 * self.peers.len().max(1))).max(16)
    }
}
