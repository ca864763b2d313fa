//! The msgc bus as a pure state machine.
//!
//! [`Core`] holds one server's whole bus state: its links and rows
//! (connectivity), the server view and the view change, the total order, the
//! group table and the sessions. It does no I/O and reads no clock: every
//! input comes with the current time ([`Core::handle`]), and everything it
//! wants done comes out as [`Effect`]s ([`Core::take_effects`]). The server
//! (`msgc-server`) is a driver that feeds gRPC traffic in and applies the
//! effects; the simulator (`msgc-sim`) runs many cores on virtual time.
//!
//! The protocol is specified in `docs/view-change.md`; rule numbers in the
//! comments (`[rule 14]`) point there.
//!
//! * [`ids`], [`op`], [`msg`]: the domain types.
//! * `links`: links, keepalives, rows and components (who can form a view).
//! * `order`: submitting, sequencing, stability, delivery.
//! * `view`: proposals, flush, install, commit.
//! * [`plan`]: the proposer's computation of an install (a pure function).
//! * `sessions`: client sessions.

pub mod groups;
pub mod ids;
mod links;
pub mod msg;
pub mod op;
mod order;
pub mod plan;
mod sessions;
mod transfer;
mod view;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Duration;

pub use groups::{Group, GroupTable};
pub use ids::{LinkId, MemberKey, Position, Seq, ServerId, ServerName, SessionId, ViewId};
pub use msg::{FlushState, InstallRecord, PeerMsg, Row, Source, View};
pub use op::{ChangeKind, ClientOp, Event, GroupView, Member, NodeRecord, Op, OpKind};

/// Time since an origin the driver chooses (the core never reads a clock).
pub type Time = Duration;

/// What the core needs to know of its configuration.
#[derive(Clone, Debug)]
pub struct CoreConfig {
    /// This server's name.
    pub name: ServerName,
    /// Every server of the cluster (including this one).
    pub peers: Vec<ServerName>,
    /// Keepalives go out every half interval on a quiet link; a link silent
    /// for 1.5 intervals is dropped.
    pub keepalive_interval: Duration,
    /// A proposer waits this long for answers and acks.
    pub proposal_timeout: Duration,
    /// Readiness waits at most this long for the first round of links.
    pub ready_after: Duration,
    /// A session congested this long is cut as stuck.
    pub stuck_after: Duration,
}

/// A client session's hello.
#[derive(Clone, Debug, Default)]
pub struct Hello {
    /// The client's name (`None`: the core makes one).
    pub client_name: Option<String>,
    /// The client does not receive its own messages.
    pub no_self_delivery: bool,
    /// Its node record.
    pub node: Option<NodeRecord>,
}

/// A session the core registered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opened {
    /// For later inputs.
    pub id: SessionId,
    /// `#<client>#<server>`.
    pub private_name: String,
    /// The epoch of the view when it opened.
    pub epoch: u64,
}

/// Why a session could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Another open session on this server has that client name.
    #[error("client name {0:?} is already in use on this server")]
    NameTaken(String),
    /// The server is shutting down.
    #[error("server is shutting down")]
    ShuttingDown,
}

/// Why the core ends a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// Its queue passed the hard limit.
    Overflow,
    /// It stayed congested for too long.
    Stuck,
    /// The server stops.
    Shutdown,
    /// Some of its publishes were delivered only by another side of a
    /// partition, so its own side will never deliver or acknowledge them.
    PublishesLost,
}

/// Everything the core reacts to (besides [`Core::open_session`]).
#[derive(Debug, Clone)]
pub enum Input {
    /// Checked commands of a session, in order; the driver holds one window
    /// permit per op (given back by [`Effect::ReleasePermits`]).
    Commands(SessionId, Vec<ClientOp>),
    /// A session's stream ended.
    CloseSession(SessionId),
    /// A session's queue passed its high watermark.
    SessionCongested(SessionId),
    /// A congested session's queue drained below its low watermark.
    SessionDrained(SessionId),
    /// A session's queue passed the hard limit: cut it.
    SessionOverflow(SessionId),
    /// A peer link finished its handshake.
    LinkUp {
        /// The peer.
        peer: ServerId,
        /// This link.
        link: LinkId,
    },
    /// A peer link ended (an older link's end is ignored).
    LinkDown {
        /// The peer.
        peer: ServerName,
        /// The link that ended.
        link: LinkId,
    },
    /// Messages arrived on a peer link, in order.
    Peer {
        /// The peer.
        peer: ServerName,
        /// The link they came on.
        link: LinkId,
        /// The messages.
        msgs: Vec<PeerMsg>,
    },
    /// Time passed (call at least every quarter keepalive interval).
    Tick,
    /// End of a turn: what was submitted is sent or sequenced as one batch.
    EndOfTurn,
    /// Stop: every session and link is closed.
    Shutdown,
}

/// Everything the core wants done.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Queue a message on a link.
    Send {
        /// The peer.
        to: ServerName,
        /// The link to send it on.
        link: LinkId,
        /// The message.
        msg: PeerMsg,
    },
    /// Queue an event for a session.
    Deliver {
        /// The session.
        session: SessionId,
        /// The event.
        event: Event,
    },
    /// A publish of the session is acknowledged (stable).
    Acked {
        /// The session.
        session: SessionId,
        /// The message's position.
        position: Position,
    },
    /// Give window permits back.
    ReleasePermits(usize),
    /// End a session.
    CloseSession {
        /// The session.
        session: SessionId,
        /// Why.
        reason: CloseReason,
    },
    /// Close a link (the peer's link is dropped too when the stream ends).
    CloseLink {
        /// The peer.
        peer: ServerName,
        /// The link.
        link: LinkId,
        /// Why, for the log and the admin view.
        reason: String,
    },
    /// The bus is ready (first view installed after the first link round).
    Ready,
    /// This server entered a view through this install (for observers: the
    /// simulator's checker; the driver only logs it).
    Installed {
        /// The record entered.
        record: Box<InstallRecord>,
    },
    /// A view started here (for logs and metrics).
    ViewStarted {
        /// The view.
        view: View,
    },
}

/// Read-only status for the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// This server.
    pub server: ServerId,
    /// The current view.
    pub view: View,
    /// True while the view has not started or a proposal is answered.
    pub view_change_in_progress: bool,
    /// Open sessions.
    pub sessions: usize,
    /// Live links, with their round-trip time (µs).
    pub links: Vec<(ServerId, u64)>,
}

/// An own op not yet delivered.
#[derive(Debug, Clone)]
struct Pending {
    op: Op,
    /// The publishing session (to acknowledge), if the op is a publish.
    session: Option<SessionId>,
    /// The session holds a window permit for it.
    permit: bool,
}

/// One server's bus state. See the crate docs.
pub struct Core {
    cfg: CoreConfig,
    me: ServerId,
    now: Time,
    started_at: Time,
    effects: Vec<Effect>,
    stopping: bool,
    ready: bool,

    // links.rs
    links: BTreeMap<ServerName, links::Link>,
    rows: BTreeMap<ServerName, Row>,
    row_version: u64,

    // view.rs
    view: View,
    started: bool,
    /// The install held for the answered proposal until its commit
    /// [rule 17].
    holds: Option<InstallRecord>,
    answered: Option<(ViewId, ServerId)>,
    max_view: ViewId,
    proposal: Option<view::Proposal>,
    retry_at: Time,
    /// Since when the component has lacked members of the view (see
    /// `Core::settling`).
    shrunk_since: Option<Time>,
    /// A link to a member of the current view dropped or was replaced since
    /// it started: messages on it may be lost, so the view must change even
    /// if the link comes back.
    view_broken: bool,

    // order.rs
    order: order::Order,
    pending: VecDeque<Pending>,
    next_origin_seq: u64,
    delivered_from: BTreeMap<ServerId, u64>,

    // sessions.rs
    groups: GroupTable,
    sessions: HashMap<SessionId, sessions::Session>,
    by_name: HashMap<String, SessionId>,
    local_members: HashMap<String, Vec<SessionId>>,
    congested: BTreeMap<SessionId, Time>,
    next_session: u64,
}

impl Core {
    /// A core for server `cfg.name` with the given incarnation (the driver
    /// draws it from its seeded source), starting at time `now` in a view of
    /// its own.
    pub fn new(cfg: CoreConfig, incarnation: u64, now: Time) -> Self {
        let me = ServerId {
            name: cfg.name.clone(),
            incarnation,
        };
        let id = ViewId {
            epoch: 1,
            proposer: me.clone(),
        };
        let view = View {
            id: id.clone(),
            members: vec![me.clone()],
        };
        let mut core = Self {
            cfg,
            me,
            now,
            started_at: now,
            effects: Vec::new(),
            stopping: false,
            ready: false,
            links: BTreeMap::new(),
            rows: BTreeMap::new(),
            row_version: 0,
            view,
            started: true,
            holds: None,
            answered: None,
            max_view: id,
            proposal: None,
            retry_at: now,
            shrunk_since: None,
            view_broken: false,
            order: order::Order::default(),
            pending: VecDeque::new(),
            next_origin_seq: 0,
            delivered_from: BTreeMap::new(),
            groups: GroupTable::default(),
            sessions: HashMap::new(),
            by_name: HashMap::new(),
            local_members: HashMap::new(),
            congested: BTreeMap::new(),
            next_session: 1,
        };
        core.order.start(&core.view, &core.me);
        core.update_row();
        core
    }

    /// This server's id.
    pub fn id(&self) -> &ServerId {
        &self.me
    }

    /// Handles one input at time `now`. Effects pile up until
    /// [`Core::take_effects`].
    pub fn handle(&mut self, now: Time, input: Input) {
        self.now = self.now.max(now);
        if self.stopping {
            if let Input::Commands(_, ops) = input {
                self.release_permits(ops.len());
            }
            return;
        }
        match input {
            Input::Commands(id, ops) => self.on_commands(id, ops),
            Input::CloseSession(id) => self.close_session(id, ChangeKind::Disconnect),
            Input::SessionCongested(id) => self.on_congested(id),
            Input::SessionDrained(id) => self.on_drained(id),
            Input::SessionOverflow(id) => self.cut_session(id, CloseReason::Overflow),
            Input::LinkUp { peer, link } => self.on_link_up(peer, link),
            Input::LinkDown { peer, link } => self.on_link_down(&peer, link),
            Input::Peer { peer, link, msgs } => self.on_peer(&peer, link, msgs),
            Input::Tick => self.on_tick(),
            Input::EndOfTurn => self.end_turn(),
            Input::Shutdown => self.shutdown(),
        }
    }

    /// Everything the core wants done since the last call, in order.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// Effects waiting to be taken.
    pub fn effects(&self) -> &[Effect] {
        &self.effects
    }

    /// The current view.
    pub fn view(&self) -> &View {
        &self.view
    }

    /// True once the current view has started and no proposal is answered.
    pub fn is_active(&self) -> bool {
        self.started && self.answered.is_none()
    }

    /// Groups with members (all, or one by name).
    pub fn groups(&self, filter: Option<&str>) -> Vec<(String, Group)> {
        self.groups
            .iter()
            .filter(|(name, _)| filter.is_none_or(|f| f == name.as_str()))
            .map(|(name, g)| (name.clone(), g.clone()))
            .collect()
    }

    /// The server's view, sessions and links.
    pub fn status(&self) -> Status {
        Status {
            server: self.me.clone(),
            view: self.view.clone(),
            view_change_in_progress: !self.is_active() || self.proposal.is_some(),
            sessions: self.sessions.len(),
            links: self
                .links
                .values()
                .map(|l| (l.peer.clone(), l.rtt_us))
                .collect(),
        }
    }

    fn on_tick(&mut self) {
        self.check_links();
        self.check_proposal();
        self.check_congestion();
        self.maybe_propose();
        self.update_readiness();
    }

    fn shutdown(&mut self) {
        self.stopping = true;
        let ids: BTreeSet<SessionId> = self.sessions.keys().copied().collect();
        for id in ids {
            self.effects.push(Effect::CloseSession {
                session: id,
                reason: CloseReason::Shutdown,
            });
        }
        let links: Vec<(ServerName, LinkId)> =
            self.links.iter().map(|(n, l)| (n.clone(), l.id)).collect();
        for (peer, link) in links {
            self.effects.push(Effect::CloseLink {
                peer,
                link,
                reason: "server is shutting down".into(),
            });
        }
        let held: usize = self.pending.iter().filter(|p| p.permit).count();
        self.release_permits(held);
    }

    fn release_permits(&mut self, n: usize) {
        if n > 0 {
            self.effects.push(Effect::ReleasePermits(n));
        }
    }

    /// Marks the bus ready once a view has started after the first round of
    /// links (every peer in the view, or `ready_after` passed and the view is
    /// this server's whole component).
    fn update_readiness(&mut self) {
        if self.ready || !self.is_active() || self.stopping {
            return;
        }
        let all_in = self.view.members.len() == self.cfg.peers.len();
        let waited = self.now.saturating_sub(self.started_at) >= self.cfg.ready_after;
        if all_in || (waited && self.component() == self.view.members) {
            self.ready = true;
            self.effects.push(Effect::Ready);
        }
    }
}

#[cfg(test)]
mod tests;
