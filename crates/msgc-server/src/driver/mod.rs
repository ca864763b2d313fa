//! The driver of the bus state machine: one task owns the
//! [`msgc_core::Core`] and everything that connects it to the world (the
//! outboxes of sessions and peer links, the flow-control window, readiness).
//!
//! gRPC tasks send it [`Input`]s through a [`CoreHandle`]. Each turn it takes
//! a batch of inputs, feeds them to the core with the time since start, ends
//! the turn ([`msgc_core::Input::EndOfTurn`]: what was submitted goes out as
//! one batch per peer) and applies the core's effects; a timer feeds
//! [`msgc_core::Input::Tick`] every quarter keepalive interval. It never
//! awaits on an outbox: a full one is reported back to the core (a session
//! congested or overflowing, a peer link down).
//!
//! * `effects`: applying [`msgc_core::Effect`]s.
//! * `links`: the link table (peer name -> current link) and its admin view.
//! * `metrics`: counting inputs, and the live-state gauges set before a scrape.
//! * [`wire`]: every conversion between core types and protobuf.

mod effects;
mod links;
mod metrics;
pub mod wire;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use msgc_core::{Core, CoreConfig, Event, LinkId, PeerMsg, ServerId, ServerName, SessionId};
use proto::msgc::v1::{GroupInfo, ServerStatus};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::config::ServerConfig;
use crate::metrics::{BusMetrics, PeerCounters};
use crate::outbox::Outbox;

pub use msgc_core::{ClientOp, Input as CoreInput, OpenError};

/// What a session task gets back when its session is registered.
pub struct SessionOpened {
    /// The session's id, for later inputs.
    pub id: SessionId,
    /// `#<client>#<server>`.
    pub private_name: String,
    /// The epoch of the server view when it opened.
    pub epoch: u64,
    /// Where the driver queues this session's events.
    pub outbox: Arc<Outbox<Event>>,
    /// The session's publish acknowledgements.
    pub acks: Arc<Acks>,
}

/// How far a session's publishes have been acknowledged (stable): written by
/// the driver, read by the session's stream.
#[derive(Debug, Default)]
pub struct Acks {
    count: AtomicU64,
    epoch: AtomicU64,
    seq: AtomicU64,
}

impl Acks {
    fn record(&self, position: msgc_core::Position) {
        self.epoch.store(position.epoch, Ordering::Relaxed);
        self.seq.store(position.seq, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Release);
    }

    /// Publishes acknowledged so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Acquire)
    }

    /// Position of the last acknowledged publish.
    pub fn last_position(&self) -> proto::msgc::v1::Position {
        let _ = self.count.load(Ordering::Acquire);
        proto::msgc::v1::Position {
            view_id: self.epoch.load(Ordering::Relaxed),
            seq: self.seq.load(Ordering::Relaxed),
        }
    }
}

/// Read-only questions for the admin API.
pub enum Query {
    /// Groups (all, or one by name) with members.
    Groups(Option<String>, oneshot::Sender<Vec<GroupInfo>>),
    /// This server's view and links.
    Status(oneshot::Sender<ServerStatus>),
    /// Set the metrics' live-state gauges (before a scrape).
    Metrics(oneshot::Sender<()>),
}

/// Everything the driver reacts to.
pub enum Input {
    /// An input for the core as it is.
    Core(CoreInput),
    /// A session said hello.
    OpenSession(
        msgc_core::Hello,
        oneshot::Sender<Result<SessionOpened, OpenError>>,
    ),
    /// A peer link finished its handshake.
    LinkUp {
        /// The peer, with the incarnation from its hello.
        peer: ServerId,
        /// This link.
        link: LinkId,
        /// Where to queue messages for the peer.
        outbox: Arc<Outbox<PeerMsg>>,
        /// Cancelled when the driver closes the link (the mesh task ends).
        closed: CancellationToken,
    },
    /// A peer link's stream ended.
    LinkDown {
        /// The peer.
        peer: ServerName,
        /// The link that ended (an older link's end is ignored).
        link: LinkId,
        /// Why.
        reason: String,
    },
    /// A question from the admin API.
    Query(Query),
}

impl From<CoreInput> for Input {
    fn from(input: CoreInput) -> Self {
        Input::Core(input)
    }
}

/// How the rest of the server reaches the driver.
#[derive(Clone)]
pub struct CoreHandle {
    tx: mpsc::UnboundedSender<Input>,
    /// Flow-control window: a session task takes one permit per op before
    /// handing it over; the core gives permits back once the op is stable
    /// (held by every server of the view).
    pub window: Arc<Semaphore>,
    /// Permits the window holds when nothing is in flight.
    pub window_size: usize,
    /// Becomes true once a view is installed after the first connection round.
    pub ready: watch::Receiver<bool>,
    /// The server's metrics (session tasks count refusals).
    pub metrics: Arc<BusMetrics>,
    next_link: Arc<AtomicU64>,
}

impl CoreHandle {
    /// Sends an input; false if the driver has stopped.
    pub fn send(&self, input: impl Into<Input>) -> bool {
        self.tx.send(input.into()).is_ok()
    }

    /// A fresh id for a new peer link.
    pub fn new_link_id(&self) -> LinkId {
        LinkId(self.next_link.fetch_add(1, Ordering::Relaxed))
    }
}

/// A registered session: where its events go.
struct SessionSlot {
    outbox: Arc<Outbox<Event>>,
    acks: Arc<Acks>,
    /// When each publish not yet acknowledged was handed over (acks come
    /// in publish order), for the publish → ack histogram.
    published_at: VecDeque<Duration>,
}

/// The core's configuration, from the server's.
pub fn core_config(cfg: &ServerConfig) -> CoreConfig {
    CoreConfig {
        name: ServerName::new(&cfg.name),
        peers: cfg.peers.keys().map(ServerName::new).collect(),
        keepalive_interval: cfg.keepalive_interval,
        proposal_timeout: (cfg.keepalive_interval * 2)
            .clamp(Duration::from_millis(300), Duration::from_secs(10)),
        ready_after: cfg.reconnect_interval.min(cfg.connect_timeout),
        stuck_after: stuck_after(cfg),
    }
}

/// The task that owns the core. See the module docs.
pub struct Driver {
    core: Core,
    cfg: Arc<ServerConfig>,
    started: Instant,
    rx: mpsc::UnboundedReceiver<Input>,
    /// For hooks that report back (weak: the driver must not keep its own
    /// channel open).
    weak_tx: mpsc::WeakUnboundedSender<Input>,
    window: Arc<Semaphore>,
    ready_tx: watch::Sender<bool>,
    sessions: HashMap<SessionId, SessionSlot>,
    links: links::LinkTable,
    /// Inputs that applying effects produced (a full queue), fed back at once.
    followups: Vec<CoreInput>,
    /// Sessions whose acknowledgements moved this turn.
    to_wake: Vec<SessionId>,
    stopping: bool,
    metrics: Arc<BusMetrics>,
    /// Each peer's counters, looked up once.
    peer_counters: HashMap<ServerName, PeerCounters>,
    /// The time of the turn being applied.
    turn_now: Duration,
}

impl Driver {
    /// Creates the driver (with a fresh incarnation) and the handle the rest
    /// of the server uses.
    pub fn new(cfg: Arc<ServerConfig>, metrics: Arc<BusMetrics>) -> (Self, CoreHandle) {
        let (tx, rx) = mpsc::unbounded_channel();
        let window_size = cfg.submit_window();
        let window = Arc::new(Semaphore::new(window_size));
        let (ready_tx, ready) = watch::channel(false);
        let incarnation = incarnation();
        let peer_counters = cfg
            .others()
            .map(|(name, _)| (ServerName::new(name), metrics.peer(name)))
            .collect();
        let driver = Self {
            core: Core::new(core_config(&cfg), incarnation, Duration::ZERO),
            links: links::LinkTable::new(&cfg),
            cfg,
            started: Instant::now(),
            rx,
            weak_tx: tx.downgrade(),
            window: window.clone(),
            ready_tx,
            sessions: HashMap::new(),
            followups: Vec::new(),
            to_wake: Vec::new(),
            stopping: false,
            metrics: metrics.clone(),
            peer_counters,
            turn_now: Duration::ZERO,
        };
        let handle = CoreHandle {
            tx,
            window,
            window_size,
            ready,
            metrics,
            next_link: Arc::new(AtomicU64::new(1)),
        };
        (driver, handle)
    }

    /// This process's incarnation (sent in peer hellos).
    pub fn incarnation(&self) -> u64 {
        self.core.id().incarnation
    }

    fn now(&self) -> Duration {
        self.started.elapsed()
    }

    /// Runs until a [`CoreInput::Shutdown`] or until every handle is dropped.
    pub async fn run(mut self) {
        let tick_every = (self.cfg.keepalive_interval / 4)
            .clamp(Duration::from_millis(10), Duration::from_secs(1));
        let mut tick = tokio::time::interval(tick_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let batch = self.cfg.messages_per_iter.max(1) * 32;
        let mut inputs = Vec::with_capacity(batch);
        loop {
            let now = tokio::select! {
                n = self.rx.recv_many(&mut inputs, batch) => {
                    if n == 0 {
                        break;
                    }
                    let now = self.now();
                    for input in inputs.drain(..) {
                        self.handle(now, input);
                    }
                    now
                }
                _ = tick.tick() => {
                    // Everything that arrived before the tick is handled
                    // first, so a driver running behind does not make a link
                    // look silent.
                    let now = self.now();
                    for _ in 0..self.rx.len() {
                        match self.rx.try_recv() {
                            Ok(input) => self.handle(now, input),
                            Err(_) => break,
                        }
                    }
                    self.core.handle(now, CoreInput::Tick);
                    now
                }
            };
            self.end_turn(now);
            if self.stopping {
                break;
            }
        }
        self.close_everything();
    }

    fn handle(&mut self, now: Duration, input: Input) {
        match input {
            Input::Core(input) => {
                match &input {
                    CoreInput::CloseSession(id) => {
                        if let Some(slot) = self.sessions.remove(id) {
                            slot.outbox.close(None);
                        }
                    }
                    CoreInput::Shutdown => self.stopping = true,
                    CoreInput::Commands(session, ops) => self.count_commands(now, *session, ops),
                    CoreInput::Peer { peer, msgs, .. } => self.count_peer_in(peer, msgs),
                    _ => {}
                }
                self.core.handle(now, input);
            }
            Input::OpenSession(hello, reply) => self.open_session(now, hello, reply),
            Input::LinkUp {
                peer,
                link,
                outbox,
                closed,
            } => {
                self.links.up(&peer, link, outbox, closed);
                self.metrics.link_up(peer.name.as_str());
                self.core.handle(now, CoreInput::LinkUp { peer, link });
            }
            Input::LinkDown { peer, link, reason } => {
                self.links.down(&peer, link, &reason);
                self.metrics.link_down(peer.as_str());
                self.core.handle(now, CoreInput::LinkDown { peer, link });
            }
            Input::Query(query) => self.answer(query),
        }
    }

    fn open_session(
        &mut self,
        now: Duration,
        hello: msgc_core::Hello,
        reply: oneshot::Sender<Result<SessionOpened, OpenError>>,
    ) {
        let result = self.core.open_session(now, hello).map(|opened| {
            let id = opened.id;
            // Past three quarters of max_backlog the session holds this
            // server's progress back (slowing every publisher down); at half
            // it lets go. With the submit window sized in
            // `ServerConfig::submit_window`, what is in flight then still
            // fits under max_backlog.
            let driver = self.weak_tx.clone();
            let on_low: crate::outbox::DrainHook = Box::new(move || {
                if let Some(driver) = driver.upgrade() {
                    let _ = driver.send(Input::Core(CoreInput::SessionDrained(id)));
                }
            });
            let max = self.cfg.max_backlog;
            let outbox = Outbox::with_watermarks(max, high_watermark(max), max / 2, on_low);
            let acks = Arc::new(Acks::default());
            let slot = SessionSlot {
                outbox: outbox.clone(),
                acks: acks.clone(),
                published_at: VecDeque::new(),
            };
            self.sessions.insert(id, slot);
            tracing::debug!(session = id.0, name = %opened.private_name, "session opened");
            SessionOpened {
                id,
                private_name: opened.private_name,
                epoch: opened.epoch,
                outbox,
                acks,
            }
        });
        // A session task that went away before the answer: forget it.
        if let Err(Ok(opened)) = reply.send(result) {
            self.sessions.remove(&opened.id);
            self.core.handle(now, CoreInput::CloseSession(opened.id));
        }
    }

    fn answer(&self, query: Query) {
        match query {
            Query::Groups(filter, reply) => {
                let groups = self
                    .core
                    .groups(filter.as_deref())
                    .into_iter()
                    .map(|(name, group)| wire::group_to_wire(name, group))
                    .collect();
                let _ = reply.send(groups);
            }
            Query::Status(reply) => {
                let status = self.core.status();
                let members: Vec<String> = status
                    .view
                    .members
                    .iter()
                    .map(|m| m.name.as_str().to_owned())
                    .collect();
                let _ = reply.send(ServerStatus {
                    server: self.cfg.name.clone(),
                    view_id: status.view.id.epoch,
                    coordinator: members.first().cloned().unwrap_or_default(),
                    members,
                    links: self.links.status(&status.links),
                    sessions: status.sessions as u64,
                    view_change_in_progress: status.view_change_in_progress,
                });
            }
            Query::Metrics(reply) => {
                self.refresh_metrics();
                let _ = reply.send(());
            }
        }
    }

    /// Ends the turn and applies what it produced; inputs that applying
    /// produced (full queues) are fed back in the same turn.
    fn end_turn(&mut self, now: Duration) {
        self.turn_now = now;
        self.core.handle(now, CoreInput::EndOfTurn);
        loop {
            let effects = self.core.take_effects();
            if effects.is_empty() {
                break;
            }
            for effect in effects {
                self.apply(effect);
            }
            if self.followups.is_empty() {
                break;
            }
            for input in self.followups.drain(..) {
                self.core.handle(now, input);
            }
            self.core.handle(now, CoreInput::EndOfTurn);
        }
        self.wake_acked();
    }

    /// Tells session streams that their publish acknowledgements moved.
    fn wake_acked(&mut self) {
        if self.to_wake.is_empty() {
            return;
        }
        self.to_wake.sort_unstable();
        self.to_wake.dedup();
        for id in self.to_wake.drain(..) {
            if let Some(slot) = self.sessions.get(&id) {
                slot.outbox.wake();
            }
        }
    }

    fn close_everything(&mut self) {
        for (_, slot) in self.sessions.drain() {
            slot.outbox
                .close(Some(crate::error::BusError::Stopping.into()));
        }
        self.links.close_all();
    }
}

/// This process's incarnation: the start time (µs since the Unix epoch) in
/// the high bits and random low bits. The core lets a newer (higher)
/// incarnation's row supersede an older one, so a restarted server must draw
/// a higher number than its previous run did; a purely random one would be
/// lower half of the time, and the peers would keep the old run's row and
/// refuse the new run's proposals for ever.
fn incarnation() -> u64 {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| {
            u64::try_from(d.as_micros()).unwrap_or(u64::MAX >> 12)
        });
    (micros << 12) | (rand::random::<u64>() & 0xfff)
}

/// A session congested this long is cut as stuck: three keepalive intervals.
pub fn stuck_after(cfg: &ServerConfig) -> Duration {
    cfg.keepalive_interval * 3
}

/// A session queue above this many events holds this server's progress back.
pub fn high_watermark(max_backlog: usize) -> usize {
    max_backlog / 4 * 3
}
