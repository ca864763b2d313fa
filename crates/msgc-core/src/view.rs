//! The view change [rules 10-18]: the lowest server of a component proposes;
//! members wedge and report their state; the proposer computes the install
//! ([`crate::plan`]); members hold the install and ack; once every member
//! acked, the proposer commits: each member then rolls forward, delivers its
//! side's cut, announces group changes, and starts the view. Nothing is
//! delivered from an install before its commit, so a proposer or member cut
//! off mid-install cannot deliver, alone, ops in doubt that their origins'
//! sides drop [rules 14b, 17].

use std::collections::{BTreeMap, BTreeSet};

use crate::ids::{Position, ServerId, ViewId};
use crate::msg::{FlushState, InstallRecord, PeerMsg, View};
use crate::op::{ChangeKind, Event, GroupView, Member, Op};
use crate::{Core, Effect};

/// This server's own proposal.
#[derive(Debug)]
pub(crate) struct Proposal {
    pub view: View,
    pub states: BTreeMap<ServerId, FlushState>,
    pub stage: Stage,
    pub since: crate::Time,
    /// Op transfers were asked for (once per proposal) [rule 14c].
    pub transfers_asked: bool,
    /// Members that get ops before answering again.
    pub awaiting: BTreeSet<ServerId>,
}

/// Where a proposal stands.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Waiting for every member's flush state.
    Collecting,
    /// Install held here; waiting for every other member's ack.
    Acking(BTreeSet<ServerId>),
    /// Refused or broken; retried from a later tick.
    Failed,
}

impl Core {
    /// Links or rows changed: maybe the view must change.
    pub(crate) fn on_connectivity_changed(&mut self) {
        self.maybe_propose();
    }

    /// Proposes a view if this server is the lowest of its component and the
    /// component is not the active view [rule 10].
    pub(crate) fn maybe_propose(&mut self) {
        if self.stopping {
            return;
        }
        let component = self.component();
        if self.view.members.iter().all(|m| component.contains(m)) {
            self.shrunk_since = None;
        }
        if component[0] != self.me {
            if self
                .proposal
                .as_ref()
                .is_some_and(|p| p.view.members != component)
            {
                self.proposal = None;
            }
            return;
        }
        match &self.proposal {
            Some(p) if p.stage != Stage::Failed && p.view.members == component => return,
            Some(p) if p.stage == Stage::Failed && self.now < self.retry_at => return,
            _ => {}
        }
        if self.proposal.is_none() && !self.needs_view_change(&component) {
            return;
        }
        if self.settling(&component) {
            return;
        }
        self.start_proposal(component);
    }

    /// True while a component that lost members of the view is younger than a
    /// keepalive interval *and* the rows look unsettled: some linked peer's
    /// row still lists a view member this server has lost, or a view member
    /// this server still links is placed in another clique (it is proposed
    /// from a later tick or row). A peer that loses the same server a moment later must first
    /// flood its row: until then the lost server's stale row still connects
    /// it to that peer, and the greedy cliques [rule 9] would split the
    /// survivors into singleton views (seen on every SIGKILL of the
    /// coordinator). After a crash every peer's connection resets at once, so
    /// the wait ends with their rows, in milliseconds.
    fn settling(&mut self, component: &[ServerId]) -> bool {
        if self.view.members.iter().all(|m| component.contains(m)) {
            return false;
        }
        let linked: BTreeSet<&ServerId> = self.links.values().map(|l| &l.peer).collect();
        let lost_but_listed = self.links.values().any(|l| {
            self.row_of(&l.peer).is_some_and(|row| {
                row.links
                    .iter()
                    .any(|x| *x != self.me && !linked.contains(x) && self.view.contains(x))
            })
        });
        // A view member still linked here but placed in another clique: some
        // row is behind (a peer that has not yet noticed a silent server
        // keeps it connected to that server, which then captures it).
        let linked_but_elsewhere = self
            .view
            .members
            .iter()
            .any(|m| linked.contains(m) && !component.contains(m));
        if !lost_but_listed && !linked_but_elsewhere {
            return false;
        }
        // Peers notice a silent server up to ~0.75 keepalive apart (last
        // receipt up to half an interval earlier, plus tick granularity).
        let since = *self.shrunk_since.get_or_insert(self.now);
        self.now < since + self.cfg.keepalive_interval
    }

    fn needs_view_change(&self, component: &[ServerId]) -> bool {
        if !self.is_active() || self.view_broken || component != self.view.members.as_slice() {
            return true;
        }
        // A member whose row still shows the answer to this view's proposal
        // has its commit on the way.
        component.iter().filter(|m| **m != self.me).any(|m| {
            self.row_of(m).is_none_or(|row| {
                let in_view = row.view == self.view.id && row.answered.is_none();
                !in_view && row.answered.as_ref() != Some(&self.view.id)
            })
        })
    }

    fn start_proposal(&mut self, members: Vec<ServerId>) {
        let id = ViewId {
            epoch: self.max_view.epoch + 1,
            proposer: self.me.clone(),
        };
        self.max_view = id.clone();
        let view = View { id, members };
        tracing::debug!(me = ?self.me, view = ?view.id, members = ?view.members, "proposing");
        let state = self.flush_state(&view.id);
        self.answered = Some((view.id.clone(), self.me.clone()));
        self.update_row();
        let others: Vec<_> = view
            .members
            .iter()
            .filter(|m| **m != self.me)
            .cloned()
            .collect();
        for m in &others {
            self.send(&m.name, PeerMsg::Propose { view: view.clone() });
        }
        self.proposal = Some(Proposal {
            states: [(self.me.clone(), state)].into(),
            view,
            stage: Stage::Collecting,
            since: self.now,
            transfers_asked: false,
            awaiting: BTreeSet::new(),
        });
        self.check_collected();
    }

    /// What this server reports to a proposer [rule 12].
    pub(crate) fn flush_state(&self, proposal: &ViewId) -> FlushState {
        let delivered = self.order.delivered;
        let membership: Vec<(u64, Op)> = self
            .order
            .held
            .iter()
            .enumerate()
            .filter(|(_, op)| op.kind.is_membership())
            .map(|(i, op)| (delivered + 1 + i as u64, op.clone()))
            .collect();
        FlushState {
            proposal: proposal.clone(),
            current: self.view.id.clone(),
            holds: self.holds.clone(),
            delivered,
            received: self.order.received(),
            stable: self.order.stable,
            table: self.groups.clone(),
            membership,
            high_water: self.delivered_from.clone(),
            held: self
                .order
                .held
                .iter()
                .map(|op| (op.origin.clone(), op.origin_seq))
                .collect(),
        }
    }

    /// The highest view id this server is in or has answered.
    fn highest_answered(&self) -> &ViewId {
        match &self.answered {
            Some((id, _)) if *id > self.view.id => id,
            _ => &self.view.id,
        }
    }

    pub(crate) fn on_propose(&mut self, from: &ServerId, view: View) {
        if self.max_view < view.id {
            self.max_view = view.id.clone();
        }
        let acceptable = view.coordinator() == from
            && view.contains(&self.me)
            && view.id > *self.highest_answered()
            && view.members == self.component();
        if !acceptable {
            let known = self.max_view.clone();
            let refuse = PeerMsg::Refuse {
                proposal: view.id,
                known,
            };
            self.send(&from.name, refuse);
            return;
        }
        // Wedged from here on [rule 11]: d and r stay as reported.
        let state = self.flush_state(&view.id);
        self.answered = Some((view.id, from.clone()));
        self.proposal = None;
        self.update_row();
        self.send(&from.name, PeerMsg::Flush(Box::new(state)));
    }

    pub(crate) fn on_refuse(&mut self, from: &ServerId, proposal: &ViewId, known: ViewId) {
        if self.max_view < known {
            self.max_view = known;
        }
        let Some(p) = &mut self.proposal else { return };
        if p.view.id == *proposal && p.stage == Stage::Collecting && p.view.contains(from) {
            tracing::debug!(me = ?self.me, ?from, "proposal refused");
            p.stage = Stage::Failed;
            self.retry_at = self.now + self.cfg.keepalive_interval / 4;
        }
    }

    pub(crate) fn on_flush(&mut self, from: &ServerId, state: FlushState) {
        let Some(p) = &mut self.proposal else { return };
        if p.stage != Stage::Collecting || state.proposal != p.view.id || !p.view.contains(from) {
            return;
        }
        p.states.insert(from.clone(), state);
        p.awaiting.remove(from);
        self.check_collected();
    }

    /// Once every member answered: compute, install here, send installs.
    fn check_collected(&mut self) {
        let Some(p) = &self.proposal else { return };
        if p.stage != Stage::Collecting
            || p.states.len() < p.view.members.len()
            || !p.awaiting.is_empty()
        {
            return;
        }
        if !p.transfers_asked {
            let transfers = crate::plan::transfers(&p.view, &p.states);
            let id = p.view.id.clone();
            if let Some(p) = &mut self.proposal {
                p.transfers_asked = true;
                p.awaiting = transfers.iter().map(|t| t.lagger.clone()).collect();
                p.since = self.now;
            }
            if !transfers.is_empty() {
                self.start_transfers(&id, transfers);
                return;
            }
        }
        let Some(p) = &self.proposal else { return };
        let record = match crate::plan::plan(&p.view, &p.states) {
            Ok(record) => record,
            Err(e) => {
                tracing::error!(me = ?self.me, error = %e, "cannot combine flush states");
                if let Some(p) = &mut self.proposal {
                    p.stage = Stage::Failed;
                }
                self.retry_at = self.now + self.cfg.proposal_timeout;
                return;
            }
        };
        let view = p.view.clone();
        let me = self.me.clone();
        for m in view.members.iter().filter(|m| **m != me) {
            let install = PeerMsg::Install {
                record: Box::new(record.clone()),
            };
            self.send(&m.name, install);
        }
        if let Some(p) = &mut self.proposal {
            p.stage = Stage::Acking(BTreeSet::new());
            p.since = self.now;
        }
        self.holds = Some(record);
        self.check_acked();
    }

    pub(crate) fn on_install(&mut self, from: &ServerId, record: InstallRecord) {
        let expected = self
            .answered
            .as_ref()
            .is_some_and(|(id, proposer)| *id == record.view.id && proposer == from);
        if !expected {
            return; // Not the proposal this server last answered [rule 16].
        }
        let view = record.view.id.clone();
        // Held, not applied, until the commit [rule 17].
        self.holds = Some(record);
        self.send(&from.name, PeerMsg::InstallAck { view });
    }

    /// Enters the held install and starts the view.
    fn apply_held_install(&mut self) {
        if let Some(record) = self.holds.take() {
            self.enter(record);
        }
        self.answered = None;
        self.start_view();
    }

    /// Leaves the current view at its cut and enters `record`'s view (the
    /// caller starts it) [rule 16].
    pub(crate) fn enter(&mut self, record: InstallRecord) {
        let Some(source) = record.sources.get(&self.me).cloned() else {
            tracing::error!(me = ?self.me, view = ?record.view.id, "install without a source for me");
            return;
        };
        if source.from != self.view.id || source.cut > self.order.received() {
            tracing::error!(me = ?self.me, ?source, current = ?self.view.id, received = self.order.received(), "install does not fit");
        }
        self.deliver_cut(&source);
        // What the cut delivered, its whole side delivered: acknowledged.
        self.release_acks(None);
        self.order.held.clear();
        self.adopt_high_water(&record);
        self.announce(&record, source.cut);
        self.groups = record.table.clone();
        self.rebuild_local_members();
        tracing::debug!(me = ?self.me, view = ?record.view.id, cut = source.cut, "installed");
        self.view = record.view.clone();
        self.started = false;
        self.effects.push(Effect::Installed {
            record: Box::new(record),
        });
        let (view, me) = (self.view.clone(), self.me.clone());
        self.order.start(&view, &me);
    }

    /// Raises the duplicate fence to the record's marks; own ops that another
    /// side delivered are dropped, and the sessions that published them are
    /// ended, since their own side will never deliver or acknowledge them
    /// [rule 15: no replay across sides].
    fn adopt_high_water(&mut self, record: &InstallRecord) {
        for (origin, seq) in &record.high_water {
            let mark = self.delivered_from.entry(origin.clone()).or_insert(0);
            *mark = (*mark).max(*seq);
        }
        let Some(&mine) = record.high_water.get(&self.me) else {
            return;
        };
        let mut lost = BTreeSet::new();
        let mut permits = 0;
        while self
            .pending
            .front()
            .is_some_and(|p| p.op.origin_seq <= mine)
        {
            let Some(p) = self.pending.pop_front() else {
                break;
            };
            permits += usize::from(p.permit);
            if let Some(session) = p.session.or_else(|| member_session(&p.op.kind)) {
                lost.insert(session);
            }
        }
        self.release_permits(permits);
        for session in lost {
            tracing::warn!(me = ?self.me, session = session.0, "publishes delivered only by another side");
            self.cut_session(session, crate::CloseReason::PublishesLost);
        }
    }

    /// Tells local members of every group whose member list differs in the
    /// new table: who was lost (SERVER_LOST), then who came back
    /// (PARTITION_MERGE) [rule 16, scenario 7].
    fn announce(&mut self, record: &InstallRecord, cut: u64) {
        let epoch = self.view.id.epoch;
        let names: BTreeSet<String> = self.local_members.keys().cloned().collect();
        for name in names {
            let (old_gid, old) = self
                .groups
                .get(&name)
                .map(|g| (g.gid, g.members.clone()))
                .unwrap_or_default();
            let Some(new) = record.table.get(&name).cloned() else {
                continue;
            };
            let keys = |ms: &[Member]| ms.iter().map(|m| m.key.clone()).collect::<Vec<_>>();
            if keys(&old) == keys(&new.members) && old_gid == new.gid {
                continue;
            }
            let lost: Vec<&Member> = old.iter().filter(|m| !new.contains(&m.key)).collect();
            let gained: Vec<&Member> = new
                .members
                .iter()
                .filter(|m| !old.iter().any(|o| o.key == m.key))
                .collect();
            let mut events = Vec::new();
            let remaining: Vec<Member> = old
                .iter()
                .filter(|m| new.contains(&m.key))
                .cloned()
                .collect();
            // Seniority may change in a merge: the last event always carries
            // the new table's order.
            // (Also when only the gid moved, because another side changed.)
            let regrouped = keys(&remaining) != keys(&new.members) || lost.is_empty();
            if !lost.is_empty() {
                let gid = if regrouped {
                    new.gid.wrapping_sub(1)
                } else {
                    new.gid
                };
                events.push(GroupView {
                    group: name.clone(),
                    gid,
                    change: ChangeKind::ServerLost,
                    members: remaining,
                    changed: lost.iter().map(|m| m.private_name.clone()).collect(),
                    position: Position {
                        epoch,
                        seq: cut + 1,
                    },
                });
            }
            if regrouped {
                events.push(GroupView {
                    group: name.clone(),
                    gid: new.gid,
                    change: ChangeKind::PartitionMerge,
                    members: new.members.clone(),
                    changed: gained.iter().map(|m| m.private_name.clone()).collect(),
                    position: Position {
                        epoch,
                        seq: cut + 2,
                    },
                });
            }
            let recipients: Vec<_> = new
                .members
                .iter()
                .filter(|m| m.key.server == self.me && self.sessions.contains_key(&m.key.session))
                .map(|m| m.key.session)
                .collect();
            for event in events {
                for &session in &recipients {
                    self.effects.push(Effect::Deliver {
                        session,
                        event: Event::View(event.clone()),
                    });
                }
            }
        }
    }

    pub(crate) fn on_install_ack(&mut self, from: &ServerId, view: &ViewId) {
        let Some(p) = &mut self.proposal else { return };
        if p.view.id != *view {
            return;
        }
        if let Stage::Acking(acked) = &mut p.stage {
            acked.insert(from.clone());
        }
        self.check_acked();
    }

    /// Once every member installed, the view starts [rule 17].
    fn check_acked(&mut self) {
        let Some(p) = &self.proposal else { return };
        let Stage::Acking(acked) = &p.stage else {
            return;
        };
        let held = self.holds.as_ref().is_some_and(|r| r.view.id == p.view.id);
        if acked.len() + 1 < p.view.members.len() || !held {
            return;
        }
        let view = p.view.clone();
        self.proposal = None;
        let me = self.me.clone();
        for m in view.members.iter().filter(|m| **m != me) {
            self.send(
                &m.name,
                PeerMsg::Commit {
                    view: view.id.clone(),
                },
            );
        }
        self.apply_held_install();
    }

    /// The commit of the install held for the proposal this server last
    /// answered (a commit of an earlier one, after answering a later
    /// proposal, is ignored: that proposal's plan rolls through it).
    pub(crate) fn on_commit(&mut self, from: &ServerId, view: &ViewId) {
        let answered = self
            .answered
            .as_ref()
            .is_some_and(|(id, proposer)| id == view && proposer == from);
        let held = self.holds.as_ref().is_some_and(|r| r.view.id == *view);
        if answered && held {
            self.apply_held_install();
        }
    }

    fn start_view(&mut self) {
        self.started = true;
        self.view_broken = false;
        let (view, me) = (self.view.clone(), self.me.clone());
        self.order.start(&view, &me);
        self.resubmit_pending();
        self.update_row();
        tracing::info!(me = ?self.me, view = ?self.view.id, members = ?self.view.members, "view started");
        self.effects.push(Effect::ViewStarted { view });
        self.update_readiness();
        self.maybe_propose();
    }

    /// A link to `peer` was lost: a proposal that needs it fails.
    pub(crate) fn on_link_lost(&mut self, peer: &ServerId) {
        if let Some(p) = &mut self.proposal
            && p.view.contains(peer)
        {
            p.stage = Stage::Failed;
            self.retry_at = self.now;
        }
    }

    /// Proposer: drop links of members that did not answer or ack in time
    /// [rule 18].
    pub(crate) fn check_proposal(&mut self) {
        let Some(p) = &mut self.proposal else { return };
        if self.now.saturating_sub(p.since) < self.cfg.proposal_timeout {
            return;
        }
        if p.stage == Stage::Collecting && !p.awaiting.is_empty() {
            // A transfer did not arrive in time: plan without it (the side
            // takes its own lower cut) [rule 14c].
            tracing::warn!(me = ?self.me, awaiting = ?p.awaiting, "op transfer timed out");
            p.awaiting.clear();
            p.since = self.now;
            self.check_collected();
            return;
        }
        let Some(p) = &self.proposal else { return };
        let silent: Vec<ServerId> = match &p.stage {
            Stage::Collecting => p
                .view
                .members
                .iter()
                .filter(|m| !p.states.contains_key(*m))
                .cloned()
                .collect(),
            Stage::Acking(acked) => p
                .view
                .members
                .iter()
                .filter(|m| **m != self.me && !acked.contains(*m))
                .cloned()
                .collect(),
            Stage::Failed => Vec::new(),
        };
        for m in silent {
            self.drop_link(&m.name, "did not answer a view proposal in time");
        }
    }
}

/// The local session a join or leave op is about.
fn member_session(kind: &crate::op::OpKind) -> Option<crate::ids::SessionId> {
    match kind {
        crate::op::OpKind::Join { member, .. } => Some(member.key.session),
        crate::op::OpKind::Leave { key, .. } => Some(key.session),
        crate::op::OpKind::Publish { .. } => None,
    }
}
