//! The simulated world: servers running [`Core`]s, the network, clients and
//! faults, on one virtual clock. Everything is drawn from the seed, so a run
//! is a pure function of its [`SimConfig`] and [`Schedule`].

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use msgc_core::{Core, CoreConfig, Effect, Hello, Input, Position, ServerName, SessionId};

use crate::check::{Invariant, Violation};
use crate::config::{MS, SimConfig};
use crate::faults::Schedule;
use crate::net::Net;
use crate::record::{History, IncLog, SessionLog};
use crate::rng::Rng;

/// A scheduled event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Ev {
    Tick { srv: usize, generation: u64 },
    Pump { link: u64, dir: usize },
    Dial { lo: usize, hi: usize },
    Client { client: usize, generation: u64 },
    Fault(usize),
    Restart { srv: usize, generation: u64 },
    Resume { srv: usize, generation: u64 },
    Unblock(usize),
    DropLinks { srv: usize, both: bool },
    Heal,
    Watch,
}

/// One server slot (its incarnations come and go).
pub(crate) struct Server {
    pub name: ServerName,
    pub core: Option<Core>,
    /// Current incarnation index (meaningful while `core` is set).
    pub inc: usize,
    pub paused: bool,
    pub permits: usize,
    pub sessions: HashMap<SessionId, usize>,
    pub tick_gen: u64,
    pub crash_gen: u64,
    pub pause_gen: u64,
    /// The last delivery of the effect batch being applied (to identify
    /// the op an `Acked` names).
    pub last_delivery: Option<(Position, usize)>,
}

/// A simulated client: one session at a time, under one name.
pub(crate) struct Client {
    pub name: String,
    pub home: usize,
    pub session: Option<usize>,
    pub generation: u64,
    pub joined: BTreeSet<usize>,
}

/// Where the run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Faults,
    Healed,
    Probing,
    Done,
}

/// Counters for the summary line.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    /// Events processed.
    pub events: u64,
    /// Peer messages sent.
    pub sent: u64,
    /// Views started (all servers).
    pub views: u64,
    /// Triggers that fired.
    pub fired: u64,
    /// Virtual time at the end (ns).
    pub end: u64,
    /// When the liveness probes went out.
    pub probes_at: Option<u64>,
    /// When every server first shared one active view after the heal.
    pub converged_at: Option<u64>,
}

/// The world. Build with [`Sim::new`], drive with [`Sim::run_until`] or
/// [`Sim::run`], then judge with [`crate::check::check`].
pub struct Sim {
    pub(crate) cfg: SimConfig,
    pub(crate) now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64, Ev)>>,
    pub(crate) net: Net,
    pub(crate) rng_net: Rng,
    pub(crate) rng_client: Rng,
    rng_inc: Rng,
    pub(crate) servers: Vec<Server>,
    pub(crate) clients: Vec<Client>,
    /// What happened.
    pub history: History,
    pub(crate) schedule: Schedule,
    pub(crate) armed: Vec<Option<(u64, u32)>>,
    pub(crate) cuts: Vec<Option<Vec<(usize, usize)>>>,
    /// Violations seen while running (the checker adds the rest).
    pub violations: Vec<Violation>,
    pub(crate) trace: Option<Vec<String>>,
    pub(crate) phase: Phase,
    /// Servers whose liveness probe waits for a window permit.
    pub(crate) probes_unsent: std::collections::BTreeSet<usize>,
    pub(crate) dialing: BTreeSet<(usize, usize)>,
    pub(crate) clients_active: bool,
    /// Counters.
    pub stats: Stats,
}

pub(crate) fn dur(ns: u64) -> Duration {
    Duration::from_nanos(ns)
}

impl Sim {
    /// A world at time 0 with every server started and every client and
    /// fault scheduled.
    pub fn new(cfg: SimConfig, schedule: Schedule) -> Self {
        let n = cfg.servers;
        let servers = (0..n)
            .map(|i| Server {
                name: ServerName::new(cfg.name(i)),
                core: None,
                inc: 0,
                paused: false,
                permits: 0,
                sessions: HashMap::new(),
                tick_gen: 0,
                crash_gen: 0,
                pause_gen: 0,
                last_delivery: None,
            })
            .collect();
        let clients = (0..n * cfg.clients_per_server)
            .map(|i| Client {
                name: format!("c{i}"),
                home: i % n,
                session: None,
                generation: 0,
                joined: BTreeSet::new(),
            })
            .collect();
        let mut sim = Self {
            net: Net::new(n, cfg.jitter),
            rng_net: Rng::stream(cfg.seed, 0x4e7),
            rng_client: Rng::stream(cfg.seed, 0xc11e),
            rng_inc: Rng::stream(cfg.seed, 0x1dc),
            trace: cfg.trace.then(Vec::new),
            armed: vec![None; schedule.triggers.len()],
            cfg,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            servers,
            clients,
            history: History::default(),
            schedule,
            cuts: Vec::new(),
            violations: Vec::new(),
            phase: Phase::Faults,
            probes_unsent: Default::default(),
            dialing: BTreeSet::new(),
            clients_active: true,
            stats: Stats::default(),
        };
        sim.boot();
        sim
    }

    fn boot(&mut self) {
        for s in 0..self.cfg.servers {
            self.start_server(s);
        }
        for c in 0..self.clients.len() {
            let at = self.cfg.clients_from + self.rng_client.below(50 * MS);
            self.at(
                at,
                Ev::Client {
                    client: c,
                    generation: 0,
                },
            );
        }
        for (i, f) in self.schedule.faults.iter().enumerate() {
            let at = f.at;
            self.seq += 1;
            self.queue.push(Reverse((at, self.seq, Ev::Fault(i))));
        }
        self.at(self.cfg.heal_at, Ev::Heal);
    }

    /// Schedules an event.
    pub(crate) fn at(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse((at.max(self.now), self.seq, ev)));
    }

    /// Current virtual time (ns).
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Appends a line to the trace, if tracing.
    pub(crate) fn log(&mut self, line: impl FnOnce() -> String) {
        if let Some(t) = &mut self.trace {
            t.push(format!(
                "{:>10.3}ms {}",
                self.now as f64 / MS as f64,
                line()
            ));
        }
    }

    /// The trace so far (empty unless `cfg.trace`).
    pub fn trace(&self) -> &[String] {
        self.trace.as_deref().unwrap_or(&[])
    }

    /// Records a violation found while running.
    pub(crate) fn violation(&mut self, invariant: Invariant, servers: Vec<String>, detail: String) {
        let at = self.now;
        self.log(|| format!("VIOLATION {invariant:?}: {detail}"));
        self.violations.push(Violation {
            invariant,
            at: Some(at),
            servers,
            detail,
        });
    }

    /// Runs events up to time `t` (or until the run is over).
    pub fn run_until(&mut self, t: u64) {
        while let Some(&Reverse((at, _, ev))) = self.queue.peek() {
            if at > t || self.phase == Phase::Done {
                break;
            }
            self.queue.pop();
            self.now = at;
            self.stats.events += 1;
            if self.stats.events.is_multiple_of(4096) {
                self.net.collect();
            }
            self.dispatch(ev);
        }
        if self.phase != Phase::Done {
            self.now = self.now.max(t);
        }
        self.stats.end = self.now;
    }

    /// Runs the whole schedule, the heal and the liveness phase.
    pub fn run(&mut self) {
        let end = self.cfg.heal_at + self.cfg.liveness_bound + 10 * MS;
        self.run_until(end);
        if self.phase != Phase::Done {
            self.liveness_timeout();
        }
    }

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::Tick { srv, generation } => self.tick(srv, generation),
            Ev::Pump { link, dir } => self.pump(link, dir),
            Ev::Dial { lo, hi } => self.dial(lo, hi),
            Ev::Client { client, generation } => self.client_act(client, generation),
            Ev::Fault(i) => {
                let kind = self.schedule.faults[i].kind.clone();
                self.inject(kind);
            }
            Ev::Restart { srv, generation } => {
                if self.servers[srv].crash_gen == generation && self.servers[srv].core.is_none() {
                    self.start_server(srv);
                }
            }
            Ev::Resume { srv, generation } => {
                if self.servers[srv].pause_gen == generation {
                    self.resume(srv);
                }
            }
            Ev::Unblock(cut) => self.unblock(cut),
            Ev::DropLinks { srv, both } => self.drop_links(srv, both),
            Ev::Heal => self.heal_all(),
            Ev::Watch => self.watch(),
        }
    }

    fn tick(&mut self, srv: usize, generation: u64) {
        let s = &self.servers[srv];
        if s.core.is_none() || s.paused || s.tick_gen != generation {
            return;
        }
        self.feed(srv, Input::Tick);
        self.at(
            self.now + self.cfg.keepalive / 4,
            Ev::Tick { srv, generation },
        );
    }

    /// Starts a new incarnation of server `srv` in a view of its own, with
    /// its watcher session joined to every group.
    pub(crate) fn start_server(&mut self, srv: usize) {
        let names: Vec<ServerName> = (0..self.cfg.servers)
            .map(|i| ServerName::new(self.cfg.name(i)))
            .collect();
        let ka = self.cfg.keepalive;
        let cfg = CoreConfig {
            name: self.servers[srv].name.clone(),
            peers: names,
            keepalive_interval: dur(ka),
            proposal_timeout: dur(self.cfg.proposal_timeout),
            ready_after: dur(3 * ka),
            stuck_after: dur(3 * ka),
        };
        let mut incarnation = self.rng_inc.next_u64();
        if self.cfg.monotonic_incarnations {
            let prev = self
                .history
                .incs
                .iter()
                .filter(|i| i.server == srv)
                .map(|i| i.id.incarnation)
                .max();
            incarnation = prev.map_or(incarnation >> 8, |p| p + 1 + (incarnation >> 40));
        }
        let core = Core::new(cfg, incarnation, dur(self.now));
        let inc = self.history.incs.len();
        self.history.incs.push(IncLog {
            server: srv,
            id: core.id().clone(),
            born: self.now,
            died: None,
            views: vec![(self.now, core.view().clone())],
            watcher: None,
            watched_from: None,
            final_ok: false,
        });
        self.log(|| format!("{} starts as {:?}", srv_name(srv), core.id()));
        let s = &mut self.servers[srv];
        s.core = Some(core);
        s.inc = inc;
        s.paused = false;
        s.permits = self.cfg.window;
        s.sessions.clear();
        s.tick_gen += 1;
        let generation = s.tick_gen;
        let phase = self.rng_net.below(ka / 4);
        self.at(self.now + phase, Ev::Tick { srv, generation });
        self.open_watcher(srv, inc);
        for hi in srv + 1..self.cfg.servers {
            let at = self.now + self.rng_net.below(2 * MS);
            self.start_dial(srv, hi, at);
        }
    }

    fn open_watcher(&mut self, srv: usize, inc: usize) {
        let hello = Hello {
            client_name: Some("w".into()),
            ..Hello::default()
        };
        let Some(slog) = self.open(srv, None, hello) else {
            return;
        };
        self.history.incs[inc].watcher = Some(slog);
        let ops = (0..self.cfg.groups)
            .map(|g| msgc_core::ClientOp::Join {
                group: group_name(g),
                capabilities: bytes::Bytes::new(),
            })
            .collect();
        self.commands(srv, slog, ops);
    }

    /// Opens a session on `srv` and records it; `None` if refused.
    pub(crate) fn open(
        &mut self,
        srv: usize,
        client: Option<usize>,
        hello: Hello,
    ) -> Option<usize> {
        let now = self.now;
        let core = self.servers[srv].core.as_mut()?;
        let opened = match catch_unwind(AssertUnwindSafe(|| core.open_session(dur(now), hello))) {
            Ok(Ok(opened)) => opened,
            Ok(Err(e)) => {
                self.log(|| format!("{} refuses a session: {e}", srv_name(srv)));
                return None;
            }
            Err(panic) => {
                self.core_panicked(srv, panic.as_ref());
                return None;
            }
        };
        let inc = self.servers[srv].inc;
        let slog = self.history.sessions.len();
        self.log(|| {
            format!(
                "{} opens session {} = s{slog} {}",
                srv_name(srv),
                opened.id.0,
                opened.private_name
            )
        });
        self.history.sessions.push(SessionLog {
            client,
            server: srv,
            inc,
            id: opened.id,
            private_name: opened.private_name,
            opened: now,
            closed: None,
            published: Vec::new(),
            acks: Vec::new(),
            events: Vec::new(),
        });
        self.servers[srv].sessions.insert(opened.id, slog);
        Some(slog)
    }

    /// Submits ops of a session (taking one permit each); false if the
    /// window has too few permits.
    pub(crate) fn commands(
        &mut self,
        srv: usize,
        slog: usize,
        ops: Vec<msgc_core::ClientOp>,
    ) -> bool {
        if self.servers[srv].permits < ops.len() {
            return false;
        }
        self.servers[srv].permits -= ops.len();
        let id = self.history.sessions[slog].id;
        self.feed(srv, Input::Commands(id, ops));
        true
    }

    /// Hands one input to a server's core (then EndOfTurn) and applies the
    /// effects.
    pub(crate) fn feed(&mut self, srv: usize, input: Input) {
        let now = dur(self.now);
        if self.trace.is_some() {
            let line = describe_input(&input);
            if let Some(line) = line {
                self.log(|| format!("{} <- {line}", srv_name(srv)));
            }
        }
        let Some(core) = self.servers[srv].core.as_mut() else {
            return;
        };
        let result = catch_unwind(AssertUnwindSafe(|| {
            core.handle(now, input);
            core.handle(now, Input::EndOfTurn);
            core.take_effects()
        }));
        match result {
            Ok(effects) => self.apply(srv, effects),
            Err(panic) => self.core_panicked(srv, panic.as_ref()),
        }
    }

    fn core_panicked(&mut self, srv: usize, panic: &(dyn std::any::Any + Send)) {
        let msg = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "non-string panic".into());
        self.violation(
            Invariant::Panic,
            vec![srv_name(srv)],
            format!("core panicked: {msg}"),
        );
        self.phase = Phase::Done;
    }

    fn apply(&mut self, srv: usize, effects: Vec<Effect>) {
        let inc = self.servers[srv].inc;
        // Acks the core gives before entering an install come from that
        // install's cut (owed to its side only), not from normal operation.
        let last_install = effects
            .iter()
            .rposition(|e| matches!(e, Effect::Installed { .. }));
        for (i, effect) in effects.into_iter().enumerate() {
            let at_install = last_install.is_some_and(|last| i < last);
            if self.servers[srv].core.is_none() || self.servers[srv].inc != inc {
                break; // crashed mid-turn: the rest never happened
            }
            match effect {
                Effect::Send { to, link, msg } => self.send(srv, &to, link, msg),
                Effect::Deliver { session, event } => self.on_deliver(srv, session, event),
                Effect::Acked { session, position } => {
                    self.on_acked(srv, session, position, at_install)
                }
                Effect::ReleasePermits(n) => self.release(srv, n),
                Effect::CloseSession { session, reason } => {
                    self.log(|| {
                        format!(
                            "{} closes session {} ({reason:?})",
                            srv_name(srv),
                            session.0
                        )
                    });
                    self.session_ended(srv, session);
                }
                Effect::CloseLink { link, reason, .. } => {
                    self.log(|| format!("{} closes link {} ({reason})", srv_name(srv), link.0));
                    self.close_local(srv, link.0, true);
                }
                Effect::Ready => self.log(|| format!("{} ready", srv_name(srv))),
                Effect::Installed { record } => {
                    self.history
                        .installs
                        .entry(record.view.id.clone())
                        .or_insert(*record);
                }
                Effect::ViewStarted { view } => {
                    self.stats.views += 1;
                    self.log(|| {
                        format!(
                            "{} starts view {:?} {:?}",
                            srv_name(srv),
                            view.id,
                            view.members
                        )
                    });
                    self.history.incs[inc].views.push((self.now, view));
                }
            }
        }
        self.servers[srv].last_delivery = None;
    }

    fn release(&mut self, srv: usize, n: usize) {
        let s = &mut self.servers[srv];
        s.permits += n;
        if s.permits > self.cfg.window {
            let detail = format!(
                "{} permits released, window is {}",
                s.permits, self.cfg.window
            );
            s.permits = self.cfg.window;
            self.violation(Invariant::Permits, vec![srv_name(srv)], detail);
        }
    }

    /// The cores (by server index; `None` while crashed).
    pub fn core(&self, srv: usize) -> Option<&Core> {
        self.servers[srv].core.as_ref()
    }

    /// True if the server is paused.
    pub fn is_paused(&self, srv: usize) -> bool {
        self.servers[srv].paused
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }
}

/// The name of server `i` (`a`, `b`, ...).
pub fn srv_name(i: usize) -> String {
    ((b'a' + i as u8) as char).to_string()
}

/// The name of group `g`.
pub fn group_name(g: usize) -> String {
    format!("g{g}")
}

fn describe_input(input: &Input) -> Option<String> {
    Some(match input {
        Input::Commands(s, ops) => format!("commands s{} x{}", s.0, ops.len()),
        Input::CloseSession(s) => format!("close session {}", s.0),
        Input::LinkUp { peer, link } => format!("link up {peer:?} #{}", link.0),
        Input::LinkDown { peer, link } => format!("link down {peer} #{}", link.0),
        Input::Peer { peer, link, msgs } => {
            let kinds: Vec<String> = msgs.iter().filter_map(crate::links::describe_msg).collect();
            if kinds.is_empty() {
                return None;
            }
            format!("{peer} #{}: {}", link.0, kinds.join(", "))
        }
        Input::Tick | Input::EndOfTurn => return None,
        other => format!("{other:?}"),
    })
}
