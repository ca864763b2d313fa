//! What both services share, so each behaves the same at its edges: how a
//! `Listen` address is parsed and bound, how logging starts, how shutdown is
//! signalled, how health and reflection are served, and how a node learns its
//! own name.
#![forbid(unsafe_code)]

pub mod cli;
pub mod grpc;
pub mod listen;
pub mod node_name;
pub mod shutdown;
pub mod telemetry;
