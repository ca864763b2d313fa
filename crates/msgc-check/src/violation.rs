//! What the checker reports.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::payload::MsgId;
use crate::record::Pos;

/// An event of a group's total order, as the agreed-order check compares them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EventKey {
    /// A message, by identity.
    Message(MsgId),
    /// A group view, by gid.
    View(u32),
}

impl fmt::Display for EventKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventKey::Message(id) => write!(f, "message {id}"),
            EventKey::View(gid) => write!(f, "view gid {gid}"),
        }
    }
}

/// The guarantee a [`Violation`] breaks (numbers are those of msgc-semantics.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Invariant {
    /// The run itself is inconsistent (duplicate client names or message ids,
    /// more acknowledged than sent).
    MalformedRun,
    /// 1: every pair of clients delivers common events of a group in the same order.
    AgreedOrder,
    /// Every client that delivers an event sees it at the same position, and a
    /// client's positions within a group strictly increase.
    Positions,
    /// Every client that delivers an event sees the same content (message
    /// sender; view members, leader first, and change kind).
    Agreement,
    /// 2: a publisher's messages are delivered in the order sent.
    SenderFifo,
    /// 3: acknowledged messages (and views listing a client) reach every
    /// surviving member.
    ReliableDelivery,
    /// 5: nothing is delivered that was not sent, or in another group.
    NoCreation,
    /// 5: nothing is delivered twice to one client.
    NoDuplication,
    /// 6: survivors of a server loss delivered the same messages before it.
    VirtualSynchrony,
    /// 7: a lost server's members leave each group in one SERVER_LOST view, at
    /// the same gid for every survivor.
    MembershipFollowsServers,
    /// Each client's gids of a group strictly increase.
    GidOrder,
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Invariant::MalformedRun => "malformed run",
            Invariant::AgreedOrder => "agreed order (1)",
            Invariant::Positions => "positions",
            Invariant::Agreement => "event agreement",
            Invariant::SenderFifo => "sender FIFO (2)",
            Invariant::ReliableDelivery => "reliable delivery (3)",
            Invariant::NoCreation => "no creation (5)",
            Invariant::NoDuplication => "no duplication (5)",
            Invariant::VirtualSynchrony => "virtual synchrony (6)",
            Invariant::MembershipFollowsServers => "membership follows servers (7)",
            Invariant::GidOrder => "gid order",
        };
        f.write_str(name)
    }
}

/// One broken guarantee, with enough detail to find it in the logs. Record
/// indexes (`index`) are positions in the client's `records`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Violation {
    /// The run is inconsistent.
    #[error("malformed run: {reason}")]
    BadRun {
        /// What is wrong.
        reason: String,
    },
    /// Two clients deliver two common events in opposite orders.
    #[error(
        "agreed order: in group {group}, {a} delivers {a_first} before {a_then}, but {b} delivers them the other way round"
    )]
    OrderDisagrees {
        /// The group.
        group: String,
        /// One client.
        a: String,
        /// The event `a` delivers first.
        a_first: EventKey,
        /// The event `a` delivers later.
        a_then: EventKey,
        /// The other client.
        b: String,
    },
    /// Two clients deliver one event at different positions.
    #[error(
        "positions disagree: in group {group}, {event} is at {a_pos:?} for {a} but {b_pos:?} for {b}"
    )]
    PositionsDisagree {
        /// The group.
        group: String,
        /// The event.
        event: EventKey,
        /// The first client that delivered it.
        a: String,
        /// Its position there.
        a_pos: Pos,
        /// Another client.
        b: String,
        /// Its position there.
        b_pos: Pos,
    },
    /// A client's positions within a group do not strictly increase.
    #[error(
        "positions: {client} delivers {event} of group {group} at {pos:?}, not after the previous {prev:?} (record {index})"
    )]
    PositionNotIncreasing {
        /// The client.
        client: String,
        /// The group.
        group: String,
        /// The event delivered out of position.
        event: EventKey,
        /// Record index in the client's log.
        index: usize,
        /// Position of the client's previous event of the group.
        prev: Pos,
        /// Position of this event.
        pos: Pos,
    },
    /// Two clients see a different sender private name for one message.
    #[error(
        "sender disagrees: message {id} of group {group} is from {a_sender} for {a} but from {b_sender} for {b}"
    )]
    SenderDisagrees {
        /// The group.
        group: String,
        /// The message.
        id: MsgId,
        /// The first client that delivered it.
        a: String,
        /// The sender it saw.
        a_sender: String,
        /// Another client.
        b: String,
        /// The sender that one saw.
        b_sender: String,
    },
    /// Two clients see different member lists (or change kinds) for one view.
    #[error("view disagrees: group {group} gid {gid} is {a_view} for {a} but {b_view} for {b}")]
    ViewDisagrees {
        /// The group.
        group: String,
        /// The view.
        gid: u32,
        /// The first client that delivered it.
        a: String,
        /// Change kind and members as `a` saw them.
        a_view: String,
        /// Another client.
        b: String,
        /// Change kind and members as `b` saw them.
        b_view: String,
    },
    /// A client's gids of a group do not strictly increase.
    #[error(
        "gid order: {client} delivers gid {gid} of group {group} after gid {prev} (record {index})"
    )]
    GidNotIncreasing {
        /// The client.
        client: String,
        /// The group.
        group: String,
        /// Record index in the client's log.
        index: usize,
        /// The client's previous gid of the group.
        prev: u32,
        /// This gid.
        gid: u32,
    },
    /// A client delivers a publisher's messages out of send order.
    #[error(
        "sender FIFO: {client} delivers {publisher}/{then} (record {index}) of group {group} after {publisher}/{first}, which was sent later"
    )]
    FifoViolated {
        /// The client.
        client: String,
        /// The group.
        group: String,
        /// The publisher tag.
        publisher: String,
        /// Counter delivered first (sent later).
        first: u64,
        /// Counter delivered after it (sent earlier).
        then: u64,
        /// Record index of `then` in the client's log.
        index: usize,
    },
    /// A surviving member misses an acknowledged message.
    #[error(
        "reliable delivery: survivor {client} never delivers acknowledged message {id} of group {group} (ordered at {position:?}) although it was a member"
    )]
    Missing {
        /// The client.
        client: String,
        /// The group.
        group: String,
        /// The message.
        id: MsgId,
        /// The message's position if any client delivered it.
        position: Option<Pos>,
    },
    /// A surviving client listed in a view never delivers that view.
    #[error(
        "reliable delivery: survivor {client} is listed in view gid {gid} of group {group} but never delivers it"
    )]
    ViewMissing {
        /// The client.
        client: String,
        /// The group.
        group: String,
        /// The view.
        gid: u32,
    },
    /// A client delivers a message nobody sent.
    #[error(
        "no creation: {client} delivers {id} in group {group} (record {index}) but no publisher sent it"
    )]
    Created {
        /// The client.
        client: String,
        /// The group.
        group: String,
        /// The message.
        id: MsgId,
        /// Record index in the client's log.
        index: usize,
    },
    /// A client delivers a message in a group it was not published to.
    #[error(
        "no creation: {client} delivers {id} in group {delivered_in} (record {index}) but it was published to {published_to}"
    )]
    WrongGroup {
        /// The client.
        client: String,
        /// The message.
        id: MsgId,
        /// The group it was sent to.
        published_to: String,
        /// The group it was delivered in.
        delivered_in: String,
        /// Record index in the client's log.
        index: usize,
    },
    /// A client delivers one message twice.
    #[error(
        "no duplication: {client} delivers {id} of group {group} twice (records {first_index} and {index})"
    )]
    Duplicated {
        /// The client.
        client: String,
        /// The group.
        group: String,
        /// The message.
        id: MsgId,
        /// Record index of the first delivery.
        first_index: usize,
        /// Record index of the repeat.
        index: usize,
    },
    /// Two survivors deliver different message sets between their last common
    /// view and a SERVER_LOST view.
    #[error(
        "virtual synchrony: between gid {since_gid} and SERVER_LOST gid {gid} of group {group}, only {a} delivers {only_a:?} and only {b} delivers {only_b:?}"
    )]
    VirtualSynchrony {
        /// The group.
        group: String,
        /// The SERVER_LOST view.
        gid: u32,
        /// The previous view both delivered.
        since_gid: u32,
        /// One survivor.
        a: String,
        /// The other survivor.
        b: String,
        /// Messages only `a` delivered in between.
        only_a: Vec<MsgId>,
        /// Messages only `b` delivered in between.
        only_b: Vec<MsgId>,
    },
    /// A survivor does not deliver the expected number of SERVER_LOST views
    /// that drop a lost server's members from a group (a survivor that sees
    /// the loss at another gid than the others also lands here, besides
    /// [`Violation::ViewMissing`]).
    #[error(
        "membership follows servers: survivor {client} should see {expected} SERVER_LOST view(s) of group {group} dropping the members on {server}, but sees {got:?}"
    )]
    ServerLostViews {
        /// The client.
        client: String,
        /// The group.
        group: String,
        /// The lost server.
        server: String,
        /// How many such views it should see.
        expected: usize,
        /// Gids of the ones it saw.
        got: Vec<u32>,
    },
    /// A SERVER_LOST view drops some members of a lost server but keeps others.
    #[error(
        "membership follows servers: SERVER_LOST view gid {gid} of group {group} (seen by {client}) keeps {kept:?} on {server}"
    )]
    ServerLostPartial {
        /// The client that saw it.
        client: String,
        /// The group.
        group: String,
        /// The view.
        gid: u32,
        /// The server whose members were dropped only in part.
        server: String,
        /// Members on that server it still lists.
        kept: Vec<String>,
    },
}

impl Violation {
    /// The guarantee this violation breaks.
    pub fn invariant(&self) -> Invariant {
        match self {
            Violation::BadRun { .. } => Invariant::MalformedRun,
            Violation::OrderDisagrees { .. } => Invariant::AgreedOrder,
            Violation::PositionsDisagree { .. } | Violation::PositionNotIncreasing { .. } => {
                Invariant::Positions
            }
            Violation::SenderDisagrees { .. } | Violation::ViewDisagrees { .. } => {
                Invariant::Agreement
            }
            Violation::GidNotIncreasing { .. } => Invariant::GidOrder,
            Violation::FifoViolated { .. } => Invariant::SenderFifo,
            Violation::Missing { .. } | Violation::ViewMissing { .. } => {
                Invariant::ReliableDelivery
            }
            Violation::Created { .. } | Violation::WrongGroup { .. } => Invariant::NoCreation,
            Violation::Duplicated { .. } => Invariant::NoDuplication,
            Violation::VirtualSynchrony { .. } => Invariant::VirtualSynchrony,
            Violation::ServerLostViews { .. } | Violation::ServerLostPartial { .. } => {
                Invariant::MembershipFollowsServers
            }
        }
    }
}

/// A readable report of violations: a count per invariant, then the first
/// `limit` violations in full (for a failing test's message).
pub fn report(violations: &[Violation], limit: usize) -> String {
    let mut counts: BTreeMap<Invariant, usize> = BTreeMap::new();
    for v in violations {
        *counts.entry(v.invariant()).or_default() += 1;
    }
    let mut out = format!("{} violation(s):\n", violations.len());
    for (invariant, n) in &counts {
        out.push_str(&format!("  {invariant}: {n}\n"));
    }
    for v in violations.iter().take(limit) {
        out.push_str(&format!("- {v}\n"));
    }
    if violations.len() > limit {
        out.push_str(&format!("... and {} more\n", violations.len() - limit));
    }
    out
}
