//! What both services share, so each behaves the same at its edges: how a
//! `Listen` address is parsed and bound, how logging starts, how shutdown is
//! signalled, how health and reflection are served, how a node learns its
//! own name, how a configuration is loaded ([`config`]), how client endpoints
//! are built ([`endpoint`]), TLS and mutual TLS ([`tls`]), Prometheus metrics and
//! the admin HTTP listener ([`metrics`]) and the whole start-up sequence
//! ([`shell`]).
#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod endpoint;
pub mod grpc;
pub mod listen;
pub mod metrics;
pub mod node_name;
pub mod shell;
pub mod shutdown;
pub mod telemetry;
pub mod tls;

pub use grpc::ServeError;
