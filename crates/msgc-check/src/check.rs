//! The checker proper.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use proto::msgc::v1::ViewChange;
use serde::{Deserialize, Serialize};

use crate::payload::MsgId;
use crate::record::{Pos, Record, Run, server_of};
use crate::violation::{EventKey, Violation, report};

/// What a passing check looked at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Client logs in the run.
    pub clients: usize,
    /// Of those, clients that survived to the end.
    pub survivors: usize,
    /// Delivery records checked.
    pub deliveries: usize,
    /// View records checked.
    pub views: usize,
    /// (group, client pair) orders compared by the agreed-order check.
    pub pairs_compared: usize,
    /// Acknowledged messages.
    pub acked: usize,
    /// (survivor, acknowledged message) pairs the reliable-delivery check demanded.
    pub required_deliveries: usize,
    /// Acknowledged messages no client delivered and whose position could not
    /// be bounded (so no survivor could be held to them).
    pub unbounded_acked: usize,
    /// (survivor, SERVER_LOST view dropping a lost server) pairs verified.
    pub server_lost_views: usize,
}

/// Checks every invariant over a recorded run. Returns what was checked, or
/// every violation found (not just the first).
pub fn check(run: &Run) -> Result<Summary, Vec<Violation>> {
    let mut checker = Checker::new(run);
    checker.validate();
    checker.per_client();
    checker.agreed_order();
    checker.reliable_delivery();
    checker.views_delivered();
    checker.virtual_synchrony();
    checker.membership_follows_servers();
    if checker.violations.is_empty() {
        Ok(checker.summary)
    } else {
        Err(checker.violations)
    }
}

/// Runs [`check`] and panics with a readable [`report`] (and the run as JSON
/// if `MSGC_CHECK_DUMP` is set in the environment) when anything is violated.
pub fn assert_valid(run: &Run) -> Summary {
    match check(run) {
        Ok(summary) => summary,
        Err(violations) => {
            let mut msg = report(&violations, 30);
            if std::env::var_os("MSGC_CHECK_DUMP").is_some() {
                msg.push_str("run:\n");
                msg.push_str(&run.to_json());
            }
            panic!("msgc invariants violated: {msg}");
        }
    }
}

/// One event of a client's log (first occurrence of its key only).
struct Ev<'a> {
    key: EventKey,
    rec: &'a Record,
}

/// The first observation of a view, by any client.
struct ViewObs<'a> {
    client: usize,
    pos: Pos,
    change: ViewChange,
    members: &'a [String],
}

/// The first observation of a message, by any client.
struct MsgObs<'a> {
    client: usize,
    pos: Pos,
    sender_private: &'a str,
}

struct Checker<'a> {
    run: &'a Run,
    violations: Vec<Violation>,
    summary: Summary,
    /// Message → (publisher index, index in its `sent`).
    sent: HashMap<MsgId, (usize, usize)>,
    /// Publisher tags that have a log (their FIFO order comes from `sent`).
    tags: HashSet<&'a str>,
    /// Per client, per group: its events in delivery order.
    events: Vec<BTreeMap<&'a str, Vec<Ev<'a>>>>,
    /// Per client: messages it delivered.
    delivered: Vec<HashSet<&'a MsgId>>,
    /// Per group, per gid: first observation.
    views: BTreeMap<&'a str, BTreeMap<u32, ViewObs<'a>>>,
    /// Per message: first observation.
    msgs: HashMap<&'a MsgId, MsgObs<'a>>,
    /// Client private name → index.
    by_name: HashMap<&'a str, usize>,
}

fn describe_view(change: ViewChange, members: &[String]) -> String {
    format!("{} {:?}", change.as_str_name(), members)
}

fn lists(members: &[String], client: &str) -> bool {
    members.iter().any(|m| m == client)
}

impl<'a> Checker<'a> {
    fn new(run: &'a Run) -> Self {
        Self {
            run,
            violations: Vec::new(),
            summary: Summary {
                clients: run.clients.len(),
                survivors: run.clients.iter().filter(|c| c.survived).count(),
                ..Summary::default()
            },
            sent: HashMap::new(),
            tags: HashSet::new(),
            events: Vec::new(),
            delivered: Vec::new(),
            views: BTreeMap::new(),
            msgs: HashMap::new(),
            by_name: HashMap::new(),
        }
    }

    fn name(&self, client: usize) -> String {
        self.run.clients[client].client.clone()
    }

    fn validate(&mut self) {
        for (i, c) in self.run.clients.iter().enumerate() {
            if self.by_name.insert(&c.client, i).is_some() {
                self.violations.push(Violation::BadRun {
                    reason: format!("two client logs are named {}", c.client),
                });
            }
        }
        for (pi, p) in self.run.publishers.iter().enumerate() {
            self.tags.insert(&p.tag);
            if p.acked > p.sent.len() as u64 {
                self.violations.push(Violation::BadRun {
                    reason: format!(
                        "publisher {} (group {}) has {} acked of {} sent",
                        p.tag,
                        p.group,
                        p.acked,
                        p.sent.len()
                    ),
                });
            }
            for (k, counter) in p.sent.iter().enumerate() {
                let id = MsgId::new(p.tag.clone(), *counter);
                if self.sent.insert(id.clone(), (pi, k)).is_some() {
                    self.violations.push(Violation::BadRun {
                        reason: format!("message {id} is sent twice by the publisher logs"),
                    });
                }
            }
            self.summary.acked += p.acked_ids().count();
        }
    }

    /// FIFO rank of a message: its send index if its publisher has a log, its
    /// counter if not; `None` for an unknown message of a logged publisher.
    fn fifo_rank(&self, id: &MsgId) -> Option<u64> {
        match self.sent.get(id) {
            Some((_, k)) => Some(*k as u64),
            None if self.tags.contains(id.sender.as_str()) => None,
            None => Some(id.counter),
        }
    }

    /// One pass over each log: duplicates, creation, groups, FIFO, gid and
    /// position order; builds the per-client events and the observations
    /// while checking that every client saw each event alike.
    fn per_client(&mut self) {
        let run = self.run;
        for (ci, log) in run.clients.iter().enumerate() {
            let client = &log.client;
            let mut events: BTreeMap<&'a str, Vec<Ev<'a>>> = BTreeMap::new();
            let mut delivered: HashMap<&'a MsgId, usize> = HashMap::new();
            let mut last_pos: HashMap<&'a str, Pos> = HashMap::new();
            let mut last_gid: HashMap<&'a str, u32> = HashMap::new();
            let mut last_fifo: HashMap<(&'a str, &'a str), (u64, u64)> = HashMap::new();
            for (index, rec) in log.records.iter().enumerate() {
                let group = rec.group();
                let pos = rec.position();
                let key = match rec {
                    Record::Delivery {
                        id, sender_private, ..
                    } => {
                        self.summary.deliveries += 1;
                        if let Some(first_index) = delivered.get(id) {
                            self.violations.push(Violation::Duplicated {
                                client: client.clone(),
                                group: group.to_owned(),
                                id: id.clone(),
                                first_index: *first_index,
                                index,
                            });
                            continue;
                        }
                        delivered.insert(id, index);
                        match self.sent.get(id) {
                            None => self.violations.push(Violation::Created {
                                client: client.clone(),
                                group: group.to_owned(),
                                id: id.clone(),
                                index,
                            }),
                            Some((pi, _)) if run.publishers[*pi].group != group => {
                                self.violations.push(Violation::WrongGroup {
                                    client: client.clone(),
                                    id: id.clone(),
                                    published_to: run.publishers[*pi].group.clone(),
                                    delivered_in: group.to_owned(),
                                    index,
                                });
                            }
                            Some(_) => {}
                        }
                        if let Some(rank) = self.fifo_rank(id) {
                            let slot = (group, id.sender.as_str());
                            if let Some((prev_rank, prev_counter)) = last_fifo.get(&slot)
                                && *prev_rank >= rank
                            {
                                self.violations.push(Violation::FifoViolated {
                                    client: client.clone(),
                                    group: group.to_owned(),
                                    publisher: id.sender.clone(),
                                    first: *prev_counter,
                                    then: id.counter,
                                    index,
                                });
                            }
                            last_fifo.insert(slot, (rank, id.counter));
                        }
                        match self.msgs.get(id) {
                            None => {
                                self.msgs.insert(
                                    id,
                                    MsgObs {
                                        client: ci,
                                        pos,
                                        sender_private,
                                    },
                                );
                            }
                            Some(obs) => {
                                if obs.pos != pos {
                                    self.violations.push(Violation::PositionsDisagree {
                                        group: group.to_owned(),
                                        event: EventKey::Message(id.clone()),
                                        a: self.name(obs.client),
                                        a_pos: obs.pos,
                                        b: client.clone(),
                                        b_pos: pos,
                                    });
                                }
                                if obs.sender_private != sender_private {
                                    self.violations.push(Violation::SenderDisagrees {
                                        group: group.to_owned(),
                                        id: id.clone(),
                                        a: self.name(obs.client),
                                        a_sender: obs.sender_private.to_owned(),
                                        b: client.clone(),
                                        b_sender: sender_private.clone(),
                                    });
                                }
                            }
                        }
                        EventKey::Message(id.clone())
                    }
                    Record::View {
                        gid,
                        change,
                        members,
                        ..
                    } => {
                        self.summary.views += 1;
                        if let Some(prev) = last_gid.get(group)
                            && *prev >= *gid
                        {
                            self.violations.push(Violation::GidNotIncreasing {
                                client: client.clone(),
                                group: group.to_owned(),
                                index,
                                prev: *prev,
                                gid: *gid,
                            });
                            let repeat = events.get(group).is_some_and(|evs| {
                                evs.iter().any(|e| e.key == EventKey::View(*gid))
                            });
                            if repeat {
                                continue;
                            }
                        }
                        last_gid.insert(group, *gid);
                        let group_views = self.views.entry(group).or_default();
                        match group_views.get(gid) {
                            None => {
                                group_views.insert(
                                    *gid,
                                    ViewObs {
                                        client: ci,
                                        pos,
                                        change: *change,
                                        members,
                                    },
                                );
                            }
                            Some(obs) => {
                                let (a, a_pos) = (obs.client, obs.pos);
                                let differs =
                                    obs.change != *change || obs.members != members.as_slice();
                                let a_view = describe_view(obs.change, obs.members);
                                if a_pos != pos {
                                    self.violations.push(Violation::PositionsDisagree {
                                        group: group.to_owned(),
                                        event: EventKey::View(*gid),
                                        a: self.name(a),
                                        a_pos,
                                        b: client.clone(),
                                        b_pos: pos,
                                    });
                                }
                                if differs {
                                    self.violations.push(Violation::ViewDisagrees {
                                        group: group.to_owned(),
                                        gid: *gid,
                                        a: self.name(a),
                                        a_view,
                                        b: client.clone(),
                                        b_view: describe_view(*change, members),
                                    });
                                }
                            }
                        }
                        EventKey::View(*gid)
                    }
                };
                if let Some(prev) = last_pos.get(group)
                    && *prev >= pos
                {
                    self.violations.push(Violation::PositionNotIncreasing {
                        client: client.clone(),
                        group: group.to_owned(),
                        event: key.clone(),
                        index,
                        prev: *prev,
                        pos,
                    });
                }
                last_pos.insert(group, pos);
                events.entry(group).or_default().push(Ev { key, rec });
            }
            self.events.push(events);
            self.delivered.push(delivered.into_keys().collect());
        }
    }

    /// 1: for each group and pair of clients, the common events appear in the
    /// same relative order (index map of one, monotonic walk of the other).
    fn agreed_order(&mut self) {
        let groups: BTreeSet<&'a str> =
            self.events.iter().flat_map(|e| e.keys().copied()).collect();
        for group in groups {
            let members: Vec<usize> = (0..self.events.len())
                .filter(|c| self.events[*c].contains_key(group))
                .collect();
            for (n, &a) in members.iter().enumerate() {
                let a_events = &self.events[a][group];
                let index: HashMap<&EventKey, usize> = a_events
                    .iter()
                    .enumerate()
                    .map(|(i, e)| (&e.key, i))
                    .collect();
                for &b in &members[n + 1..] {
                    self.summary.pairs_compared += 1;
                    let mut last: Option<(usize, &EventKey)> = None;
                    for ev in &self.events[b][group] {
                        let Some(&ia) = index.get(&ev.key) else {
                            continue;
                        };
                        if let Some((prev_ia, prev_key)) = last
                            && ia < prev_ia
                        {
                            self.violations.push(Violation::OrderDisagrees {
                                group: group.to_owned(),
                                a: self.run.clients[a].client.clone(),
                                a_first: ev.key.clone(),
                                a_then: prev_key.clone(),
                                b: self.run.clients[b].client.clone(),
                            });
                            break;
                        }
                        last = Some((ia, &ev.key));
                    }
                }
            }
        }
    }

    /// Was `client` a member of `group` throughout the open stretch of the
    /// order after `lo` and before `hi` (`None`: to the end)? The membership
    /// in force just after `lo` is that of the last view (by gid) ordered
    /// before it, as any client observed it.
    fn member_throughout(&self, group: &str, client: &str, lo: Pos, hi: Option<Pos>) -> bool {
        let Some(views) = self.views.get(group) else {
            return false;
        };
        let mut in_force: Option<&ViewObs<'a>> = None;
        for view in views.values() {
            if view.pos < lo {
                in_force = Some(view);
            } else if hi.is_none_or(|hi| view.pos < hi) && !lists(view.members, client) {
                return false;
            }
        }
        in_force.is_some_and(|v| lists(v.members, client))
    }

    /// 3: every acknowledged message reaches every survivor that was a member
    /// of its group when it was ordered.
    fn reliable_delivery(&mut self) {
        let survivors: Vec<usize> = (0..self.run.clients.len())
            .filter(|c| self.run.clients[*c].survived)
            .collect();
        for p in &self.run.publishers {
            let ids: Vec<MsgId> = p
                .sent
                .iter()
                .map(|c| MsgId::new(p.tag.clone(), *c))
                .collect();
            let observed: Vec<Option<Pos>> = ids
                .iter()
                .map(|id| self.msgs.get(id).map(|o| o.pos))
                .collect();
            let acked = usize::try_from(p.acked)
                .unwrap_or(usize::MAX)
                .min(ids.len());
            for k in 0..acked {
                let (lo, hi) = match observed[k] {
                    Some(pos) => (Some(pos), Some(pos)),
                    None => {
                        let before = observed[..k].iter().flatten().max().copied();
                        let lo = before.max(p.not_before);
                        let hi = observed[k + 1..].iter().flatten().min().copied();
                        (lo, hi)
                    }
                };
                let Some(lo) = lo else {
                    self.summary.unbounded_acked += 1;
                    continue;
                };
                for &s in &survivors {
                    let client = &self.run.clients[s].client;
                    if !self.member_throughout(&p.group, client, lo, hi) {
                        continue;
                    }
                    self.summary.required_deliveries += 1;
                    if !self.delivered[s].contains(&ids[k]) {
                        self.violations.push(Violation::Missing {
                            client: client.clone(),
                            group: p.group.clone(),
                            id: ids[k].clone(),
                            position: observed[k],
                        });
                    }
                }
            }
        }
    }

    /// 3, for views: a survivor listed in a view delivers that view.
    fn views_delivered(&mut self) {
        for (group, views) in &self.views {
            for (gid, view) in views {
                for member in view.members {
                    let Some(&c) = self.by_name.get(member.as_str()) else {
                        continue;
                    };
                    if !self.run.clients[c].survived {
                        continue;
                    }
                    let has = self.events[c]
                        .get(group)
                        .is_some_and(|evs| evs.iter().any(|e| e.key == EventKey::View(*gid)));
                    if !has {
                        self.violations.push(Violation::ViewMissing {
                            client: member.clone(),
                            group: (*group).to_owned(),
                            gid: *gid,
                        });
                    }
                }
            }
        }
    }

    /// 6: two survivors that deliver the same SERVER_LOST view delivered the
    /// same messages of the group since their previous common view.
    fn virtual_synchrony(&mut self) {
        let survivors: Vec<usize> = (0..self.run.clients.len())
            .filter(|c| self.run.clients[*c].survived)
            .collect();
        let view_index = |evs: &[Ev<'a>]| -> BTreeMap<u32, usize> {
            evs.iter()
                .enumerate()
                .filter_map(|(i, e)| match e.key {
                    EventKey::View(gid) => Some((gid, i)),
                    EventKey::Message(_) => None,
                })
                .collect()
        };
        fn between<'r>(evs: &[Ev<'r>], from: usize, to: usize) -> BTreeSet<&'r MsgId> {
            evs[from + 1..to]
                .iter()
                .filter_map(|e| match e.rec {
                    Record::Delivery { id, .. } => Some(id),
                    Record::View { .. } => None,
                })
                .collect()
        }
        for (n, &a) in survivors.iter().enumerate() {
            for &b in &survivors[n + 1..] {
                for (group, a_events) in &self.events[a] {
                    let Some(b_events) = self.events[b].get(group) else {
                        continue;
                    };
                    let a_views = view_index(a_events);
                    let b_views = view_index(b_events);
                    for (&gid, &ia) in &a_views {
                        let lost = matches!(
                            a_events[ia].rec,
                            Record::View {
                                change: ViewChange::ServerLost,
                                ..
                            }
                        );
                        let Some(&ib) = b_views.get(&gid) else {
                            continue;
                        };
                        if !lost {
                            continue;
                        }
                        // The latest view before it in both logs (by log
                        // order, which a broken log may not share with gids).
                        let common =
                            a_events[..ia]
                                .iter()
                                .enumerate()
                                .rev()
                                .find_map(|(ia0, e)| {
                                    let EventKey::View(g) = e.key else {
                                        return None;
                                    };
                                    b_views
                                        .get(&g)
                                        .filter(|ib0| **ib0 < ib)
                                        .map(|ib0| (g, ia0, *ib0))
                                });
                        let Some((since_gid, ia0, ib0)) = common else {
                            continue;
                        };
                        let sa = between(a_events, ia0, ia);
                        let sb = between(b_events, ib0, ib);
                        if sa != sb {
                            self.violations.push(Violation::VirtualSynchrony {
                                group: (*group).to_owned(),
                                gid,
                                since_gid,
                                a: self.run.clients[a].client.clone(),
                                b: self.run.clients[b].client.clone(),
                                only_a: sa.difference(&sb).map(|id| (*id).clone()).collect(),
                                only_b: sb.difference(&sa).map(|id| (*id).clone()).collect(),
                            });
                        }
                    }
                }
            }
        }
    }

    /// 7: for each lost server, each survivor that shared a group with its
    /// members delivers one SERVER_LOST view per loss that drops them all.
    ///
    /// Works on the group's view history as all clients observed it (so a
    /// leave only others saw still counts). A stretch during which the
    /// survivor and members on the server were together in the group
    /// ("episode") needs a loss view unless it ended by their LEAVE or the
    /// survivor's own departure; each loss ends at most one episode.
    fn membership_follows_servers(&mut self) {
        let mut losses: BTreeMap<&'a str, usize> = BTreeMap::new();
        for s in &self.run.lost_servers {
            *losses.entry(s).or_default() += 1;
        }
        let mut partial_reported: BTreeSet<(&'a str, u32)> = BTreeSet::new();
        for (&server, &times) in &losses {
            let on_server = |members: &'a [String]| -> Vec<&'a str> {
                members
                    .iter()
                    .map(String::as_str)
                    .filter(|m| server_of(m) == Some(server))
                    .collect()
            };
            for (c, log) in self.run.clients.iter().enumerate() {
                // A survivor on a "lost" server lived on its side of it.
                if !log.survived || log.server == server {
                    continue;
                }
                for (&group, views) in &self.views {
                    let delivered: HashSet<u32> = self.events[c]
                        .get(group)
                        .map(|evs| {
                            evs.iter()
                                .filter_map(|e| match e.key {
                                    EventKey::View(gid) => Some(gid),
                                    EventKey::Message(_) => None,
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    let mut prev: Option<Vec<&'a str>> = None;
                    let (mut episodes, mut ended_freely) = (0usize, 0usize);
                    let mut got = Vec::new();
                    for (&gid, view) in views {
                        let before = prev.take().unwrap_or_default();
                        if !lists(view.members, &log.client) {
                            if !before.is_empty() {
                                ended_freely += 1;
                            }
                            continue;
                        }
                        let now = on_server(view.members);
                        if before.is_empty() && !now.is_empty() {
                            episodes += 1;
                        }
                        if !before.is_empty() {
                            match view.change {
                                ViewChange::Leave if now.is_empty() => ended_freely += 1,
                                ViewChange::ServerLost
                                    if now.is_empty() && delivered.contains(&gid) =>
                                {
                                    got.push(gid);
                                }
                                // Not delivered: counted as missing below.
                                ViewChange::ServerLost if now.is_empty() => {}
                                ViewChange::ServerLost
                                    if before.iter().any(|m| !now.contains(m))
                                        && partial_reported.insert((group, gid)) =>
                                {
                                    self.violations.push(Violation::ServerLostPartial {
                                        client: self.name(view.client),
                                        group: group.to_owned(),
                                        gid,
                                        server: server.to_owned(),
                                        kept: now.iter().map(|m| (*m).to_owned()).collect(),
                                    });
                                }
                                _ => {}
                            }
                        }
                        prev = Some(now);
                    }
                    if episodes == 0 {
                        continue;
                    }
                    let expected = times.min(episodes - ended_freely);
                    self.summary.server_lost_views += got.len();
                    if got.len() != expected {
                        self.violations.push(Violation::ServerLostViews {
                            client: log.client.clone(),
                            group: group.to_owned(),
                            server: server.to_owned(),
                            expected,
                            got,
                        });
                    }
                }
            }
        }
    }
}
