//! Ops (what the total order carries) and the events sessions are given.

use bytes::Bytes;

use crate::ids::{MemberKey, Position, ServerId, SessionId};

/// What a node advertises with its membership (Momentum's node record).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct NodeRecord {
    /// Node name.
    pub node_name: String,
    /// Subcluster.
    pub subcluster: String,
    /// Node type.
    pub node_type: String,
    /// Version.
    pub version: String,
    /// Where its ECCluster_Listener is reached.
    pub listener_address: String,
}

/// A member of a group: one session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Which session (the identity; names are only for display).
    pub key: MemberKey,
    /// `#<client>#<server>`.
    pub private_name: String,
    /// Attached when joining.
    pub capabilities: Bytes,
    /// The node record of the session, if it gave one.
    pub node: Option<NodeRecord>,
}

/// Why a member left a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChangeKind {
    /// A member joined.
    Join,
    /// A member left on request.
    Leave,
    /// Members left because their server left the view.
    ServerLost,
    /// Members came back with a partition's other side.
    PartitionMerge,
    /// A member's session ended (closed, cut, stuck).
    Disconnect,
}

/// An op in the total order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    /// The server that submitted it.
    pub origin: ServerId,
    /// The origin's counter (submission order, from 1).
    pub origin_seq: u64,
    /// What it does.
    pub kind: OpKind,
}

/// What an op does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// A message to a group.
    Publish {
        /// The group.
        group: String,
        /// The sending session's private name.
        sender: String,
        /// The message.
        payload: Bytes,
    },
    /// A session joins a group.
    Join {
        /// The group.
        group: String,
        /// The new member.
        member: Member,
    },
    /// A session leaves a group.
    Leave {
        /// The group.
        group: String,
        /// Who leaves.
        key: MemberKey,
        /// Why (Leave or Disconnect).
        reason: ChangeKind,
    },
}

impl OpKind {
    /// True for joins and leaves (what changes the group table).
    pub fn is_membership(&self) -> bool {
        !matches!(self, OpKind::Publish { .. })
    }

    /// Bytes this op weighs in queues (payload plus a fixed overhead).
    pub fn weight(&self) -> usize {
        match self {
            OpKind::Publish { payload, group, .. } => 64 + payload.len() + group.len(),
            OpKind::Join { member, .. } => 128 + member.capabilities.len(),
            OpKind::Leave { .. } => 96,
        }
    }
}

/// A command of a client session, checked by the driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientOp {
    /// Join a group.
    Join {
        /// The group.
        group: String,
        /// Attached to the membership.
        capabilities: Bytes,
    },
    /// Leave a group.
    Leave {
        /// The group.
        group: String,
    },
    /// Multicast to a group.
    Publish {
        /// The group.
        group: String,
        /// The message.
        payload: Bytes,
    },
}

/// A group view as a session sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupView {
    /// The group.
    pub group: String,
    /// Grows with every change.
    pub gid: u32,
    /// What changed.
    pub change: ChangeKind,
    /// Members in seniority order (the first leads).
    pub members: Vec<Member>,
    /// Private names that joined or left with this change.
    pub changed: Vec<String>,
    /// Where it sits in the order.
    pub position: Position,
}

/// What a session is given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A message of a group the session is a member of.
    Delivery {
        /// The group.
        group: String,
        /// The sender's private name.
        sender: String,
        /// The message.
        payload: Bytes,
        /// Its position.
        position: Position,
        /// The op's identity (origin, origin seq), for checkers and dedup.
        origin: (ServerId, u64),
    },
    /// A new view of a group the session is a member of.
    View(GroupView),
}

/// A session id of this server, as carried inside a member key.
pub fn local_key(server: &ServerId, session: SessionId) -> MemberKey {
    MemberKey {
        server: server.clone(),
        session,
    }
}
