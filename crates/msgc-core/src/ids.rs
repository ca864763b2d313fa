//! Identities: servers, views, sessions, positions. Domain types, so no
//! empty string ever stands for "none".

use std::fmt;
use std::sync::Arc;

/// A server's name as listed in `peers` (lower-case, compared by bytes).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerName(Arc<str>);

impl ServerName {
    /// Wraps a name (the driver checks it against `peers`).
    pub fn new(name: impl AsRef<str>) -> Self {
        Self(Arc::from(name.as_ref()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ServerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for ServerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One run of a server: a restarted server is a new member.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerId {
    /// The name in `peers`.
    pub name: ServerName,
    /// Drawn from a seeded source when the process starts.
    pub incarnation: u64,
}

impl ServerId {
    /// A server id.
    pub fn new(name: impl AsRef<str>, incarnation: u64) -> Self {
        Self {
            name: ServerName::new(name),
            incarnation,
        }
    }
}

impl fmt::Debug for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:x}", self.name, self.incarnation & 0xffff)
    }
}

/// A server view's id: never repeats, ordered by epoch first. Clients see the
/// epoch in positions.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ViewId {
    /// Grows with every proposal.
    pub epoch: u64,
    /// Who proposed it (and so coordinates it).
    pub proposer: ServerId,
}

impl fmt::Debug for ViewId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}@{:?}", self.epoch, self.proposer)
    }
}

/// A client session on one server (never reused by that server).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct SessionId(pub u64);

/// A session anywhere in the cluster: the key of a group member.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct MemberKey {
    /// The server the session lives on.
    pub server: ServerId,
    /// The session on that server.
    pub session: SessionId,
}

/// A peer link (one stream); a reconnect makes a new one.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct LinkId(pub u64);

/// Sequence number of an op within a view (the first op is 1).
pub type Seq = u64;

/// Where an event sits in the order: clients see `(epoch, seq)`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Position {
    /// The view's epoch.
    pub epoch: u64,
    /// The op's sequence number in that view.
    pub seq: Seq,
}
