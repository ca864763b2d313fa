//! The proposer's computation of an install, as a pure function of the
//! members' flush states [rules 13-15]:
//!
//! 1. **Sides**: members grouped by the view they last started (an install
//!    held but never committed delivered nothing, so it changes nothing but
//!    the cut). A side's cut is the cut an install some member holds already
//!    gave it, if every member can take it (Derecho's takeover reuses its
//!    predecessor's trim), else the lowest `received` of its members:
//!    everyone holds it, nobody delivered past it.
//! 2. **Origin filter**: above the highest stable point the side knows, only
//!    its own servers' ops are kept, so an op in doubt is delivered where its
//!    origin goes and nowhere else [rules 14a, 14b].
//! 3. **Table**: each side's table at its cut, merged with each member taken
//!    from its own server's side; a group whose member list changes anywhere
//!    gets a gid above every gid any side used.

use std::collections::{BTreeMap, BTreeSet};

use crate::groups::{Group, GroupTable};
use crate::ids::{Seq, ServerId, ViewId};
use crate::msg::{FlushState, InstallRecord, Source, View};
use crate::op::Member;

/// Why states cannot be combined (a broken invariant: the proposal fails).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// A member of the proposal did not answer.
    #[error("no flush state from {0:?}")]
    Missing(ServerId),
    /// A cut outside what a member holds or past what it delivered.
    #[error("cut {cut} of {view:?} outside [{delivered}, {received}] of {member:?}")]
    CutOutOfRange {
        /// The member.
        member: ServerId,
        /// Its view.
        view: ViewId,
        /// The cut.
        cut: Seq,
        /// What it delivered.
        delivered: Seq,
        /// What it holds.
        received: Seq,
    },
}

/// Computes the install of `view` from every member's flush state.
pub fn plan(
    view: &View,
    states: &BTreeMap<ServerId, FlushState>,
) -> Result<InstallRecord, PlanError> {
    let held: BTreeMap<&ViewId, &InstallRecord> = states
        .values()
        .filter_map(|s| s.holds.as_ref())
        .map(|r| (&r.view.id, r))
        .collect();
    let mut sides: BTreeMap<ViewId, Vec<ServerId>> = BTreeMap::new();
    for m in &view.members {
        let state = states.get(m).ok_or_else(|| PlanError::Missing(m.clone()))?;
        sides
            .entry(state.current.clone())
            .or_default()
            .push(m.clone());
    }
    let mut sources = BTreeMap::new();
    let mut tables = BTreeMap::new();
    let mut high_water: BTreeMap<ServerId, u64> = BTreeMap::new();
    for (side, servers) in &sides {
        let trim = published_trim(side, &held);
        let cut = side_cut(servers, states, trim)?;
        for m in servers {
            let source = Source {
                from: side.clone(),
                cut: cut.cut,
                keep_below: cut.keep_below,
                keep_from: servers.clone(),
            };
            sources.insert(m.clone(), source);
        }
        tables.insert(side.clone(), cut.table);
        for (origin, seq) in cut.marks {
            let mark = high_water.entry(origin).or_insert(0);
            *mark = (*mark).max(seq);
        }
    }
    let proposer_side = &states[view.coordinator()].current;
    let table = merge_tables(proposer_side, &sides, &tables);
    Ok(InstallRecord {
        view: view.clone(),
        sources,
        table,
        high_water,
    })
}

fn out_of_range(member: &ServerId, state: &FlushState, cut: Seq) -> PlanError {
    PlanError::CutOutOfRange {
        member: member.clone(),
        view: state.current.clone(),
        cut,
        delivered: state.delivered,
        received: state.received,
    }
}

/// The highest cut (and its origin-filter boundary) any install a member
/// holds gave `side`: where that install committed, that cut was delivered,
/// so everyone leaving the view takes it (Derecho: a new leader reuses its
/// predecessor's trim), and a lower one would drop, and have its own side
/// resubmit, ops delivered there. Which origins a cut keeps above the
/// boundary is always the plan's own side [rule 14b].
fn published_trim<'r>(
    side: &ViewId,
    held: &BTreeMap<&ViewId, &'r InstallRecord>,
) -> Option<&'r Source> {
    held.values()
        .filter_map(|r| r.sources.values().find(|s| s.from == *side))
        .max_by_key(|s| (s.cut, s.keep_below))
}

/// Whether a side delivers the op at `seq` from `origin` at its cut: below
/// the highest stable point the side knows, every op (everyone holds it and
/// may have delivered it); above, only its own servers' ops, so an op in
/// doubt is delivered by its origin's side alone [rule 14a].
pub fn kept_at_cut(seq: Seq, origin: &ServerId, keep_below: Seq, side: &[ServerId]) -> bool {
    seq <= keep_below || side.contains(origin)
}

/// Ops one member sends another before a plan is made [rule 14c].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// A member of the side that holds them.
    pub holder: ServerId,
    /// A member of the side that lacks them.
    pub lagger: ServerId,
    /// The view they are of (the side's).
    pub view: ViewId,
    /// The lagger holds `1..=after`.
    pub after: Seq,
    /// Up to the cut the held install gave the view.
    pub upto: Seq,
}

/// What a side's members reported, for choosing its cut.
struct SideReport {
    lowest_received: Seq,
    highest_delivered: Seq,
    highest_stable: Seq,
}

impl SideReport {
    fn of(servers: &[ServerId], states: &BTreeMap<ServerId, FlushState>) -> Self {
        let of = |f: fn(&FlushState) -> Seq| servers.iter().map(move |m| f(&states[m]));
        SideReport {
            lowest_received: of(|s| s.received).min().unwrap_or(0),
            highest_delivered: of(|s| s.delivered).max().unwrap_or(0),
            highest_stable: of(|s| s.stable).max().unwrap_or(0),
        }
    }

    /// A published trim the side may reuse once every member holds ops up
    /// to it: nobody delivered past it.
    fn may_reuse(&self, t: &Source) -> bool {
        t.cut >= self.highest_delivered
    }
}

/// The transfers that let every side take the cut an install held by one
/// of its members already gave its view, where some members hold fewer ops
/// than that cut: each gets the rest from a member of its side that holds
/// them. Where that install committed elsewhere, its cut was delivered; a
/// side that took a lower one would drop, and resubmit, ops of its own
/// servers that were delivered there (one op, two views). [JG FLUSH and
/// Totem recovery: missing messages are retransmitted before the new view]
pub fn transfers(view: &View, states: &BTreeMap<ServerId, FlushState>) -> Vec<Transfer> {
    let held: BTreeMap<&ViewId, &InstallRecord> = states
        .values()
        .filter_map(|s| s.holds.as_ref())
        .map(|r| (&r.view.id, r))
        .collect();
    let mut sides: BTreeMap<&ViewId, Vec<ServerId>> = BTreeMap::new();
    for m in view.members.iter().filter(|m| states.contains_key(*m)) {
        sides.entry(&states[m].current).or_default().push(m.clone());
    }
    let mut out = Vec::new();
    for (side, servers) in sides {
        let Some(t) = published_trim(side, &held) else {
            continue;
        };
        let report = SideReport::of(&servers, states);
        if report.lowest_received >= t.cut || !report.may_reuse(t) {
            continue;
        }
        let Some(holder) = servers.iter().find(|m| states[*m].received >= t.cut) else {
            continue;
        };
        for lagger in servers.iter().filter(|m| states[*m].received < t.cut) {
            out.push(Transfer {
                holder: holder.clone(),
                lagger: lagger.clone(),
                view: side.clone(),
                after: states[lagger].received,
                upto: t.cut,
            });
        }
    }
    out
}

/// One side's cut of the view it leaves.
struct SideCut {
    /// Delivered up to here, the rest dropped.
    cut: Seq,
    /// The origin-filter boundary (the highest stable point it knows).
    keep_below: Seq,
    /// Its group table at the cut.
    table: GroupTable,
    /// Per origin, the highest origin seq it delivers by the cut.
    marks: BTreeMap<ServerId, u64>,
}

/// A side's cut: a published trim if every member holds it (and it keeps
/// whatever a member may have delivered), else the lowest `received`.
fn side_cut(
    servers: &[ServerId],
    states: &BTreeMap<ServerId, FlushState>,
    trim: Option<&Source>,
) -> Result<SideCut, PlanError> {
    let members: Vec<(&ServerId, &FlushState)> = servers.iter().map(|m| (m, &states[m])).collect();
    let report = SideReport::of(servers, states);
    let (cut, keep_below) = match trim {
        // Ops up to either stable point were held by every member of the
        // view, so keeping all of them is right whoever knew it.
        Some(t) if t.cut <= report.lowest_received && report.may_reuse(t) => {
            (t.cut, t.keep_below.max(report.highest_stable))
        }
        _ => (report.lowest_received, report.highest_stable),
    };
    if let Some((m, s)) = members.iter().find(|(_, s)| s.delivered > cut) {
        return Err(out_of_range(m, s, cut));
    }
    let Some((_, base)) = members.iter().max_by_key(|(_, s)| s.delivered) else {
        return Ok(SideCut {
            cut,
            keep_below,
            table: GroupTable::default(),
            marks: BTreeMap::new(),
        });
    };
    let mut table = base.table.clone();
    for (seq, op) in &base.membership {
        if *seq > base.delivered
            && *seq <= cut
            && kept_at_cut(*seq, &op.origin, keep_below, servers)
        {
            table.apply(&op.kind);
        }
    }
    let mut marks = base.high_water.clone();
    let upto = usize::try_from(cut - base.delivered).unwrap_or(usize::MAX);
    for (i, (origin, origin_seq)) in base.held.iter().take(upto).enumerate() {
        let seq = base.delivered + 1 + i as Seq;
        if kept_at_cut(seq, origin, keep_below, servers) {
            let mark = marks.entry(origin.clone()).or_insert(0);
            *mark = (*mark).max(*origin_seq);
        }
    }
    Ok(SideCut {
        cut,
        keep_below,
        table,
        marks,
    })
}

/// The new table: each group's members taken side by side (the proposer's
/// side first), each member only from the side its server is on.
fn merge_tables(
    proposer_side: &ViewId,
    sides: &BTreeMap<ViewId, Vec<ServerId>>,
    tables: &BTreeMap<ViewId, GroupTable>,
) -> GroupTable {
    let order: Vec<&ViewId> = std::iter::once(proposer_side)
        .chain(sides.keys().filter(|s| *s != proposer_side))
        .collect();
    let servers: BTreeMap<&ViewId, BTreeSet<&ServerId>> = sides
        .iter()
        .map(|(side, members)| (side, members.iter().collect()))
        .collect();
    let mut merged = GroupTable::default();
    for table in tables.values() {
        merged.raise_floor(table.gid_floor());
    }
    let names: BTreeSet<&String> = tables
        .values()
        .flat_map(|t| t.iter().map(|(g, _)| g))
        .collect();
    for name in names {
        let members: Vec<Member> = order
            .iter()
            .flat_map(|side| {
                let own = &servers[side];
                tables[*side]
                    .get(name)
                    .map(|g| g.members.as_slice())
                    .unwrap_or_default()
                    .iter()
                    .filter(|m| own.contains(&m.key.server))
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .collect();
        let keys: Vec<_> = members.iter().map(|m| &m.key).collect();
        fn side_keys<'a>(t: &'a GroupTable, name: &str) -> Vec<&'a crate::ids::MemberKey> {
            t.get(name)
                .map_or(Vec::new(), |g| g.members.iter().map(|m| &m.key).collect())
        }
        let differs = tables.values().any(|t| side_keys(t, name) != keys);
        let top = tables
            .values()
            .map(|t| {
                let gid = t.get(name).map_or(0, |g| g.gid);
                if differs { gid.max(t.gid_floor()) } else { gid }
            })
            .max()
            .unwrap_or(0);
        let gid = if differs { top.wrapping_add(2) } else { top };
        merged.set(name.clone(), Group { gid, members });
    }
    merged
}
