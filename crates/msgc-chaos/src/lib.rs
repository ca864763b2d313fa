//! `msgc-chaos`: a seeded randomized fault runner against real msgc-server
//! processes (`procs` mode) or a running docker-compose cluster (`compose`
//! mode), judged by `msgc-check` plus run-level checks.
//!
//! Clients use the public gRPC API only (`msgc.v1.Bus/Session`,
//! `msgc.v1.Admin/GetServerView`): per server one subscriber and one
//! publisher ([`clients`]). A [`schedule::Schedule`] made from the seed picks
//! the faulted servers and their faults: SIGKILL + restart, SIGSTOP/SIGCONT
//! shorter and longer than the keepalive timeout, cascades (a second hit
//! while a view change is in progress), and single-link cuts with nft and
//! cgroups ([`netcut`]): symmetric, one-way, non-transitive, and splits.
//! Link cuts never separate two never-faulted servers (see [`schedule`]).
//! After the last heal the run must re-form one view within
//! 10 × `keepalive_interval` and deliver fresh messages from every server to
//! every subscriber; [`judge`] lists what it checks.
//!
//! A seed fixes the schedule, not the timing: a replay runs the same faults
//! in the same order with the same durations, against whatever interleaving
//! the processes produce.
#![forbid(unsafe_code)]

pub mod clients;
pub mod compose;
pub mod compose_nodes;
pub mod error;
pub mod judge;
pub mod netcut;
pub mod phases;
pub mod procs;
pub mod runner;
pub mod schedule;
pub mod views;

pub use error::ChaosError;
