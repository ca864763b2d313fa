//! Agreeing on a server view. When the set of reachable servers differs from
//! the installed view, the lowest reachable server proposes a new view to the
//! others. Each member stops applying the old view's ops and answers with how
//! far it got, the old-view ops it still retains, and its group table. When
//! all have answered, the proposer sends each member the old-view ops it
//! missed (so all survivors of a view end it having applied the same ops), the
//! new group table (members on lost servers removed, members from merging
//! views added, each changed group with a new gid), and the new view. Members
//! apply the missed ops, announce each changed group, and start the new view;
//! own ops not yet applied are submitted again in it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use proto::msgc::v1::{
    FlushState, GroupView, Install, Member, Op, PeerMessage, Position, Propose, Refuse,
    ServerViewId, ViewChange, peer_message::Kind,
};

use super::groups::{Group, GroupTable};
use super::{Core, Phase, View};

/// A proposal this server is gathering answers for.
#[derive(Debug)]
pub(super) struct Proposal {
    pub view_id: u64,
    pub members: Vec<String>,
    pub incarnations: BTreeMap<String, u64>,
    pub states: BTreeMap<String, FlushState>,
}

impl Core {
    /// How long a proposer waits for answers before cutting the silent.
    fn proposal_timeout(&self) -> Duration {
        (self.cfg.keepalive_interval * 2).clamp(Duration::from_millis(300), Duration::from_secs(10))
    }

    fn incarnation_of(&self, server: &str) -> u64 {
        if server == self.cfg.name {
            self.incarnation
        } else {
            self.links.get(server).map_or(0, |l| l.incarnation)
        }
    }

    /// Proposes a new view if this server should: it is the lowest reachable
    /// server and the reachable set (or a member's incarnation) differs from
    /// the installed view and from any proposal under way.
    pub(super) fn maybe_propose(&mut self) {
        if self.stopping {
            return;
        }
        let reachable = self.reachable();
        if reachable.first() != Some(&self.cfg.name) {
            return;
        }
        let members: Vec<String> = reachable.into_iter().collect();
        let incarnations: BTreeMap<String, u64> = members
            .iter()
            .map(|m| (m.clone(), self.incarnation_of(m)))
            .collect();
        match &self.phase {
            Phase::Normal
                if self.view.members == members && self.view.incarnations == incarnations =>
            {
                self.update_readiness();
                return;
            }
            Phase::Proposing(p) if p.members == members && p.incarnations == incarnations => return,
            _ => {}
        }
        self.start_proposal(members, incarnations);
    }

    fn start_proposal(&mut self, members: Vec<String>, incarnations: BTreeMap<String, u64>) {
        self.leave_normal();
        self.max_view_id += 1;
        let view_id = self.max_view_id;
        tracing::info!(view_id, ?members, "proposing server view");
        let others: Vec<String> = members
            .iter()
            .filter(|m| **m != self.cfg.name)
            .cloned()
            .collect();
        for peer in &others {
            let propose = Propose {
                view_id,
                members: members.clone(),
            };
            self.send_to(
                peer,
                PeerMessage {
                    kind: Some(Kind::Propose(propose)),
                },
                1,
            );
        }
        let own = self.flush_state(view_id);
        let states = [(self.cfg.name.clone(), own)].into();
        self.phase = Phase::Proposing(Proposal {
            view_id,
            members,
            incarnations,
            states,
        });
        self.phase_since = Instant::now();
        self.check_complete();
    }

    fn flush_state(&self, proposed_view_id: u64) -> FlushState {
        FlushState {
            proposed_view_id,
            old_view: Some(ServerViewId {
                view_id: self.view.id,
                members: self.view.members.clone(),
            }),
            applied_seq: self.order.applied,
            retained: self.order.retained.iter().cloned().collect(),
            groups: self.groups.to_wire(),
            gid_floor: self.groups.gid_floor(),
        }
    }

    pub(super) fn on_propose(&mut self, peer: &str, propose: Propose) {
        if !propose.members.iter().any(|m| *m == self.cfg.name) {
            return;
        }
        // The proposer must be the lowest server of its proposal that this one
        // can reach. Servers it left out count as unreachable: a crashed server
        // is often noticed a moment later here than there.
        let lowest = self
            .reachable()
            .into_iter()
            .find(|s| propose.members.contains(s));
        // While answering a lower proposer that is still reachable, stay with
        // it; two proposers that cannot see each other would otherwise take
        // turns for ever.
        let loyal_elsewhere = matches!(&self.phase, Phase::Flushing { proposer, .. }
            if !proposer.is_empty() && proposer.as_str() < peer && self.links.contains_key(proposer));
        if propose.view_id <= self.max_view_id || lowest.as_deref() != Some(peer) || loyal_elsewhere
        {
            let refuse = Refuse {
                proposed_view_id: propose.view_id,
                known_view_id: self.max_view_id,
            };
            self.send_to(
                peer,
                PeerMessage {
                    kind: Some(Kind::Refuse(refuse)),
                },
                1,
            );
            return;
        }
        // Withdraw from an earlier proposal, so its proposer does not install
        // a view this server is not in.
        if let Phase::Flushing { view_id, proposer } = &self.phase
            && !proposer.is_empty()
            && proposer != peer
        {
            let (old, withdrawn) = (proposer.clone(), *view_id);
            let refuse = Refuse {
                proposed_view_id: withdrawn,
                known_view_id: propose.view_id,
            };
            self.send_to(
                &old,
                PeerMessage {
                    kind: Some(Kind::Refuse(refuse)),
                },
                1,
            );
        }
        self.leave_normal();
        self.max_view_id = propose.view_id;
        let state = self.flush_state(propose.view_id);
        let weight = 1 + state.retained.len();
        self.phase = Phase::Flushing {
            view_id: propose.view_id,
            proposer: peer.to_owned(),
        };
        self.phase_since = Instant::now();
        self.send_to(
            peer,
            PeerMessage {
                kind: Some(Kind::FlushState(state)),
            },
            weight,
        );
    }

    pub(super) fn on_refuse(&mut self, peer: &str, refuse: Refuse) {
        self.max_view_id = self.max_view_id.max(refuse.known_view_id);
        match &self.phase {
            // Refused for a stale id (a server joining a cluster that has moved
            // on, or a member that moved to another proposal): propose again at
            // once above the known id. A refusal for any other reason waits for
            // the proposal timeout, so two servers cannot ping-pong without pause.
            Phase::Proposing(p)
                if p.view_id == refuse.proposed_view_id && refuse.known_view_id >= p.view_id =>
            {
                let (members, incarnations) = (p.members.clone(), p.incarnations.clone());
                self.start_proposal(members, incarnations);
            }
            // A member of the installed view went to a newer proposal: this
            // view is contested, so agree on a new one.
            Phase::Normal
                if refuse.known_view_id > self.view.id
                    && self.view.members.iter().any(|m| m == peer)
                    && self.reachable().first() == Some(&self.cfg.name) =>
            {
                let members: Vec<String> = self.reachable().into_iter().collect();
                let incarnations = members
                    .iter()
                    .map(|m| (m.clone(), self.incarnation_of(m)))
                    .collect();
                self.start_proposal(members, incarnations);
            }
            _ => {}
        }
    }

    pub(super) fn on_flush_state(&mut self, peer: &str, state: FlushState) {
        let Phase::Proposing(p) = &mut self.phase else {
            return;
        };
        if state.proposed_view_id != p.view_id || !p.members.iter().any(|m| m == peer) {
            return;
        }
        p.states.insert(peer.to_owned(), state);
        self.check_complete();
    }

    /// Proposer: cut members that did not answer in time (their links come
    /// back by themselves and trigger a new proposal). Member: give up on a
    /// proposer that never installs.
    pub(super) fn check_proposal(&mut self, now: Instant) {
        let timeout = self.proposal_timeout();
        if now.duration_since(self.phase_since) < timeout {
            return;
        }
        match &self.phase {
            Phase::Proposing(p) => {
                let silent: Vec<String> = p
                    .members
                    .iter()
                    .filter(|m| !p.states.contains_key(*m))
                    .cloned()
                    .collect();
                for peer in silent {
                    self.drop_link(&peer, "did not answer a view proposal in time");
                }
            }
            Phase::Flushing { proposer, .. }
                if now.duration_since(self.phase_since) > timeout * 3 =>
            {
                let proposer = proposer.clone();
                self.phase_since = now;
                if proposer.is_empty() {
                    self.maybe_propose();
                } else {
                    self.drop_link(&proposer, "proposed a view but never installed it");
                }
            }
            _ => {}
        }
    }

    /// Proposer: once every member has answered, compute and send the install.
    fn check_complete(&mut self) {
        let Phase::Proposing(p) = &self.phase else {
            return;
        };
        if p.states.len() < p.members.len() {
            return;
        }
        let Phase::Proposing(p) = std::mem::replace(&mut self.phase, Phase::Normal) else {
            return;
        };
        let plan = InstallPlan::compute(&self.cfg.name, &p);
        let view = ServerViewId {
            view_id: p.view_id,
            members: p.members.clone(),
        };
        let groups = plan.table.to_wire();
        let me = self.cfg.name.clone();
        for member in p.members.iter().filter(|m| **m != me) {
            let tail = plan.tails.get(member).cloned().unwrap_or_default();
            let weight = 1 + tail.len();
            let install = Install {
                view: Some(view.clone()),
                tail,
                groups: groups.clone(),
                reasons: plan.reasons.clone(),
                gid_floor: plan.table.gid_floor(),
            };
            self.send_to(
                member,
                PeerMessage {
                    kind: Some(Kind::Install(install)),
                },
                weight,
            );
        }
        let tail = plan.tails.get(&self.cfg.name).cloned().unwrap_or_default();
        self.install(view, tail, plan.table, &plan.reasons, p.incarnations);
    }

    pub(super) fn on_install(&mut self, peer: &str, install: Install) {
        let Phase::Flushing { view_id, proposer } = &self.phase else {
            return;
        };
        let Some(view) = install.view else { return };
        if proposer != peer || view.view_id != *view_id {
            return;
        }
        let incarnations = view
            .members
            .iter()
            .map(|m| (m.clone(), self.incarnation_of(m)))
            .collect();
        let table = GroupTable::from_wire(install.groups, install.gid_floor);
        self.install(view, install.tail, table, &install.reasons, incarnations);
    }

    /// Ends the old view (applying its missed ops), announces changed groups,
    /// and starts the new view.
    fn install(
        &mut self,
        view: ServerViewId,
        tail: Vec<Op>,
        table: GroupTable,
        reasons: &std::collections::HashMap<String, i32>,
        incarnations: BTreeMap<String, u64>,
    ) {
        let first = self.order.applied + 1;
        self.apply_ops(self.view.id, first, tail);

        // Announce each group whose membership differs from what this server had.
        let mut effects = super::order::QueueEffects::default();
        let names: BTreeSet<String> = self
            .groups
            .iter()
            .map(|(g, _)| g.clone())
            .chain(table.iter().map(|(g, _)| g.clone()))
            .collect();
        let empty = Group::default();
        let mut announcements = Vec::new();
        for name in names {
            let old = self.groups.get(&name).unwrap_or(&empty);
            let new = table.get(&name).unwrap_or(&empty);
            let old_names: Vec<&str> = old
                .members
                .iter()
                .map(|m| m.private_name.as_str())
                .collect();
            let new_names: Vec<&str> = new
                .members
                .iter()
                .map(|m| m.private_name.as_str())
                .collect();
            if old_names == new_names {
                continue;
            }
            let changed: Vec<String> = old_names
                .iter()
                .filter(|n| !new_names.contains(n))
                .chain(new_names.iter().filter(|n| !old_names.contains(n)))
                .map(|n| (*n).to_owned())
                .collect();
            let change = reasons
                .get(&name)
                .copied()
                .unwrap_or(ViewChange::ServerLost as i32);
            announcements.push(GroupView {
                group: name,
                gid: new.gid,
                change,
                members: new.members.clone(),
                changed,
                position: Some(Position {
                    view_id: view.view_id,
                    seq: 0,
                }),
            });
        }
        self.groups = table;
        self.rebuild_local_members();
        for announcement in announcements {
            let group = announcement.group.clone();
            self.deliver_view(&group, announcement, None, &mut effects);
        }

        // Start the new view.
        tracing::info!(view_id = view.view_id, members = ?view.members, "installed server view");
        self.max_view_id = self.max_view_id.max(view.view_id);
        self.view = View {
            id: view.view_id,
            members: view.members,
            incarnations,
        };
        self.phase = Phase::Normal;
        self.phase_since = Instant::now();
        // Every survivor has now applied the old view's ops (the tails saw
        // to it): own ops of the old view are done.
        self.finish_stable(None);
        self.order.applied = 0;
        self.order.retained.clear();
        self.order.stable = 0;
        self.order.last_seq = 0;
        self.order.stable_announced = 0;
        self.order.released = 0;
        self.order.progress = self.view.members.iter().map(|m| (m.clone(), 0)).collect();
        let coordinator = self.is_coordinator();
        for (op, _) in &self.order.pending {
            if coordinator {
                self.order.to_sequence.push(op.clone());
            } else {
                self.order.unsent.push(op.clone());
            }
        }
        self.settle(effects);
        self.update_readiness();
        // The world may have moved on while this view was agreed.
        self.maybe_propose();
    }
}

/// What a proposer sends: per-member tails and the new group table.
struct InstallPlan {
    tails: BTreeMap<String, Vec<Op>>,
    table: GroupTable,
    reasons: std::collections::HashMap<String, i32>,
}

impl InstallPlan {
    fn compute(me: &str, p: &Proposal) -> Self {
        // Members grouped by the view they come from.
        let mut sides: BTreeMap<(u64, Vec<String>), Vec<&str>> = BTreeMap::new();
        for (member, state) in &p.states {
            let old = state.old_view.clone().unwrap_or_default();
            sides
                .entry((old.view_id, old.members))
                .or_default()
                .push(member);
        }
        let new_members: BTreeSet<&str> = p.members.iter().map(String::as_str).collect();
        let mut tails = BTreeMap::new();
        let mut side_tables: Vec<(BTreeSet<&str>, GroupTable)> = Vec::new();
        let mut primary = 0;
        for members in sides.values() {
            // The member that got furthest holds every op any other got.
            let Some(best) = members.iter().max_by_key(|m| p.states[**m].applied_seq) else {
                continue;
            };
            let best_state = &p.states[*best];
            let base = best_state.applied_seq - best_state.retained.len() as u64;
            for member in members {
                let applied = p.states[*member].applied_seq;
                let skip = usize::try_from(applied.saturating_sub(base)).unwrap_or(usize::MAX);
                if applied < base {
                    tracing::error!(member, applied, base, "member is behind the stable point");
                }
                tails.insert(
                    (*member).to_owned(),
                    best_state.retained.iter().skip(skip).cloned().collect(),
                );
            }
            if members.contains(&me) {
                primary = side_tables.len();
            }
            let table = GroupTable::from_wire(best_state.groups.clone(), best_state.gid_floor);
            side_tables.push((members.iter().copied().collect(), table));
        }
        // Ours first, so its members keep their seniority.
        if primary < side_tables.len() {
            let ours = side_tables.remove(primary);
            side_tables.insert(0, ours);
        }

        let mut table = GroupTable::default();
        for (_, side) in &side_tables {
            table.raise_floor(side.gid_floor());
        }
        let mut reasons = std::collections::HashMap::new();
        let names: BTreeSet<String> = side_tables
            .iter()
            .flat_map(|(_, t)| t.iter().map(|(g, _)| g.clone()))
            .collect();
        for name in names {
            // A member counts only from the side its own server reported.
            let members: Vec<Member> = side_tables
                .iter()
                .flat_map(|(servers, t)| {
                    t.get(&name)
                        .map(|g| g.members.as_slice())
                        .unwrap_or_default()
                        .iter()
                        .filter(|m| {
                            servers.contains(m.server.as_str())
                                && new_members.contains(m.server.as_str())
                        })
                        .cloned()
                        .collect::<Vec<_>>()
                })
                .collect();
            let mut gid = 0;
            let mut changed = false;
            let mut grew = false;
            for (_, t) in &side_tables {
                let (side_gid, side_members) = t
                    .get(&name)
                    .map_or((0, &[][..]), |g| (g.gid, &g.members[..]));
                gid = gid.max(side_gid);
                let same = side_members.len() == members.len()
                    && side_members
                        .iter()
                        .zip(&members)
                        .all(|(a, b)| a.private_name == b.private_name);
                changed |= !same;
                grew |= members.iter().any(|m| {
                    !side_members
                        .iter()
                        .any(|s| s.private_name == m.private_name)
                });
            }
            if changed {
                gid = gid.wrapping_add(1);
                let reason = if grew {
                    ViewChange::PartitionMerge
                } else {
                    ViewChange::ServerLost
                };
                reasons.insert(name.clone(), reason as i32);
            }
            table.set(name, Group { gid, members });
        }
        Self {
            tails,
            table,
            reasons,
        }
    }
}
