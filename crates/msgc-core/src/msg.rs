//! Server-to-server messages, as domain types (the driver encodes them).

use std::collections::BTreeMap;

use crate::groups::GroupTable;
use crate::ids::{Seq, ServerId, ViewId};
use crate::op::Op;

/// A server view: id and members (sorted by name; the first coordinates).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct View {
    /// Its id.
    pub id: ViewId,
    /// Its members, sorted.
    pub members: Vec<ServerId>,
}

impl View {
    /// The coordinator (lowest name).
    pub fn coordinator(&self) -> &ServerId {
        &self.members[0]
    }

    /// True if the server is a member.
    pub fn contains(&self, id: &ServerId) -> bool {
        self.members.iter().any(|m| m == id)
    }
}

/// What a server tells everyone about itself (flooded; the newest wins).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// Whose row.
    pub server: ServerId,
    /// Grows with every change of this row.
    pub version: u64,
    /// The server's current view.
    pub view: ViewId,
    /// The proposal it answered and has not yet seen installed, if any.
    pub answered: Option<ViewId>,
    /// Servers it has a live link with.
    pub links: Vec<ServerId>,
}

/// Where one member comes from into a new view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// The view it leaves.
    pub from: ViewId,
    /// It delivers that view's ops up to here, and drops the rest.
    pub cut: Seq,
    /// Above this seq (the highest stable point its side knew), only ops
    /// whose origin is in `keep_from` are delivered [rule 14a].
    pub keep_below: Seq,
    /// The servers of the side the cut was made for (a reused trim keeps
    /// the side it was first made for).
    pub keep_from: Vec<ServerId>,
}

/// How a view is formed: each member's cut of the view it leaves, and the
/// table and duplicate fence it starts with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstallRecord {
    /// The new view.
    pub view: View,
    /// Per member: the view it leaves and that view's cut.
    pub sources: BTreeMap<ServerId, Source>,
    /// The group table the view starts with.
    pub table: GroupTable,
    /// Per origin, the highest origin seq delivered on any side at its cut:
    /// nobody delivers those again, and their origin drops them (no replay
    /// across sides) [rule 15].
    pub high_water: BTreeMap<ServerId, u64>,
}

/// A member's answer to a proposal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlushState {
    /// The proposal answered.
    pub proposal: ViewId,
    /// The member's current view.
    pub current: ViewId,
    /// The install it holds for a proposal it answered and has not seen
    /// committed, if any (nothing of it delivered yet; its cuts are reused
    /// where they fit) [rule 14b].
    pub holds: Option<InstallRecord>,
    /// Ops of `current` delivered (1..=delivered).
    pub delivered: Seq,
    /// Ops of `current` held (1..=received).
    pub received: Seq,
    /// The stable point of `current` it knows.
    pub stable: Seq,
    /// The group table after `delivered`.
    pub table: GroupTable,
    /// Joins and leaves it holds in `(delivered, received]`, with their seqs.
    pub membership: Vec<(Seq, Op)>,
    /// Per origin, the highest origin seq it delivered.
    pub high_water: BTreeMap<ServerId, u64>,
    /// `(origin, origin seq)` of every op it holds in `(delivered, received]`,
    /// in order (no payloads).
    pub held: Vec<(ServerId, u64)>,
}

/// A server-to-server message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerMsg {
    /// Liveness and round-trip time on a quiet link.
    Keepalive {
        /// Sender's clock (µs) when sent; echoed back in `echo_us`.
        sent_us: u64,
        /// The echoed clock, or 0 for a request.
        echo_us: u64,
    },
    /// Rows (the sender's and ones it relays).
    Rows(Vec<Row>),
    /// Origin -> coordinator: ops to sequence, in submission order.
    Submit {
        /// The view they are for.
        view: ViewId,
        /// The ops.
        ops: Vec<Op>,
    },
    /// Coordinator -> members: ops in their final order.
    Sequenced {
        /// The view.
        view: ViewId,
        /// `ops[i]` has seq `first + i`.
        first: Seq,
        /// The ops.
        ops: Vec<Op>,
        /// Every member holds everything up to here: deliver it.
        stable: Seq,
        /// Every member knows the stable point is this far: acknowledge.
        acked: Seq,
    },
    /// Member -> coordinator: it holds every op up to `received`.
    Progress {
        /// The view.
        view: ViewId,
        /// How far it holds.
        received: Seq,
        /// The stable point it knows.
        stable: Seq,
    },
    /// Proposer -> members: stop, and report your state.
    Propose {
        /// The proposed view.
        view: View,
    },
    /// Member -> proposer.
    Flush(Box<FlushState>),
    /// Member -> proposer: this proposal is not answered.
    Refuse {
        /// The proposal refused.
        proposal: ViewId,
        /// The highest view id the member knows.
        known: ViewId,
    },
    /// Proposer -> member: hold this install until its commit.
    Install {
        /// The new view.
        record: Box<InstallRecord>,
    },
    /// Proposer -> a member holding them: send ops `(after, upto]` of `view`
    /// to `lagger`, which lacks them, so their side can take the cut an
    /// install held there gave that view [rule 14c].
    Fetch {
        /// The proposal being formed.
        proposal: ViewId,
        /// The view the ops are of (the holder's current view).
        view: ViewId,
        /// Who lacks them.
        lagger: ServerId,
        /// The lagger holds `1..=after`.
        after: Seq,
        /// It needs up to here.
        upto: Seq,
    },
    /// Holder -> lagger: one chunk of those ops, the first at `after + 1`.
    Transfer {
        /// The proposal being formed.
        proposal: ViewId,
        /// The view the ops are of.
        view: ViewId,
        /// The lagger holds `1..=after` before this chunk.
        after: Seq,
        /// The transfer ends here.
        upto: Seq,
        /// The ops, in order.
        ops: Vec<Op>,
    },
    /// Member -> proposer: the install is held.
    InstallAck {
        /// The view.
        view: ViewId,
    },
    /// Proposer -> members: every member holds the install; enter it (cut,
    /// table) and start the view.
    Commit {
        /// The view.
        view: ViewId,
    },
}

impl PeerMsg {
    /// Bytes this message weighs in a peer queue (roughly its encoded size).
    pub fn weight(&self) -> usize {
        match self {
            PeerMsg::Submit { ops, .. }
            | PeerMsg::Sequenced { ops, .. }
            | PeerMsg::Transfer { ops, .. } => {
                32 + ops.iter().map(|o| o.kind.weight()).sum::<usize>()
            }
            PeerMsg::Rows(rows) => rows.iter().map(|r| 48 + 24 * r.links.len()).sum(),
            PeerMsg::Flush(f) => {
                256 + f.table.len() * 128
                    + f.membership.len() * 128
                    + f.holds.as_ref().map_or(0, |r| 128 + r.table.len() * 128)
                    + (f.held.len() + f.high_water.len()) * 24
            }
            PeerMsg::Install { record } => 256 + 128 + record.table.len() * 128,
            _ => 32,
        }
    }
}
