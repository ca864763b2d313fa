//! Invariant checker for the msgc bus, run by tests over recorded client logs.
//!
//! A test gives every published message an identity with [`encode_payload`]
//! (publisher tag + counter, padded to any size) and keeps a [`PublisherLog`]
//! per (publisher, group): counters in send order and how many were
//! acknowledged. Every client consuming a session stream appends what it
//! delivers to its [`ClientLog`] with [`Record::from_delivery`] /
//! [`Record::from_view`] (or [`ClientLog::push_delivery`] /
//! [`ClientLog::push_view`]). When the run is over (after waiting for the bus to
//! go quiet), the test marks which clients survived, lists the servers it lost
//! in a [`Run`] and calls [`check`] (or [`assert_valid`], which panics with a
//! readable [`report`]):
//!
//! ```
//! use msgc_check::{ClientLog, PublisherLog, Record, Run, check, encode_payload};
//! use proto::msgc::v1::{Delivery, GroupView, Member, Position, ViewChange};
//!
//! let mut publisher = PublisherLog::new("p1", "g");
//! let payload = publisher.next_payload(64); // counter 1
//! publisher.ack(1); // from ServerFrame.publishes_acked
//!
//! let mut log = ClientLog::new("#c1#s1", "s1");
//! log.push_view(&GroupView {
//!     group: "g".into(),
//!     gid: 1,
//!     change: ViewChange::Join as i32,
//!     members: vec![Member { private_name: "#c1#s1".into(), ..Member::default() }],
//!     changed: vec!["#c1#s1".into()],
//!     position: Some(Position { view_id: 1, seq: 1 }),
//! });
//! assert!(log.push_delivery(&Delivery {
//!     group: "g".into(),
//!     sender: "#c1#s1".into(),
//!     payload,
//!     position: Some(Position { view_id: 1, seq: 2 }),
//! }));
//!
//! let run = Run { clients: vec![log], publishers: vec![publisher], lost_servers: vec![] };
//! let summary = check(&run).expect("no violations");
//! assert_eq!((summary.deliveries, summary.views), (1, 1));
//! ```
//!
//! What [`check`] verifies (numbers are those of `msgc-semantics.md`); each
//! broken guarantee is a [`Violation`] whose [`Violation::invariant`] names it:
//!
//! * **1 Agreed order** — for every group and pair of clients, the events both
//!   delivered (messages by [`MsgId`], views by gid) are in the same relative
//!   order. O(n) per pair: index one log, walk the other.
//! * **Positions** — a client's positions within a group strictly increase, and
//!   every client sees an event at the same position.
//! * **Agreement** — every client that delivers a message sees the same sender,
//!   and every client that delivers view (group, gid) sees the same change kind
//!   and member list, hence the same leader.
//! * **2 Sender FIFO** — per client and (group, publisher tag), messages arrive
//!   in the publisher's send order (numeric counter order for an unlogged tag).
//! * **3 Reliable delivery** — every acknowledged message reaches every
//!   surviving client that was a member of its group when it was ordered (the
//!   last view before the message's position lists it; membership is taken from
//!   all clients' views). A message nobody delivered is bounded by the
//!   positions of the same publisher's delivered neighbours (and
//!   [`PublisherLog::not_before`]); survivors that were members throughout that
//!   stretch must have it. A surviving client listed in a view delivers that view.
//! * **5 No creation, no duplication** — every delivered message was sent (is in
//!   a publisher log), to the group it is delivered in, and no client delivers
//!   it twice.
//! * **6 Virtual synchrony** — two survivors that deliver the same SERVER_LOST
//!   view delivered the same messages of the group since their previous common
//!   view.
//! * **7 Membership follows servers** — for each server in
//!   [`Run::lost_servers`], each survivor that shared a group with members on it
//!   sees them all dropped by exactly one SERVER_LOST view per loss (members on a
//!   server are those whose private name `#<client>#<server>` ends in it), at
//!   the same gid as every other survivor — unless they had all left (LEAVE)
//!   before. Dropping them with any other change (e.g. DISCONNECT) is a violation.
//! * **Gid order** — each client's gids of a group strictly increase.
//!
//! Limits: the checker assumes one primary component (partitioned sides that
//! reuse gids must be checked as separate runs, or with [`check_partitioned`],
//! which keeps the checks that hold across sides), that members of a lost
//! server are not cut (DISCONNECT) just before the loss, and that sessions using
//! `no_self_delivery` are not recorded as surviving members of groups they
//! publish to.
#![forbid(unsafe_code)]

mod check;
mod partitioned;
mod payload;
mod record;
mod violation;

pub use check::{Summary, assert_valid, check};
pub use partitioned::check_partitioned;
pub use payload::{MsgId, decode_payload, encode_payload};
pub use record::{ClientLog, Pos, PublisherLog, Record, Run, pos_of, server_of};
pub use violation::{EventKey, Invariant, Violation, report};
