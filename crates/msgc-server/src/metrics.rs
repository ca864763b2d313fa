//! The bus's Prometheus metrics (`msgc_*`), counted by the driver where it
//! applies the core's effects (the core stays pure) and by the session
//! tasks for refusals. Every handle is registered once at start; per-peer
//! counters are looked up once per peer, so counting a message is an atomic
//! add. Gauges that mirror live state (sessions, groups, links, queues) are
//! set by the driver just before each scrape ([`crate::driver::Query::Metrics`]).
//!
//! The names are documented in the README ("Metrics"); tests check them.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use service_kit::metrics::{Histogram, Registry, prometheus_client};

/// One label: `peer`, `reason` or `code`.
pub type Labels = Vec<(&'static str, String)>;

/// The counters of one peer, looked up once.
#[derive(Debug, Clone, Default)]
pub struct PeerCounters {
    /// Messages queued to the peer (batches count their ops).
    pub messages_out: Counter,
    /// Their weight in bytes (as `max_peer_bytes` counts them).
    pub bytes_out: Counter,
    /// Messages received from the peer.
    pub messages_in: Counter,
    /// Their weight in bytes.
    pub bytes_in: Counter,
}

/// Every bus metric of one server.
#[derive(Debug, Default)]
pub struct BusMetrics {
    /// Publishes handed over by this server's sessions.
    pub publishes: Counter,
    /// Their payload bytes.
    pub publish_bytes: Counter,
    /// Messages queued to this server's sessions.
    pub deliveries: Counter,
    /// Their payload bytes.
    pub delivered_bytes: Counter,
    /// Publishes acknowledged (stable²) to their sessions.
    pub acks: Counter,
    /// Publish → acknowledgement, at the publishing server.
    pub ack_latency: Histogram,
    peer_messages_out: Family<Labels, Counter>,
    peer_bytes_out: Family<Labels, Counter>,
    peer_messages_in: Family<Labels, Counter>,
    peer_bytes_in: Family<Labels, Counter>,
    link_ups: Family<Labels, Counter>,
    link_downs: Family<Labels, Counter>,
    link_cuts: Family<Labels, Counter>,
    session_cuts: Family<Labels, Counter>,
    refusals: Family<Labels, Counter>,
    /// Server views started (each view change ends with one).
    pub views_started: Counter,
    /// Installs received (held until their commit).
    pub views_installed: Counter,
    /// Open sessions (set at scrape).
    pub sessions: Gauge,
    /// Groups with members (set at scrape).
    pub groups: Gauge,
    /// Members of the server view (set at scrape).
    pub view_members: Gauge,
    /// The server view's epoch (set at scrape).
    pub view_epoch: Gauge,
    /// Events queued to all sessions (set at scrape).
    pub session_queue_events: Gauge,
    link_up: Family<Labels, Gauge>,
    link_rtt: Family<Labels, Gauge<f64, AtomicU64>>,
    peer_queue_messages: Family<Labels, Gauge>,
    peer_queue_bytes: Family<Labels, Gauge>,
}

fn label(key: &'static str, value: &str) -> Labels {
    vec![(key, value.to_owned())]
}

impl BusMetrics {
    /// The metrics, and a registry (prefix `msgc_`) that serves them.
    pub fn new() -> (Arc<Self>, Registry) {
        let m = Arc::new(Self::default());
        let mut r = Registry::with_prefix("msgc");
        m.register_traffic(&mut r);
        m.register_state(&mut r);
        // Known reasons start at 0, so a rate over them has a series.
        for reason in ["overflow", "stuck", "publishes_lost", "shutdown"] {
            let _ = m.session_cuts.get_or_create(&label("reason", reason));
        }
        let _ = m.link_cuts.get_or_create(&label("reason", "queue_full"));
        (m, r)
    }

    fn register_traffic(&self, r: &mut Registry) {
        r.register(
            "publishes",
            "Publishes received from this server's clients",
            self.publishes.clone(),
        );
        r.register(
            "publish_bytes",
            "Payload bytes of those publishes",
            self.publish_bytes.clone(),
        );
        r.register(
            "deliveries",
            "Messages queued to this server's sessions",
            self.deliveries.clone(),
        );
        r.register(
            "delivered_bytes",
            "Payload bytes of those deliveries",
            self.delivered_bytes.clone(),
        );
        r.register(
            "publishes_acked",
            "Publishes acknowledged to their clients (stable everywhere)",
            self.acks.clone(),
        );
        r.register(
            "publish_ack_seconds",
            "Publish to acknowledgement, at the publishing server",
            self.ack_latency.clone(),
        );
        r.register(
            "peer_messages_out",
            "Messages queued to a peer (batches count their ops)",
            self.peer_messages_out.clone(),
        );
        r.register(
            "peer_bytes_out",
            "Bytes queued to a peer (as max_peer_bytes counts them)",
            self.peer_bytes_out.clone(),
        );
        r.register(
            "peer_messages_in",
            "Messages received from a peer",
            self.peer_messages_in.clone(),
        );
        r.register(
            "peer_bytes_in",
            "Bytes received from a peer (as max_peer_bytes counts them)",
            self.peer_bytes_in.clone(),
        );
        r.register(
            "refusals",
            "Client requests refused, by gRPC code",
            self.refusals.clone(),
        );
    }

    fn register_state(&self, r: &mut Registry) {
        r.register(
            "link_ups",
            "Peer links that came up (the first and every reconnect)",
            self.link_ups.clone(),
        );
        r.register(
            "link_downs",
            "Peer links that ended",
            self.link_downs.clone(),
        );
        r.register(
            "link_cuts",
            "Peer links this server cut, by reason",
            self.link_cuts.clone(),
        );
        r.register(
            "session_cuts",
            "Sessions the server ended, by reason",
            self.session_cuts.clone(),
        );
        r.register(
            "views_started",
            "Server views started (view changes)",
            self.views_started.clone(),
        );
        r.register(
            "views_installed",
            "View installs received (held until commit)",
            self.views_installed.clone(),
        );
        r.register("sessions", "Open client sessions", self.sessions.clone());
        r.register(
            "groups",
            "Groups with at least one member",
            self.groups.clone(),
        );
        r.register(
            "view_members",
            "Servers in the current server view",
            self.view_members.clone(),
        );
        r.register(
            "view_epoch",
            "Epoch of the current server view",
            self.view_epoch.clone(),
        );
        r.register(
            "session_queue_events",
            "Events queued to all sessions",
            self.session_queue_events.clone(),
        );
        r.register(
            "link_up",
            "1 while the link to a peer is up",
            self.link_up.clone(),
        );
        r.register(
            "link_rtt_seconds",
            "Round-trip time to a peer (keepalives)",
            self.link_rtt.clone(),
        );
        r.register(
            "peer_queue_messages",
            "Messages queued for a peer",
            self.peer_queue_messages.clone(),
        );
        r.register(
            "peer_queue_bytes",
            "Bytes queued for a peer",
            self.peer_queue_bytes.clone(),
        );
    }

    /// The counters of `peer` (look up once, then keep); its link counters
    /// start at 0.
    pub fn peer(&self, peer: &str) -> PeerCounters {
        let l = label("peer", peer);
        let _ = self.link_ups.get_or_create(&l);
        let _ = self.link_downs.get_or_create(&l);
        PeerCounters {
            messages_out: self.peer_messages_out.get_or_create(&l).clone(),
            bytes_out: self.peer_bytes_out.get_or_create(&l).clone(),
            messages_in: self.peer_messages_in.get_or_create(&l).clone(),
            bytes_in: self.peer_bytes_in.get_or_create(&l).clone(),
        }
    }

    /// A link to `peer` came up.
    pub fn link_up(&self, peer: &str) {
        self.link_ups.get_or_create(&label("peer", peer)).inc();
    }

    /// A link to `peer` ended.
    pub fn link_down(&self, peer: &str) {
        self.link_downs.get_or_create(&label("peer", peer)).inc();
    }

    /// This server cut a peer link (`queue_full`).
    pub fn link_cut(&self, reason: &str) {
        self.link_cuts.get_or_create(&label("reason", reason)).inc();
    }

    /// The server ended a session (`overflow`, `stuck`, `publishes_lost`, `shutdown`).
    pub fn session_cut(&self, reason: &str) {
        self.session_cuts
            .get_or_create(&label("reason", reason))
            .inc();
    }

    /// A client request was refused with `code`.
    pub fn refused(&self, code: tonic::Code) {
        self.refusals
            .get_or_create(&label("code", code_name(code)))
            .inc();
    }

    /// Sets the gauges of `peer`'s link (scrape time).
    pub fn set_link(&self, peer: &str, up: bool, rtt_us: u64, queued: usize, bytes: usize) {
        let l = label("peer", peer);
        self.link_up.get_or_create(&l).set(i64::from(up));
        self.link_rtt.get_or_create(&l).set(rtt_us as f64 / 1e6);
        self.peer_queue_messages
            .get_or_create(&l)
            .set(gauge(queued));
        self.peer_queue_bytes.get_or_create(&l).set(gauge(bytes));
    }
}

/// A count as a gauge value.
pub fn gauge(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The gRPC code in snake case (`invalid_argument`, ...).
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "cancelled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid_argument",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted => "resource_exhausted",
        Code::FailedPrecondition => "failed_precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data_loss",
        Code::Unauthenticated => "unauthenticated",
    }
}
