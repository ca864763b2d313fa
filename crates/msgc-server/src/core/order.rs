//! The total order. Every op (publish, join, leave) is submitted by the server
//! its client lives on (the *origin*) to the coordinator of the view, which
//! numbers ops in arrival order and sends the numbered batches to every member
//! of the view; every member applies them in number order. Links are FIFO, so
//! a client's ops keep their order, and every member applies the same sequence.
//!
//! Each member reports how far it has applied; the lowest report is the
//! *stable* point, which the coordinator announces. Ops above it are retained
//! for a view change, and each origin holds a window permit per op until the op
//! is stable, which bounds every queue in the pipeline.

use std::collections::{BTreeMap, VecDeque};

use proto::msgc::v1::{
    Delivery, Event, GroupView, Op, PeerMessage, Position, Progress, Sequenced, Submit, ViewChange,
    event, op::Kind as OpKind, peer_message::Kind,
};

use super::{Core, Phase, SessionId};

/// What queueing events for sessions found: sessions over `max_backlog`
/// (to cut) and sessions that just passed their high watermark (congested).
#[derive(Debug, Default)]
pub(super) struct QueueEffects {
    cut: Vec<SessionId>,
    congested: Vec<SessionId>,
}

impl QueueEffects {
    /// Queues one event for a session and notes what the push found.
    pub(super) fn queue(
        &mut self,
        outbox: &crate::outbox::Outbox<Event>,
        id: SessionId,
        event: Event,
    ) {
        match outbox.push(event, 1) {
            Ok(false) => {}
            Ok(true) => self.congested.push(id),
            Err(_) => self.cut.push(id),
        }
    }
}

/// An own op that has been applied here but is not yet stable.
#[derive(Debug)]
pub(super) struct OwnOp {
    seq: u64,
    holds_permit: bool,
    /// For a publish: the sending session and the message's position, to
    /// acknowledge once the op is stable (held by every server of the view,
    /// so an acknowledged message survives any one server's crash).
    ack: Option<(SessionId, Position)>,
}

/// Order bookkeeping for the installed view.
#[derive(Debug, Default)]
pub(super) struct OrderState {
    /// Ops 1..=applied of this view have been applied here.
    pub applied: u64,
    /// Applied ops above the stable point: `(applied - retained.len(), applied]`.
    pub retained: VecDeque<Op>,
    /// Every member has applied this far.
    pub stable: u64,
    /// Own ops not yet applied, in submission order, each with whether it
    /// holds a window permit.
    pub pending: VecDeque<(Op, bool)>,
    /// Own ops to send to the coordinator at the end of this turn.
    pub unsent: Vec<Op>,
    /// Own applied ops not yet stable: (seq, holds a permit).
    pub unstable_own: VecDeque<OwnOp>,
    /// Counter for `Op::origin_seq`.
    pub next_origin_seq: u64,

    // Coordinator only.
    /// Last sequence number given out.
    pub last_seq: u64,
    /// Ops received this turn, to number at its end.
    pub to_sequence: Vec<Op>,
    /// How far each member has applied.
    pub progress: BTreeMap<String, u64>,
    /// Stable point last announced.
    pub stable_announced: u64,
    /// How far this server reports having applied: `applied`, except while a
    /// local session is congested, when it stays put so the stable point (and
    /// with it every origin's window) waits for the slow reader.
    pub released: u64,
}

impl Core {
    /// Submits an op of this server's own. `holds_permit` says whether a
    /// session took a window permit for it.
    pub(super) fn submit(&mut self, kind: OpKind, holds_permit: bool) {
        self.order.next_origin_seq += 1;
        let op = Op {
            origin: self.cfg.name.clone(),
            origin_seq: self.order.next_origin_seq,
            kind: Some(kind),
        };
        if matches!(self.phase, Phase::Normal) {
            if self.is_coordinator() {
                self.order.to_sequence.push(op.clone());
            } else {
                self.order.unsent.push(op.clone());
            }
        }
        self.order.pending.push_back((op, holds_permit));
    }

    /// Drops what was queued for the old view; pending ops are resubmitted
    /// once a new view is installed.
    pub(super) fn leave_normal(&mut self) {
        self.order.unsent.clear();
        self.order.to_sequence.clear();
    }

    /// A batch of ops from an origin, for this coordinator to number.
    pub(super) fn on_submit(&mut self, peer: &str, submit: Submit) {
        let accepted = matches!(self.phase, Phase::Normal)
            && self.is_coordinator()
            && submit.view_id == self.view.id
            && self.view.members.iter().any(|m| m == peer);
        if accepted {
            self.order.to_sequence.extend(submit.ops);
        }
        // Otherwise the origin resubmits its pending ops once the new view is in.
    }

    /// End of a turn: send own ops to the coordinator, or (as coordinator)
    /// number what arrived and send it to every member.
    pub(super) fn flush_outgoing(&mut self) {
        if !matches!(self.phase, Phase::Normal) {
            return;
        }
        if !self.is_coordinator() {
            if !self.order.unsent.is_empty() {
                let ops = std::mem::take(&mut self.order.unsent);
                let weight = ops.len();
                let coordinator = self.view.coordinator().to_owned();
                let submit = Submit {
                    view_id: self.view.id,
                    ops,
                };
                self.send_to(
                    &coordinator,
                    PeerMessage {
                        kind: Some(Kind::Submit(submit)),
                    },
                    weight,
                );
            }
            return;
        }
        self.recompute_stable();
        let stable_moved = self.order.stable > self.order.stable_announced;
        if self.order.to_sequence.is_empty() && !stable_moved {
            return;
        }
        let ops = std::mem::take(&mut self.order.to_sequence);
        let first_seq = self.order.last_seq + 1;
        self.order.last_seq += ops.len() as u64;
        self.order.stable_announced = self.order.stable;
        let batch = Sequenced {
            view_id: self.view.id,
            first_seq,
            ops,
            stable_seq: self.order.stable,
        };
        let weight = batch.ops.len().max(1);
        let others: Vec<String> = self
            .view
            .members
            .iter()
            .filter(|m| **m != self.cfg.name)
            .cloned()
            .collect();
        for peer in others {
            self.send_to(
                &peer,
                PeerMessage {
                    kind: Some(Kind::Sequenced(batch.clone())),
                },
                weight,
            );
        }
        self.apply_batch(batch);
        // Ops this server alone has to apply (a one-server view) are stable
        // now; don't leave their permits waiting for the next turn.
        self.recompute_stable();
    }

    /// A numbered batch from the coordinator.
    pub(super) fn on_sequenced(&mut self, peer: &str, batch: Sequenced) {
        let current = matches!(self.phase, Phase::Normal)
            && batch.view_id == self.view.id
            && self.view.coordinator() == peer
            && !self.is_coordinator();
        if !current {
            return;
        }
        if !batch.ops.is_empty() && batch.first_seq != self.order.applied + 1 {
            // Links are FIFO, so a gap means a bug or a lost link state: the
            // only safe way on is a new view.
            tracing::error!(
                expected = self.order.applied + 1,
                got = batch.first_seq,
                "gap in the order"
            );
            self.drop_link(peer, "gap in the sequenced stream");
            return;
        }
        self.apply_batch(batch);
    }

    /// A member's report of how far it has applied (coordinator only).
    pub(super) fn on_progress(&mut self, peer: &str, progress: Progress) {
        if progress.view_id != self.view.id || !self.is_coordinator() {
            return;
        }
        if let Some(seen) = self.order.progress.get_mut(peer) {
            *seen = (*seen).max(progress.seq);
        }
    }

    /// Coordinator: the stable point is the lowest progress of the view.
    fn recompute_stable(&mut self) {
        let me = &self.cfg.name;
        let stable = self
            .view
            .members
            .iter()
            .map(|m| {
                if m == me {
                    self.order.released
                } else {
                    self.order.progress.get(m).copied().unwrap_or(0)
                }
            })
            .min()
            .unwrap_or(0);
        self.advance_stable(stable);
    }

    /// Applies a numbered batch and moves the stable point.
    fn apply_batch(&mut self, batch: Sequenced) {
        self.apply_ops(self.view.id, batch.first_seq, batch.ops);
        self.advance_stable(batch.stable_seq);
        self.release_progress();
    }

    /// Reports how far this server has applied, unless a local session is
    /// congested: as coordinator by moving `released` (the stable point
    /// follows at the end of the turn), as member by telling the coordinator.
    pub(super) fn release_progress(&mut self) {
        let blocked = !self.congested.is_empty() || !matches!(self.phase, Phase::Normal);
        if blocked || self.order.released >= self.order.applied {
            return;
        }
        self.order.released = self.order.applied;
        if !self.is_coordinator() {
            let progress = Progress {
                view_id: self.view.id,
                seq: self.order.released,
            };
            let coordinator = self.view.coordinator().to_owned();
            self.send_to(
                &coordinator,
                PeerMessage {
                    kind: Some(Kind::Progress(progress)),
                },
                1,
            );
        }
    }

    /// Acts on what queueing events found: congested sessions hold this
    /// server's progress back; sessions past `max_backlog` are cut.
    pub(super) fn settle(&mut self, effects: QueueEffects) {
        let now = std::time::Instant::now();
        for id in effects.congested {
            self.congested.entry(id).or_insert(now);
        }
        for id in effects.cut {
            let reason = format!(
                "more than max_backlog ({}) events queued",
                self.cfg.max_backlog
            );
            self.cut_slow_session(id, &reason);
        }
    }

    /// Applies ops numbered from `first_seq` in view `view_id`, retaining them.
    pub(super) fn apply_ops(&mut self, view_id: u64, first_seq: u64, ops: Vec<Op>) {
        let mut effects = QueueEffects::default();
        for (i, op) in ops.into_iter().enumerate() {
            let seq = first_seq + i as u64;
            let position = Position { view_id, seq };
            let own = op.origin == self.cfg.name;
            // The local session that published it, if any (looked up once).
            let sender = match &op.kind {
                Some(OpKind::Publish(p)) if own => self.by_name.get(&p.sender).copied(),
                _ => None,
            };
            self.apply_op(&op, position, sender, &mut effects);
            if own {
                self.finish_own(&op, position, sender);
            }
            self.order.retained.push_back(op);
            self.order.applied = seq;
        }
        self.settle(effects);
    }

    /// An own op was applied: it is no longer pending, and its permit is
    /// released once it is stable.
    fn finish_own(&mut self, op: &Op, position: Position, sender: Option<SessionId>) {
        let at = self
            .order
            .pending
            .iter()
            .position(|(p, _)| p.origin_seq == op.origin_seq);
        // Ops are applied in submission order, so this is the front.
        let Some((_, holds_permit)) = at.and_then(|at| self.order.pending.remove(at)) else {
            return;
        };
        let ack = sender.map(|id| (id, position));
        self.order.unstable_own.push_back(OwnOp {
            seq: position.seq,
            holds_permit,
            ack,
        });
    }

    /// Own ops up to `seq` (all of them with `None`) are done: give their
    /// window permits back and acknowledge their publishes.
    pub(super) fn finish_stable(&mut self, up_to: Option<u64>) {
        let mut released = 0;
        let mut woken = Vec::new();
        while let Some(own) = self.order.unstable_own.front() {
            if up_to.is_some_and(|stable| own.seq > stable) {
                break;
            }
            let Some(own) = self.order.unstable_own.pop_front() else {
                break;
            };
            released += usize::from(own.holds_permit);
            if let Some((id, position)) = own.ack
                && let Some(session) = self.sessions.get(&id)
            {
                session.acks.record(position);
                woken.push(id);
            }
        }
        self.release_permits(released);
        self.wake_sessions(woken);
    }

    fn apply_op(
        &mut self,
        op: &Op,
        position: Position,
        sender_session: Option<SessionId>,
        effects: &mut QueueEffects,
    ) {
        let Some(kind) = &op.kind else { return };
        match kind {
            OpKind::Publish(publish) => {
                let Some(locals) = self.local_members.get(&publish.group) else {
                    return;
                };
                for &id in locals {
                    let Some(session) = self.sessions.get(&id) else {
                        continue;
                    };
                    if session.no_self_delivery && Some(id) == sender_session {
                        continue;
                    }
                    let delivery = Delivery {
                        group: publish.group.clone(),
                        sender: publish.sender.clone(),
                        payload: publish.payload.clone(),
                        position: Some(position),
                    };
                    let event = Event {
                        kind: Some(event::Kind::Delivery(delivery)),
                    };
                    effects.queue(&session.outbox, id, event);
                }
            }
            OpKind::Join(join) => {
                let Some(member) = join.member.clone() else {
                    return;
                };
                let name = member.private_name.clone();
                let local = if member.server == self.cfg.name {
                    self.by_name.get(&name).copied()
                } else {
                    None
                };
                let Some(group) = self.groups.join(&join.group, member) else {
                    return;
                };
                let view = GroupView {
                    group: join.group.clone(),
                    gid: group.gid,
                    change: ViewChange::Join as i32,
                    members: group.members.clone(),
                    changed: vec![name],
                    position: Some(position),
                };
                if let Some(id) = local {
                    self.local_members
                        .entry(join.group.clone())
                        .or_default()
                        .push(id);
                }
                self.deliver_view(&join.group, view, None, effects);
            }
            OpKind::Leave(leave) => {
                let Some(group) = self.groups.leave(&leave.group, &leave.private_name) else {
                    return;
                };
                let change = ViewChange::try_from(leave.reason).unwrap_or(ViewChange::Leave);
                let view = GroupView {
                    group: leave.group.clone(),
                    gid: group.gid,
                    change: change as i32,
                    members: group.members.clone(),
                    changed: vec![leave.private_name.clone()],
                    position: Some(position),
                };
                let leaver = self.by_name.get(&leave.private_name).copied();
                if let Some(id) = leaver
                    && let Some(locals) = self.local_members.get_mut(&leave.group)
                {
                    locals.retain(|s| *s != id);
                }
                self.deliver_view(&leave.group, view, leaver, effects);
                if self
                    .local_members
                    .get(&leave.group)
                    .is_some_and(Vec::is_empty)
                {
                    self.local_members.remove(&leave.group);
                }
            }
        }
    }

    /// Queues a group view for the group's local members (and `also`, a local
    /// member that just left, so it sees its own leave).
    pub(super) fn deliver_view(
        &self,
        group: &str,
        view: GroupView,
        also: Option<SessionId>,
        effects: &mut QueueEffects,
    ) {
        let locals = self
            .local_members
            .get(group)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for id in locals.iter().copied().chain(also) {
            let Some(session) = self.sessions.get(&id) else {
                continue;
            };
            let event = Event {
                kind: Some(event::Kind::View(view.clone())),
            };
            effects.queue(&session.outbox, id, event);
        }
    }

    /// Moves the stable point forward: forget retained ops, give window
    /// permits back and acknowledge stable publishes.
    pub(super) fn advance_stable(&mut self, stable: u64) {
        if stable <= self.order.stable {
            return;
        }
        self.order.stable = stable;
        let keep_from = stable;
        while !self.order.retained.is_empty()
            && self.order.applied - (self.order.retained.len() as u64) < keep_from
        {
            self.order.retained.pop_front();
        }
        self.finish_stable(Some(stable));
    }

    /// Gives `n` window permits back.
    pub(super) fn release_permits(&mut self, n: usize) {
        if n > 0 {
            let n = n.min(self.held_permits);
            self.held_permits -= n;
            self.window.add_permits(n);
        }
    }
}
