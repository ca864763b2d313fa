//! The driver's side of peer links: sending, delivering (pumping a
//! direction's queue), dialling, closing.

use msgc_core::{Input, LinkId, PeerMsg, ServerName};

use crate::faults::{Action, MsgKind, Target};
use crate::net::Wire;
use crate::sim::{Ev, Sim, srv_name};

/// Most messages handed to a core in one input.
const BATCH: usize = 64;

/// A short description of a message for the trace (`None` for keepalives).
pub(crate) fn describe_msg(msg: &PeerMsg) -> Option<String> {
    Some(match msg {
        PeerMsg::Keepalive { .. } => return None,
        PeerMsg::Rows(rows) => format!("Rows x{}", rows.len()),
        PeerMsg::Submit { view, ops } => format!("Submit {view:?} x{}", ops.len()),
        PeerMsg::Sequenced {
            view,
            first,
            ops,
            stable,
            acked,
        } => {
            format!(
                "Sequenced {view:?} {first}+{} stable {stable} acked {acked}",
                ops.len()
            )
        }
        PeerMsg::Progress {
            view,
            received,
            stable,
        } => format!("Progress {view:?} {received} stable {stable}"),
        PeerMsg::Propose { view } => format!("Propose {:?} {:?}", view.id, view.members),
        PeerMsg::Flush(f) => format!(
            "Flush {:?} from {:?} d={} r={} holds={:?}",
            f.proposal,
            f.current,
            f.delivered,
            f.received,
            f.holds.as_ref().map(|r| &r.view.id)
        ),
        PeerMsg::Refuse { proposal, known } => format!("Refuse {proposal:?} known {known:?}"),
        PeerMsg::Install { record } => {
            format!("Install {:?} sources {:?}", record.view.id, record.sources)
        }
        PeerMsg::Fetch {
            proposal,
            lagger,
            after,
            upto,
            ..
        } => format!("Fetch {proposal:?} for {lagger:?} ({after}, {upto}]"),
        PeerMsg::Transfer {
            proposal,
            after,
            upto,
            ops,
            ..
        } => format!(
            "Transfer {proposal:?} {}+{} of {upto}",
            after + 1,
            ops.len()
        ),
        PeerMsg::InstallAck { view } => format!("InstallAck {view:?}"),
        PeerMsg::Commit { view } => format!("Commit {view:?}"),
    })
}

fn kind_of(msg: &PeerMsg) -> Option<MsgKind> {
    Some(match msg {
        PeerMsg::Propose { .. } => MsgKind::Propose,
        PeerMsg::Flush(_) => MsgKind::Flush,
        PeerMsg::Install { .. } => MsgKind::Install,
        PeerMsg::InstallAck { .. } => MsgKind::InstallAck,
        PeerMsg::Commit { .. } => MsgKind::Commit,
        PeerMsg::Sequenced { ops, .. } if !ops.is_empty() => MsgKind::Sequenced,
        _ => return None,
    })
}

impl Sim {
    /// Applies `Effect::Send`: queue on that link if it is still this
    /// server's open link.
    pub(crate) fn send(&mut self, srv: usize, to: &ServerName, link: LinkId, msg: PeerMsg) {
        let Some(l) = self.net.links.get(&link.0) else {
            return;
        };
        let Some(dir) = l.dir_from(srv) else {
            return;
        };
        let peer = l.ends[1 - dir];
        if !l.open[dir] || self.servers[peer].name != *to {
            return;
        }
        self.stats.sent += 1;
        self.observe(srv, &msg);
        if self.trace.is_some()
            && let Some(d) = describe_msg(&msg)
        {
            self.log(|| format!("{} -> {} #{}: {d}", srv_name(srv), srv_name(peer), link.0));
        }
        let action = kind_of(&msg).and_then(|k| self.check_triggers(srv, k));
        let now = self.now;
        if let Some(at) = self
            .net
            .push(link.0, dir, now, Wire::Msg(msg), &mut self.rng_net)
        {
            self.at(at, Ev::Pump { link: link.0, dir });
        }
        if let Some(action) = action {
            self.act(action, srv, peer);
        }
    }

    /// Records what the checker wants of view-change messages.
    fn observe(&mut self, srv: usize, msg: &PeerMsg) {
        match msg {
            PeerMsg::Progress { view, received, .. } => {
                let me = self.servers[srv]
                    .core
                    .as_ref()
                    .expect("sending")
                    .id()
                    .clone();
                let r = self.history.progress.entry((view.clone(), me)).or_default();
                *r = (*r).max(*received);
            }
            PeerMsg::Flush(_) => {
                self.history.max_flush_weight = self.history.max_flush_weight.max(msg.weight());
            }
            PeerMsg::Install { record, .. } => {
                self.history.max_install_weight = self.history.max_install_weight.max(msg.weight());
                if !self.history.installs.contains_key(&record.view.id) {
                    self.history
                        .installs
                        .insert(record.view.id.clone(), (**record).clone());
                }
            }
            _ => {}
        }
    }

    fn check_triggers(&mut self, srv: usize, kind: MsgKind) -> Option<Action> {
        let now = self.now;
        for (i, t) in self.schedule.triggers.iter().enumerate() {
            let Some((until, skip)) = &mut self.armed[i] else {
                continue;
            };
            if now > *until {
                self.armed[i] = None;
                continue;
            }
            if t.on != kind || t.from.is_some_and(|f| f != srv) {
                continue;
            }
            if *skip > 0 {
                *skip -= 1;
                continue;
            }
            self.armed[i] = None;
            self.stats.fired += 1;
            let action = t.action;
            self.log(|| {
                format!(
                    "trigger {i} fires on {kind:?} by {}: {action:?}",
                    srv_name(srv)
                )
            });
            return Some(action);
        }
        None
    }

    /// Does a triggered action (`sender` sent to `receiver`).
    pub(crate) fn act(&mut self, action: Action, sender: usize, receiver: usize) {
        let who = |t: Target| match t {
            Target::Sender => sender,
            Target::Receiver => receiver,
            Target::Server(s) => s,
        };
        match action {
            Action::Crash(t, down) => self.crash(who(t), Some(down)),
            Action::Pause(t, len) => self.pause(who(t), len),
            Action::DropLinks(t, both) => {
                let srv = who(t);
                self.at(self.now, Ev::DropLinks { srv, both });
            }
            Action::Isolate(t, len) => {
                let s = who(t);
                let dirs = (0..self.cfg.servers)
                    .filter(|o| *o != s)
                    .flat_map(|o| [(s, o), (o, s)])
                    .collect();
                self.cut(dirs, len);
            }
            Action::Release(t) => self.release_server(who(t)),
        }
    }

    /// Delivers what is due on one direction of a link.
    pub(crate) fn pump(&mut self, id: u64, dir: usize) {
        let mut batch = Vec::new();
        loop {
            let Some(link) = self.net.links.get_mut(&id) else {
                return;
            };
            let (from, to) = (link.ends[dir], link.ends[1 - dir]);
            if !link.open[1 - dir] {
                link.queues[dir].clear();
                return;
            }
            let stalled = self.servers[to].paused || self.net.blocked[from][to] > 0;
            let link = self.net.links.get_mut(&id).expect("checked");
            let due = matches!(link.queues[dir].front(), Some((at, _)) if *at <= self.now);
            if stalled || !due || batch.len() >= BATCH {
                if !batch.is_empty() {
                    self.deliver_batch(id, from, to, std::mem::take(&mut batch));
                    continue;
                }
                if !stalled && let Some((at, _)) = link.queues[dir].front() {
                    let at = (*at).max(self.now + 1);
                    self.at(at, Ev::Pump { link: id, dir });
                }
                return;
            }
            let (_, wire) = link.queues[dir].pop_front().expect("due");
            match wire {
                Wire::Msg(m) => batch.push(m),
                Wire::Up(peer) => {
                    self.deliver_batch(id, from, to, std::mem::take(&mut batch));
                    self.feed(
                        to,
                        Input::LinkUp {
                            peer,
                            link: LinkId(id),
                        },
                    );
                }
                Wire::Close => {
                    self.deliver_batch(id, from, to, std::mem::take(&mut batch));
                    self.close_local(to, id, false);
                    let peer = self.servers[from].name.clone();
                    self.feed(
                        to,
                        Input::LinkDown {
                            peer,
                            link: LinkId(id),
                        },
                    );
                }
            }
        }
    }

    fn deliver_batch(&mut self, id: u64, from: usize, to: usize, msgs: Vec<msgc_core::PeerMsg>) {
        if msgs.is_empty() {
            return;
        }
        let peer = self.servers[from].name.clone();
        self.feed(
            to,
            Input::Peer {
                peer,
                link: LinkId(id),
                msgs,
            },
        );
    }

    /// Closes `srv`'s end of a link; the other end hears of it (after the
    /// queued messages) if `notify`. A dialler re-dials later.
    pub(crate) fn close_local(&mut self, srv: usize, id: u64, notify: bool) {
        let Some(link) = self.net.links.get_mut(&id) else {
            return;
        };
        let Some(dir) = link.dir_from(srv) else {
            return;
        };
        if !link.open[dir] {
            return;
        }
        link.open[dir] = false;
        link.queues[1 - dir].clear();
        let (lo, hi) = (link.ends[0], link.ends[1]);
        if notify {
            let now = self.now;
            if let Some(at) = self.net.push(id, dir, now, Wire::Close, &mut self.rng_net) {
                self.at(at, Ev::Pump { link: id, dir });
            }
        }
        if srv == lo {
            let at = self.now + self.cfg.reconnect_interval;
            self.start_dial(lo, hi, at);
        }
    }

    /// Arms the dial loop of a pair (one at a time).
    pub(crate) fn start_dial(&mut self, lo: usize, hi: usize, at: u64) {
        if self.dialing.insert((lo, hi)) {
            self.at(at, Ev::Dial { lo, hi });
        }
    }

    /// The dialler tries to connect: a link forms only if both servers run
    /// and both directions pass.
    pub(crate) fn dial(&mut self, lo: usize, hi: usize) {
        self.dialing.remove(&(lo, hi));
        if self.servers[lo].core.is_none() || self.net.open_link(lo, hi).is_some() {
            return;
        }
        let reachable = self.servers[hi].core.is_some()
            && !self.servers[hi].paused
            && !self.servers[lo].paused
            && !self.net.is_blocked(lo, hi)
            && !self.net.is_blocked(hi, lo);
        if !reachable {
            let at = self.now + self.cfg.reconnect_interval;
            self.start_dial(lo, hi, at);
            return;
        }
        let delay = self.rng_net.range(self.cfg.delay.0, self.cfg.delay.1);
        let id = self.net.create(lo, hi, delay);
        self.log(|| format!("{} dials {}: link #{id}", srv_name(lo), srv_name(hi)));
        let lo_id = self.servers[lo].core.as_ref().expect("runs").id().clone();
        let hi_id = self.servers[hi].core.as_ref().expect("runs").id().clone();
        let now = self.now;
        for (dir, peer) in [(0, lo_id), (1, hi_id)] {
            if let Some(at) = self
                .net
                .push(id, dir, now, Wire::Up(peer), &mut self.rng_net)
            {
                self.at(at, Ev::Pump { link: id, dir });
            }
        }
    }

    /// Drops every open link of `srv` (the driver saw the streams fail).
    pub(crate) fn drop_links(&mut self, srv: usize, both: bool) {
        if self.servers[srv].core.is_none() || self.servers[srv].paused {
            return;
        }
        for peer in 0..self.cfg.servers {
            if peer != srv {
                self.drop_link(srv, peer, both);
            }
        }
    }

    /// `srv`'s end of its link to `peer` fails; `peer` hears of it if `both`.
    pub(crate) fn drop_link(&mut self, srv: usize, peer: usize, both: bool) {
        let Some(id) = self.net.open_link(srv, peer) else {
            return;
        };
        self.log(|| {
            format!(
                "{}'s link #{id} to {} drops (seen by both: {both})",
                srv_name(srv),
                srv_name(peer)
            )
        });
        self.close_local(srv, id, both);
        let name = self.servers[peer].name.clone();
        self.feed(
            srv,
            Input::LinkDown {
                peer: name,
                link: LinkId(id),
            },
        );
    }
}
