//! A deterministic simulator of N msgc cores (3 to 9), in the style of
//! TigerBeetle's VOPR and FoundationDB's simulation: one thread, virtual
//! time, everything drawn from one seed, so every run replays exactly.
//!
//! * [`Sim`] runs [`msgc_core::Core`]s as a driver would: ticks every
//!   quarter keepalive, `EndOfTurn` after every input, a window of permits
//!   per server, a watcher session per server incarnation joined to every
//!   group (so what each server delivered is visible).
//! * The network has one link per pair, dialled by the lower name and
//!   re-dialled after a reconnect interval; FIFO per direction with a
//!   seeded delay and jitter. A cut direction holds packets back (as TCP
//!   would retransmit them) until it heals or an end gives up.
//! * Clients open and close sessions, join, leave, publish identity
//!   payloads ([`msgc_check::encode_payload`]), reconnect under their name
//!   and move to other servers.
//! * Faults ([`FaultClass`]) come from a [`Schedule`]: link drops seen by
//!   one end or both, symmetric, one-way and non-transitive cuts,
//!   partitions, crash + restart, pauses, and cascades (a [`Trigger`]
//!   fires a second fault when a view-change message is sent).
//! * After the faults everything heals and the liveness phase requires one
//!   active view of all servers and every probe delivered everywhere
//!   within `liveness_bound`.
//! * [`check::check`] judges the recorded [`History`]: no creation, no
//!   duplicates, FIFO, agreed order, virtual synchrony, reliable delivery,
//!   gid order, group views, guarantee 7, acks; see [`Invariant`].
//!
//! [`run_seed`] does all of it for one seed; the `msgc-sim` binary runs
//! ranges of seeds on several threads.

pub mod check;
mod clients;
pub mod config;
pub mod faults;
mod inject;
mod links;
mod liveness;
mod net;
pub mod record;
pub mod rng;
mod runner;
mod sim;

pub use check::{Invariant, Violation};
pub use config::{FaultClass, MS, SimConfig};
pub use faults::{Action, CutLabel, Fault, FaultKind, MsgKind, Schedule, Target, Trigger};
pub use record::History;
pub use runner::{
    Outcome, finish as runner_finish, replay_command, run_schedule, run_seed, shrink,
};
pub use sim::{Sim, Stats, group_name, srv_name};
