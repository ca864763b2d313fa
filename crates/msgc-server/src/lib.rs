//! The msgc bus server: a full mesh of servers that delivers group messages
//! and membership changes to every member in one total order.
//!
//! * [`config`]: the typed configuration, and [`load`] reading it from
//!   `msgc_server.conf` (through `confparse`).
//! * [`driver`]: the task that owns the bus state machine (`msgc-core`) and
//!   applies its effects; [`driver::wire`] converts to and from protobuf.
//! * [`mesh`]: peer links (dialling, accepting, the `msgc.v1.Mesh` service).
//! * [`session`]: the client API (`msgc.v1.Bus`); [`admin`]: `msgc.v1.Admin`.
//! * [`metrics`]: the Prometheus metrics (`msgc_*`).
//! * [`server`]: [`server::serve`], the whole server over bound listeners.
#![forbid(unsafe_code)]

pub mod admin;
pub mod config;
pub mod driver;
pub mod error;
pub mod identity;
pub mod mesh;
pub mod metrics;
pub mod names;
pub mod outbox;
pub mod server;
pub mod session;

pub use config::ServerConfig;
pub use server::serve;
