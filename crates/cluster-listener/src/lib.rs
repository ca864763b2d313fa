//! The cluster node agent: the `ECCluster_Listener` carrying direct
//! node-to-node RPCs (`eccluster.v1.Node`, `eccluster.v1.Logs`,
//! `eccluster.v1.Mover`), and the msgc client that makes the node a member of
//! the cluster.
//!
//! * [`config`]: the typed configuration, read from `ecelerity-cluster.conf`.
//! * [`membership`]: the msgc client task and the membership it keeps.
//! * [`service`]: `eccluster.v1.Node` (Info, Membership, Ping, Echo).
//! * [`spool`] and [`mover`]: `eccluster.v1.Mover`, message moves (mmove).
//! * [`logfile`], [`checkpoint`] and [`logs`]: `eccluster.v1.Logs`, log
//!   pulling from durable, rotation-safe checkpoints.
//! * [`puller`] and [`aggregate`]: the pulling side, exactly-once output, and
//!   the `aggregate` subcommand.
//! * [`console`]: `eccluster.v1.Console`, console fan-out over `ec_console`
//!   and `ec_sc_<sc>` (eccmgr's broadcast / retrieve / unicast / retrieve_node).
//! * [`cli`]: the `cluster-listener` command line (main.rs is glue).
//! * [`error`]: every refusal and its gRPC status.
//! * [`metrics`]: the Prometheus metrics (`eccluster_*`).
//! * [`server`]: [`serve`], the whole node over bound listeners.
#![forbid(unsafe_code)]

pub mod aggregate;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod console;
pub mod error;
pub mod logfile;
pub mod logs;
pub mod membership;
pub mod metrics;
pub mod mover;
pub mod outgoing;
pub mod puller;
pub mod server;
pub mod service;
pub mod spool;

pub use config::NodeConfig;
pub use server::serve;

/// This node's software version, advertised in its node record.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
