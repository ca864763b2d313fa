//! The server's state machine: one task owns every piece of bus state (the
//! server view, the group table, the order of ops, the sessions and the peer
//! links) and handles one input at a time, so no state is shared behind locks.
//! gRPC tasks talk to it through [`CoreHandle`]; it talks back through
//! [`Outbox`]es, which it never waits on.
//!
//! * [`order`]: submitting ops, sequencing them (as coordinator), applying them.
//! * [`view`]: agreeing on a new server view when links come and go.
//! * [`links`]: peer link bookkeeping and keepalives.
//! * [`sessions`]: client sessions and what they are delivered.

pub mod groups;
mod links;
mod order;
mod sessions;
mod view;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use bytes::Bytes;
use proto::msgc::v1::{Event, GroupInfo, Hello, PeerFrame, PeerMessage, ServerStatus};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};

use crate::config::ServerConfig;
use crate::outbox::Outbox;
use groups::GroupTable;

pub use links::LinkId;

/// Identifies a client session on this server.
pub type SessionId = u64;

/// A client command after the session task has checked it.
#[derive(Debug, Clone)]
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

/// What a session task gets back when its session is registered.
pub struct SessionOpened {
    /// The session's id, for later inputs.
    pub id: SessionId,
    /// `#<client>#<server>`.
    pub private_name: String,
    /// Where the core queues this session's events.
    pub outbox: Arc<Outbox<Event>>,
    /// The session's publish acknowledgements.
    pub acks: Arc<Acks>,
    /// View installed when the session opened.
    pub view_id: u64,
}

/// How far a session's publishes have been acknowledged (stable) (written by the core,
/// read by the session's stream).
#[derive(Debug, Default)]
pub struct Acks {
    /// Publishes acknowledged so far.
    pub count: AtomicU64,
    /// Position of the last one: view.
    pub view_id: AtomicU64,
    /// Position of the last one: sequence number.
    pub seq: AtomicU64,
}

impl Acks {
    fn record(&self, position: proto::msgc::v1::Position) {
        use std::sync::atomic::Ordering;
        self.view_id.store(position.view_id, Ordering::Relaxed);
        self.seq.store(position.seq, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Release);
    }

    /// Publishes acknowledged so far.
    pub fn count(&self) -> u64 {
        self.count.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Position of the last acknowledged publish.
    pub fn last_position(&self) -> proto::msgc::v1::Position {
        use std::sync::atomic::Ordering;
        let _ = self.count.load(Ordering::Acquire);
        proto::msgc::v1::Position {
            view_id: self.view_id.load(Ordering::Relaxed),
            seq: self.seq.load(Ordering::Relaxed),
        }
    }
}

/// Why a session could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Another session on this server already has that client name.
    #[error("client name {0:?} is already in use on this server")]
    NameTaken(String),
    /// The server is shutting down.
    #[error("server is shutting down")]
    ShuttingDown,
}

/// Read-only questions for the admin API.
pub enum Query {
    /// Groups (all, or one by name) with members.
    Groups(Option<String>, oneshot::Sender<Vec<GroupInfo>>),
    /// This server's view and links.
    Status(oneshot::Sender<ServerStatus>),
}

/// Everything the core reacts to.
pub enum Input {
    /// A session said hello.
    OpenSession(Hello, oneshot::Sender<Result<SessionOpened, OpenError>>),
    /// Checked commands of a session, in order. The session task already
    /// holds one window permit per op.
    Commands(SessionId, Vec<ClientOp>),
    /// A session's stream ended.
    CloseSession(SessionId),
    /// A congested session's queue drained below its low watermark.
    SessionDrained(SessionId),
    /// A peer link finished its handshake.
    LinkUp {
        /// The peer's name.
        peer: String,
        /// The peer process's incarnation.
        incarnation: u64,
        /// This link.
        link: LinkId,
        /// Where to queue messages for the peer.
        outbox: Arc<Outbox<PeerMessage>>,
    },
    /// A peer link ended.
    LinkDown {
        /// The peer's name.
        peer: String,
        /// The link that ended (an older link's end is ignored).
        link: LinkId,
        /// Why.
        reason: String,
    },
    /// A frame arrived on a peer link.
    Peer {
        /// The peer's name.
        peer: String,
        /// The link it came on.
        link: LinkId,
        /// The frame.
        frame: PeerFrame,
    },
    /// A question from the admin API.
    Query(Query),
    /// Stop: close every session and link.
    Shutdown,
}

/// How the rest of the server reaches the core.
#[derive(Clone)]
pub struct CoreHandle {
    tx: mpsc::UnboundedSender<Input>,
    /// Flow-control window: a session task takes one permit per op before
    /// handing it to the core; the core gives permits back once the op is
    /// stable (applied by every server of the view).
    pub window: Arc<Semaphore>,
    /// Permits the window holds when nothing is in flight.
    pub window_size: usize,
    /// Becomes true once a view is installed after the first connection round.
    pub ready: watch::Receiver<bool>,
    next_link: Arc<AtomicU64>,
}

impl CoreHandle {
    /// Sends an input; false if the core has stopped.
    pub fn send(&self, input: Input) -> bool {
        self.tx.send(input).is_ok()
    }

    /// A fresh id for a new peer link.
    pub fn new_link_id(&self) -> LinkId {
        self.next_link
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }
}

/// Where the server stands in agreeing on a view.
#[derive(Debug)]
enum Phase {
    /// A view is installed and ops flow.
    Normal,
    /// This server proposed a view and gathers the members' states.
    Proposing(view::Proposal),
    /// This server answered a proposal and waits for the install.
    Flushing {
        /// The proposed view id.
        view_id: u64,
        /// Who proposed it.
        proposer: String,
    },
}

/// The installed server view.
#[derive(Debug, Clone, PartialEq)]
struct View {
    id: u64,
    /// Sorted; the first coordinates.
    members: Vec<String>,
    /// Incarnation of each member when the view was installed.
    incarnations: BTreeMap<String, u64>,
}

impl View {
    fn coordinator(&self) -> &str {
        self.members.first().map(String::as_str).unwrap_or_default()
    }
}

/// The state machine. See the module docs.
pub struct Core {
    cfg: Arc<ServerConfig>,
    incarnation: u64,
    rx: mpsc::UnboundedReceiver<Input>,
    /// For hooks that report back to the core (weak: the core must not keep
    /// its own channel open).
    weak_tx: mpsc::WeakUnboundedSender<Input>,
    window: Arc<Semaphore>,
    ready_tx: watch::Sender<bool>,
    started: Instant,

    // Peer links (links.rs).
    links: BTreeMap<String, links::Link>,
    history: BTreeMap<String, links::LinkHistory>,

    // Views (view.rs).
    view: View,
    phase: Phase,
    phase_since: Instant,
    max_view_id: u64,

    // Order (order.rs).
    order: order::OrderState,

    // Groups and sessions (sessions.rs).
    groups: GroupTable,
    sessions: HashMap<SessionId, sessions::Session>,
    by_name: HashMap<String, SessionId>,
    local_members: HashMap<String, Vec<SessionId>>,
    /// Local sessions above their high watermark, and since when.
    congested: HashMap<SessionId, Instant>,
    next_session: SessionId,
    /// Own ops handed to the core whose window permits are still held.
    held_permits: usize,
    stopping: bool,
}

impl Core {
    /// Creates the core and the handle the rest of the server uses.
    pub fn new(cfg: Arc<ServerConfig>) -> (Self, CoreHandle) {
        let (tx, rx) = mpsc::unbounded_channel();
        let window = Arc::new(Semaphore::new(cfg.submit_window()));
        let (ready_tx, ready) = watch::channel(false);
        let incarnation = rand::random::<u64>() | 1;
        let me = cfg.name.clone();
        let view = View {
            id: 1,
            members: vec![me.clone()],
            incarnations: [(me, incarnation)].into(),
        };
        let core = Self {
            cfg,
            incarnation,
            rx,
            weak_tx: tx.downgrade(),
            window: window.clone(),
            ready_tx,
            started: Instant::now(),
            links: BTreeMap::new(),
            history: BTreeMap::new(),
            view,
            phase: Phase::Normal,
            phase_since: Instant::now(),
            max_view_id: 1,
            order: order::OrderState::default(),
            groups: GroupTable::default(),
            sessions: HashMap::new(),
            by_name: HashMap::new(),
            local_members: HashMap::new(),
            congested: HashMap::new(),
            next_session: 1,
            held_permits: 0,
            stopping: false,
        };
        let window_size = core.cfg.submit_window();
        let handle = CoreHandle {
            tx,
            window,
            window_size,
            ready,
            next_link: Arc::new(AtomicU64::new(1)),
        };
        (core, handle)
    }

    /// This process's incarnation (sent in peer hellos).
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    fn is_coordinator(&self) -> bool {
        self.view.coordinator() == self.cfg.name
    }

    /// Runs until a [`Input::Shutdown`] or until every handle is dropped.
    pub async fn run(mut self) {
        let tick_every = (self.cfg.keepalive_interval / 4)
            .clamp(Duration::from_millis(10), Duration::from_secs(1));
        let mut tick = tokio::time::interval(tick_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let batch = self.cfg.messages_per_iter.max(1) * 32;
        let mut inputs = Vec::with_capacity(batch);
        loop {
            tokio::select! {
                n = self.rx.recv_many(&mut inputs, batch) => {
                    if n == 0 {
                        break;
                    }
                    for input in inputs.drain(..) {
                        // After a shutdown, what is left is dropped unanswered.
                        if !self.stopping {
                            self.handle(input);
                        }
                    }
                }
                _ = tick.tick() => self.on_tick(),
            }
            // Everything one turn produced goes out as one batch per peer.
            self.flush_outgoing();
            if self.stopping {
                break;
            }
        }
        self.close_everything();
    }

    fn handle(&mut self, input: Input) {
        match input {
            Input::OpenSession(hello, reply) => {
                let _ = reply.send(self.open_session(hello));
            }
            Input::Commands(id, ops) => self.on_commands(id, ops),
            Input::SessionDrained(id) => self.on_session_drained(id),
            Input::CloseSession(id) => {
                self.close_session(id, proto::msgc::v1::ViewChange::Disconnect, None)
            }
            Input::LinkUp {
                peer,
                incarnation,
                link,
                outbox,
            } => self.on_link_up(peer, incarnation, link, outbox),
            Input::LinkDown { peer, link, reason } => self.on_link_down(&peer, link, &reason),
            Input::Peer { peer, link, frame } => self.on_peer_frame(&peer, link, frame),
            Input::Query(q) => self.answer(q),
            Input::Shutdown => self.stopping = true,
        }
    }

    fn on_tick(&mut self) {
        let now = Instant::now();
        self.check_links(now);
        self.check_proposal(now);
        self.check_congestion(now);
        self.maybe_propose();
    }

    fn on_peer_frame(&mut self, peer: &str, link: LinkId, frame: PeerFrame) {
        if !self.touch_link(peer, link) {
            return;
        }
        for message in frame.messages {
            let Some(kind) = message.kind else { continue };
            use proto::msgc::v1::peer_message::Kind;
            match kind {
                Kind::Hello(_) => {}
                Kind::Keepalive(k) => self.on_keepalive(peer, k),
                Kind::Submit(s) => self.on_submit(peer, s),
                Kind::Sequenced(s) => self.on_sequenced(peer, s),
                Kind::Progress(p) => self.on_progress(peer, p),
                Kind::Propose(p) => self.on_propose(peer, p),
                Kind::FlushState(f) => self.on_flush_state(peer, f),
                Kind::Install(i) => self.on_install(peer, i),
                Kind::Refuse(r) => self.on_refuse(peer, r),
            }
        }
    }

    fn answer(&mut self, query: Query) {
        match query {
            Query::Groups(filter, reply) => {
                let groups = self
                    .groups
                    .iter()
                    .filter(|(name, g)| {
                        filter
                            .as_ref()
                            .map_or(!g.members.is_empty(), |f| f == *name)
                    })
                    .map(|(name, g)| GroupInfo {
                        group: name.clone(),
                        gid: g.gid,
                        leader: g
                            .members
                            .first()
                            .map(|m| m.private_name.clone())
                            .unwrap_or_default(),
                        members: g.members.clone(),
                    })
                    .collect();
                let _ = reply.send(groups);
            }
            Query::Status(reply) => {
                let _ = reply.send(ServerStatus {
                    server: self.cfg.name.clone(),
                    view_id: self.view.id,
                    members: self.view.members.clone(),
                    coordinator: self.view.coordinator().to_owned(),
                    links: self.link_status(),
                    sessions: self.sessions.len() as u64,
                    view_change_in_progress: !matches!(self.phase, Phase::Normal),
                });
            }
        }
    }

    /// Marks the bus ready once a view is installed after the first round of
    /// connections (every peer connected, or one reconnect interval passed).
    fn update_readiness(&mut self) {
        if *self.ready_tx.borrow() || !matches!(self.phase, Phase::Normal) {
            return;
        }
        let all_in_view = self.view.members.len() == self.cfg.peers.len();
        let waited =
            self.started.elapsed() >= self.cfg.reconnect_interval.min(self.cfg.connect_timeout);
        let view_matches_links =
            self.reachable() == self.view.members.iter().cloned().collect::<BTreeSet<_>>();
        if all_in_view || (waited && view_matches_links) {
            tracing::info!(view_id = self.view.id, members = ?self.view.members, "bus ready");
            let _ = self.ready_tx.send(true);
        }
    }

    fn close_everything(&mut self) {
        for session in self.sessions.values() {
            session.outbox.close(Some(tonic::Status::unavailable(
                "msgc server is shutting down",
            )));
        }
        for link in self.links.values() {
            link.outbox.close(None);
        }
    }
}
