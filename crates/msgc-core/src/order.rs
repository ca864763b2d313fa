//! The total order within a view [rules 1-6]: origins submit their ops to the
//! coordinator, which numbers them and sends them to every member; members
//! report how far they hold the stream; the coordinator announces the stable
//! point (held by every member); members deliver only stable ops.

use std::collections::{BTreeMap, VecDeque};

use crate::ids::{Position, Seq, ServerId, SessionId, ViewId};
use crate::msg::{PeerMsg, View};
use crate::op::{ChangeKind, Event, GroupView, Op, OpKind};
use crate::{Core, Effect, Pending};

/// Order bookkeeping of the current view (reset when a view starts).
#[derive(Debug, Default)]
pub(crate) struct Order {
    /// Ops `1..=delivered` have been delivered here.
    pub delivered: Seq,
    /// Ops held but not delivered: `(delivered, delivered + held.len()]`.
    pub held: VecDeque<Op>,
    /// The stable point this server knows.
    pub stable: Seq,
    /// Every member knows the stable point is this far ("stable²"): own
    /// publishes up to here are acknowledged. So every side of a later
    /// partition knows them stable and delivers them [rule 14a].
    pub acked: Seq,
    /// The stable point this server last reported knowing.
    pub reported_stable: Seq,
    /// How far each other member knows the stable point (coordinator).
    pub known_stable: BTreeMap<ServerId, Seq>,
    /// Acked point last announced (coordinator).
    pub announced_acked: Seq,
    /// Own publishes delivered, waiting for the acked point: (seq, session).
    pub unacked: VecDeque<(Seq, SessionId)>,
    /// How far this server last reported holding.
    pub reported: Seq,
    /// Own ops to submit at the end of the turn (members).
    pub unsent: Vec<Op>,
    /// This server sequences the view.
    pub coordinator: bool,
    /// Last seq given out (coordinator).
    pub last_seq: Seq,
    /// Ops to number at the end of the turn (coordinator).
    pub to_sequence: Vec<Op>,
    /// Per origin, the origin seq its next op must have (coordinator): an
    /// origin's ops are numbered in its order, with no gap [rule 2].
    pub next_from: BTreeMap<ServerId, u64>,
    /// How far each other member holds (coordinator).
    pub progress: BTreeMap<ServerId, Seq>,
    /// Stable point last announced (coordinator).
    pub announced: Seq,
}

impl Order {
    /// A fresh order for a view that starts.
    pub fn start(&mut self, view: &View, me: &ServerId) {
        *self = Order {
            coordinator: view.coordinator() == me,
            progress: view
                .members
                .iter()
                .filter(|m| *m != me)
                .map(|m| (m.clone(), 0))
                .collect(),
            known_stable: view
                .members
                .iter()
                .filter(|m| *m != me)
                .map(|m| (m.clone(), 0))
                .collect(),
            ..Order::default()
        };
    }

    /// Ops `1..=received` are held (or delivered) here.
    pub fn received(&self) -> Seq {
        self.delivered + self.held.len() as Seq
    }
}

impl Core {
    /// Submits an op of this server's own (from `session`, holding a permit
    /// or not); it goes out at the end of the turn if the view is active,
    /// otherwise once a view starts.
    pub(crate) fn submit(&mut self, kind: OpKind, session: Option<SessionId>, permit: bool) {
        self.next_origin_seq += 1;
        let op = Op {
            origin: self.me.clone(),
            origin_seq: self.next_origin_seq,
            kind,
        };
        if self.is_active() {
            self.queue_for_order(op.clone());
        }
        self.pending.push_back(Pending {
            op,
            session,
            permit,
        });
    }

    fn queue_for_order(&mut self, op: Op) {
        if self.order.coordinator {
            self.order.to_sequence.push(op);
        } else {
            self.order.unsent.push(op);
        }
    }

    /// Every own op not yet delivered goes to the new view's order, in
    /// submission order [rule 14: ops above a cut are resubmitted].
    pub(crate) fn resubmit_pending(&mut self) {
        let ops: Vec<Op> = self.pending.iter().map(|p| p.op.clone()).collect();
        for op in ops {
            self.queue_for_order(op);
        }
    }

    pub(crate) fn on_submit(&mut self, from: &ServerId, view: &ViewId, ops: Vec<Op>) {
        if !self.is_active()
            || !self.order.coordinator
            || *view != self.view.id
            || !self.view.contains(from)
        {
            return; // The origin resubmits them once a new view starts.
        }
        // Every member starts the view with the same fence, so an origin's
        // first op in it follows its last delivered one.
        let fence = self.delivered_from.get(from).copied().unwrap_or(0);
        let next = self
            .order
            .next_from
            .entry(from.clone())
            .or_insert(fence + 1);
        for op in ops {
            if op.origin_seq < *next {
                continue; // Already numbered.
            }
            if op.origin_seq > *next {
                // Earlier ops were lost with a dropped link: numbering past
                // them would deliver the origin's ops out of its order. The
                // view changes (the link is gone), and the origin resubmits.
                tracing::warn!(me = ?self.me, origin = ?from, expected = *next, got = op.origin_seq, "gap in an origin's ops");
                return;
            }
            *next += 1;
            self.order.to_sequence.push(op);
        }
    }

    /// End of a turn: members submit and report; the coordinator numbers
    /// what arrived and announces the stable point.
    pub(crate) fn end_turn(&mut self) {
        if !self.is_active() {
            return;
        }
        if self.order.coordinator {
            self.sequence();
            return;
        }
        let coordinator = self.view.coordinator().name.clone();
        if !self.order.unsent.is_empty() {
            let ops = std::mem::take(&mut self.order.unsent);
            let view = self.view.id.clone();
            self.send(&coordinator, PeerMsg::Submit { view, ops });
        }
        let received = self.order.received();
        let (moved, stable) = (received > self.order.reported, self.order.stable);
        if self.congested.is_empty() && (moved || stable > self.order.reported_stable) {
            self.order.reported = self.order.reported.max(received);
            self.order.reported_stable = stable;
            let view = self.view.id.clone();
            let received = self.order.reported;
            let msg = PeerMsg::Progress {
                view,
                received,
                stable,
            };
            self.send(&coordinator, msg);
        }
    }

    /// Coordinator: number this turn's ops, move the stable point, send.
    fn sequence(&mut self) {
        let ops = std::mem::take(&mut self.order.to_sequence);
        let first = self.order.last_seq + 1;
        self.order.last_seq += ops.len() as Seq;
        self.order.held.extend(ops.iter().cloned());
        if self.congested.is_empty() {
            self.order.reported = self.order.received();
        }
        let stable = self
            .order
            .progress
            .values()
            .copied()
            .chain([self.order.reported])
            .min()
            .unwrap_or(0);
        let acked = self
            .order
            .known_stable
            .values()
            .copied()
            .chain([stable])
            .min()
            .unwrap_or(0);
        let quiet = stable <= self.order.announced && acked <= self.order.announced_acked;
        if ops.is_empty() && quiet {
            return;
        }
        self.order.announced = stable;
        self.order.announced_acked = acked;
        let msg = PeerMsg::Sequenced {
            view: self.view.id.clone(),
            first,
            ops,
            stable,
            acked,
        };
        let others: Vec<_> = self.order.progress.keys().map(|m| m.name.clone()).collect();
        for peer in others {
            self.send(&peer, msg.clone());
        }
        self.order.stable = stable;
        self.deliver_upto(stable);
        self.order.acked = acked;
        self.release_acks(Some(acked));
    }

    /// Acknowledges own delivered publishes up to `upto` (all with `None`).
    pub(crate) fn release_acks(&mut self, upto: Option<Seq>) {
        while let Some(&(seq, session)) = self.order.unacked.front() {
            if upto.is_some_and(|a| seq > a) {
                break;
            }
            self.order.unacked.pop_front();
            if self.sessions.contains_key(&session) {
                let epoch = self.view.id.epoch;
                let position = Position { epoch, seq };
                self.effects.push(Effect::Acked { session, position });
            }
        }
    }

    pub(crate) fn on_sequenced(
        &mut self,
        from: &ServerId,
        view: &ViewId,
        first: Seq,
        ops: Vec<Op>,
        (stable, acked): (Seq, Seq),
    ) {
        let current = self.is_active()
            && *view == self.view.id
            && self.view.coordinator() == from
            && !self.order.coordinator;
        if !current {
            return;
        }
        if !ops.is_empty() && first != self.order.received() + 1 {
            // Links are FIFO: a gap means a lost link state; only a new view
            // is safe.
            tracing::error!(me = ?self.me, expected = self.order.received() + 1, first, "gap in the order");
            self.drop_link(&from.name, "gap in the sequenced stream");
            return;
        }
        self.order.held.extend(ops);
        self.order.stable = self.order.stable.max(stable);
        self.deliver_upto(self.order.stable);
        self.order.acked = self.order.acked.max(acked);
        self.release_acks(Some(self.order.acked));
    }

    pub(crate) fn on_progress(
        &mut self,
        from: &ServerId,
        view: &ViewId,
        received: Seq,
        stable: Seq,
    ) {
        if !self.is_active() || *view != self.view.id || !self.order.coordinator {
            return;
        }
        if let Some(seen) = self.order.progress.get_mut(from) {
            *seen = (*seen).max(received);
        }
        if let Some(seen) = self.order.known_stable.get_mut(from) {
            *seen = (*seen).max(stable);
        }
    }

    /// Delivers held ops up to `seq` (or as far as held).
    pub(crate) fn deliver_upto(&mut self, seq: Seq) {
        self.deliver_through(seq, None);
    }

    /// Delivers held ops up to a cut, skipping above `keep_below` the ops
    /// whose origin is not on this side [rule 14a].
    pub(crate) fn deliver_cut(&mut self, source: &crate::msg::Source) {
        self.deliver_through(source.cut, Some((source.keep_below, &source.keep_from)));
    }

    /// The one delivery loop: held ops up to `upto`, each at its position,
    /// filtered by a cut's origin rule (its `keep_below` and kept origins)
    /// when there is one.
    fn deliver_through(&mut self, upto: Seq, cut: Option<(Seq, &[ServerId])>) {
        while self.order.delivered < upto {
            let Some(op) = self.order.held.pop_front() else {
                break;
            };
            self.order.delivered += 1;
            let seq = self.order.delivered;
            let kept = cut.is_none_or(|(keep_below, kept)| {
                crate::plan::kept_at_cut(seq, &op.origin, keep_below, kept)
            });
            if kept {
                let epoch = self.view.id.epoch;
                self.deliver_op(op, Position { epoch, seq });
            }
        }
    }

    /// Delivers one op to local sessions (skipping a duplicate [rule 5]),
    /// and finishes it if it is this server's own.
    pub(crate) fn deliver_op(&mut self, op: Op, position: Position) {
        let last = self.delivered_from.entry(op.origin.clone()).or_insert(0);
        if op.origin_seq <= *last {
            tracing::warn!(me = ?self.me, origin = ?op.origin, seq = op.origin_seq, "duplicate op skipped");
            return;
        }
        *last = op.origin_seq;
        let own = if op.origin == self.me {
            self.finish_own(op.origin_seq)
        } else {
            None
        };
        let own_session = own.as_ref().and_then(|p| p.session);
        match op.kind {
            OpKind::Publish {
                group,
                sender,
                payload,
            } => {
                let event = Event::Delivery {
                    group: group.clone(),
                    sender,
                    payload,
                    position,
                    origin: (op.origin, op.origin_seq),
                };
                self.deliver_to_group(&group, own_session, event);
                if let Some(session) = own_session {
                    self.order.unacked.push_back((position.seq, session));
                }
            }
            OpKind::Join { group, member } => self.apply_join(group, member, position),
            OpKind::Leave { group, key, reason } => self.apply_leave(group, key, reason, position),
        }
        if own.is_some_and(|p| p.permit) {
            self.release_permits(1);
        }
    }

    /// The pending entry of an own op being delivered (ops are delivered in
    /// submission order, so it is the front).
    fn finish_own(&mut self, origin_seq: u64) -> Option<Pending> {
        while let Some(front) = self.pending.front() {
            if front.op.origin_seq > origin_seq {
                return None;
            }
            let front = self.pending.pop_front()?;
            if front.op.origin_seq == origin_seq {
                return Some(front);
            }
            tracing::error!(me = ?self.me, seq = front.op.origin_seq, "own op overtaken");
            if front.permit {
                self.release_permits(1);
            }
        }
        None
    }

    fn deliver_to_group(&mut self, group: &str, sender: Option<SessionId>, event: Event) {
        let Some(locals) = self.local_members.get(group) else {
            return;
        };
        for &id in locals {
            let skip =
                Some(id) == sender && self.sessions.get(&id).is_some_and(|s| s.no_self_delivery);
            if !skip {
                self.effects.push(Effect::Deliver {
                    session: id,
                    event: event.clone(),
                });
            }
        }
    }

    fn apply_join(&mut self, group: String, member: crate::op::Member, position: Position) {
        let name = member.private_name.clone();
        let local = (member.key.server == self.me
            && self.sessions.contains_key(&member.key.session))
        .then_some(member.key.session);
        let Some(state) = self.groups.join(&group, member) else {
            return;
        };
        let view = GroupView {
            group: group.clone(),
            gid: state.gid,
            change: ChangeKind::Join,
            members: state.members.clone(),
            changed: vec![name],
            position,
        };
        if let Some(id) = local {
            self.local_members
                .entry(group.clone())
                .or_default()
                .push(id);
        }
        self.deliver_to_group(&group, None, Event::View(view));
    }

    fn apply_leave(
        &mut self,
        group: String,
        key: crate::ids::MemberKey,
        reason: ChangeKind,
        position: Position,
    ) {
        let Some((state, gone)) = self.groups.leave(&group, &key) else {
            return;
        };
        if key.server == self.me
            && let Some(locals) = self.local_members.get_mut(&group)
        {
            locals.retain(|s| *s != key.session);
            if locals.is_empty() {
                self.local_members.remove(&group);
            }
        }
        let view = GroupView {
            group: group.clone(),
            gid: state.gid,
            change: reason,
            members: state.members,
            changed: vec![gone.private_name],
            position,
        };
        self.deliver_to_group(&group, None, Event::View(view));
    }
}
