//! The node's Prometheus metrics (`eccluster_*`): log pulls served and moves
//! received and sent, with their bytes and errors. Counted where each RPC
//! answers (atomic adds on handles registered once); served by the admin
//! listener of `ECCluster_Listener { admin_listen }` (see
//! [`service_kit::metrics`]).

use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use service_kit::metrics::{Registry, prometheus_client};

/// Every node metric.
#[derive(Debug, Default)]
pub struct NodeMetrics {
    /// `Pull` calls answered with a stream.
    pub log_pulls: Counter,
    /// Records sent by those streams.
    pub log_records: Counter,
    /// Their encoded bytes.
    pub log_bytes: Counter,
    /// Pulls refused, or ended by a read error.
    pub log_pull_errors: Counter,
    /// Checkpoint commits accepted.
    pub log_commits: Counter,
    /// Messages received by `Move` and placed in the spool.
    pub moves_received: Counter,
    /// Their bytes.
    pub move_bytes_received: Counter,
    /// `Move`s of a message the spool already held.
    pub move_duplicates: Counter,
    /// `Move`s refused or cut.
    pub move_errors: Counter,
    /// Messages this node sent to another (`MoveTo`).
    pub moves_sent: Counter,
    /// Their bytes.
    pub move_bytes_sent: Counter,
    /// `MoveTo`s that failed.
    pub move_send_errors: Counter,
}

impl NodeMetrics {
    /// The metrics, and a registry (prefix `eccluster_`) that serves them.
    pub fn new() -> (Arc<Self>, Registry) {
        let m = Arc::new(Self::default());
        let mut r = Registry::with_prefix("eccluster");
        let counters: [(&str, &str, &Counter); 12] = [
            ("log_pulls", "Log pulls answered", &m.log_pulls),
            ("log_records", "Log records sent to pullers", &m.log_records),
            (
                "log_bytes",
                "Encoded bytes of log batches sent",
                &m.log_bytes,
            ),
            (
                "log_pull_errors",
                "Log pulls refused or ended by an error",
                &m.log_pull_errors,
            ),
            ("log_commits", "Log checkpoint commits", &m.log_commits),
            (
                "moves_received",
                "Messages moved into this node's spool",
                &m.moves_received,
            ),
            (
                "move_bytes_received",
                "Bytes of messages moved in",
                &m.move_bytes_received,
            ),
            (
                "move_duplicates",
                "Moves of a message already spooled",
                &m.move_duplicates,
            ),
            ("move_errors", "Moves in refused or cut", &m.move_errors),
            (
                "moves_sent",
                "Messages moved to another node (MoveTo)",
                &m.moves_sent,
            ),
            (
                "move_bytes_sent",
                "Bytes of messages moved out",
                &m.move_bytes_sent,
            ),
            (
                "move_send_errors",
                "MoveTo calls that failed",
                &m.move_send_errors,
            ),
        ];
        for (name, help, counter) in counters {
            r.register(name, help, counter.clone());
        }
        (m, r)
    }
}
