//! The proposer's computation of an install, as a pure function of the
//! members' flush states [rules 13-15]:
//!
//! 1. **Roll forward**: a member still in a view that a reported install
//!    record lists as its source is first taken through that record (its cut,
//!    then its table), repeatedly. So members that did and did not receive an
//!    install agree on it (Derecho's takeover reuses the predecessor's trim).
//! 2. **Sides**: members grouped by (rolled) view. A side's cut is the lowest
//!    `received` of its members: everyone holds it, nobody delivered past it.
//! 3. **Table**: each side's table at its cut, merged with each member taken
//!    from its own server's side; a group whose member list changes anywhere
//!    gets a gid above every gid any side used.

use std::collections::{BTreeMap, BTreeSet};

use crate::groups::{Group, GroupTable};
use crate::ids::{Seq, ServerId, ViewId};
use crate::msg::{FlushState, InstallRecord, Source, View};
use crate::op::{Member, Op};

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

/// What the proposer sends: per member, the records to roll through first,
/// and the new view's record (the same for everyone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The new view's install record.
    pub record: InstallRecord,
    /// Per member, records it must roll forward through first.
    pub roll: BTreeMap<ServerId, Vec<InstallRecord>>,
}

/// A member's state after rolling forward.
#[derive(Debug, Clone)]
struct Effective {
    view: ViewId,
    delivered: Seq,
    received: Seq,
    stable: Seq,
    table: GroupTable,
    membership: Vec<(Seq, Op)>,
    high_water: BTreeMap<ServerId, u64>,
    held: Vec<(ServerId, u64)>,
    roll: Vec<InstallRecord>,
}

/// Computes the install of `view` from every member's flush state.
pub fn plan(view: &View, states: &BTreeMap<ServerId, FlushState>) -> Result<Plan, PlanError> {
    let records: BTreeMap<ViewId, &InstallRecord> = states
        .values()
        .flat_map(|s| s.records.iter())
        .map(|r| (r.view.id.clone(), r))
        .collect();
    let mut members = BTreeMap::new();
    for m in &view.members {
        let state = states.get(m).ok_or_else(|| PlanError::Missing(m.clone()))?;
        members.insert(m.clone(), roll_forward(m, state, &records)?);
    }
    let mut sides: BTreeMap<ViewId, Vec<ServerId>> = BTreeMap::new();
    for (m, e) in &members {
        sides.entry(e.view.clone()).or_default().push(m.clone());
    }
    let mut sources = BTreeMap::new();
    let mut tables = BTreeMap::new();
    let mut high_water: BTreeMap<ServerId, u64> = BTreeMap::new();
    for (side, servers) in &sides {
        let trim = published_trim(side, &records);
        let (cut, keep_below, keep_from, table, marks) = side_cut(servers, &members, trim)?;
        for m in servers {
            let from = side.clone();
            let source = Source {
                from,
                cut,
                keep_below,
                keep_from: keep_from.clone(),
            };
            sources.insert(m.clone(), source);
        }
        tables.insert(side.clone(), table);
        for (origin, seq) in marks {
            let mark = high_water.entry(origin).or_insert(0);
            *mark = (*mark).max(seq);
        }
    }
    let proposer_side = members[view.coordinator()].view.clone();
    let table = merge_tables(&proposer_side, &sides, &tables);
    let record = InstallRecord {
        view: view.clone(),
        sources,
        table,
        high_water,
    };
    let roll = members.into_iter().map(|(m, e)| (m, e.roll)).collect();
    Ok(Plan { record, roll })
}

/// Takes a member through every reported record that lists its current view
/// as its source, highest first.
fn roll_forward(
    member: &ServerId,
    state: &FlushState,
    records: &BTreeMap<ViewId, &InstallRecord>,
) -> Result<Effective, PlanError> {
    let mut e = Effective {
        view: state.current.clone(),
        delivered: state.delivered,
        received: state.received,
        stable: state.stable,
        table: state.table.clone(),
        membership: state.membership.clone(),
        high_water: state.high_water.clone(),
        held: state.held.clone(),
        roll: Vec::new(),
    };
    // Each step moves to a higher view id, so this ends.
    while let Some(next) = records
        .values()
        .rev()
        .find(|r| r.view.id > e.view && r.sources.get(member).is_some_and(|s| s.from == e.view))
    {
        let cut = next.sources[member].cut;
        if cut > e.received || cut < e.delivered {
            return Err(out_of_range(member, &e, cut));
        }
        e = Effective {
            view: next.view.id.clone(),
            delivered: 0,
            received: 0,
            stable: 0,
            table: next.table.clone(),
            membership: Vec::new(),
            high_water: next.high_water.clone(),
            held: Vec::new(),
            roll: {
                let mut roll = std::mem::take(&mut e.roll);
                roll.push((*next).clone());
                roll
            },
        };
    }
    Ok(e)
}

fn out_of_range(member: &ServerId, e: &Effective, cut: Seq) -> PlanError {
    PlanError::CutOutOfRange {
        member: member.clone(),
        view: e.view.clone(),
        cut,
        delivered: e.delivered,
        received: e.received,
    }
}

/// The cut (and origin-filter boundary) an install record already gave
/// `side` (the highest record's): members still in that view reuse it where
/// they can, so everyone who leaves the view delivers the same prefix of it
/// (Derecho: a new leader reuses its predecessor's trim).
fn published_trim<'r>(
    side: &ViewId,
    records: &BTreeMap<ViewId, &'r InstallRecord>,
) -> Option<&'r Source> {
    records
        .values()
        .rev()
        .find_map(|r| r.sources.values().find(|s| s.from == *side))
}

/// Whether a side delivers the op at `seq` from `origin` at its cut: below
/// the highest stable point the side knows, every op (everyone holds it and
/// may have delivered it); above, only its own servers' ops, so an op in
/// doubt is delivered by its origin's side alone [rule 14a].
pub fn kept_at_cut(seq: Seq, origin: &ServerId, keep_below: Seq, side: &[ServerId]) -> bool {
    seq <= keep_below || side.contains(origin)
}

/// A side's cut (a published trim if every member holds it, else the lowest
/// `received`), its origin-filter boundary (the highest stable point it
/// knows), its group table at the cut, and its delivered marks per origin.
#[allow(clippy::type_complexity)]
fn side_cut(
    servers: &[ServerId],
    members: &BTreeMap<ServerId, Effective>,
    trim: Option<&Source>,
) -> Result<(Seq, Seq, Vec<ServerId>, GroupTable, BTreeMap<ServerId, u64>), PlanError> {
    let states: Vec<(&ServerId, &Effective)> = servers.iter().map(|m| (m, &members[m])).collect();
    let lowest = states.iter().map(|(_, e)| e.received).min().unwrap_or(0);
    let highest_delivered = states.iter().map(|(_, e)| e.delivered).max().unwrap_or(0);
    let highest_stable = states.iter().map(|(_, e)| e.stable).max().unwrap_or(0);
    let (cut, keep_below, side) = match trim {
        Some(t)
            if t.cut >= highest_delivered && t.cut <= lowest && t.keep_below >= highest_stable =>
        {
            (t.cut, t.keep_below, t.keep_from.clone())
        }
        _ => (lowest, highest_stable, servers.to_vec()),
    };
    if let Some((m, e)) = states.iter().find(|(_, e)| e.delivered > cut) {
        return Err(out_of_range(m, e, cut));
    }
    let Some((_, base)) = states.iter().max_by_key(|(_, e)| e.delivered) else {
        return Ok((
            cut,
            keep_below,
            side,
            GroupTable::default(),
            BTreeMap::new(),
        ));
    };
    let mut table = base.table.clone();
    for (seq, op) in &base.membership {
        if *seq > base.delivered && *seq <= cut && kept_at_cut(*seq, &op.origin, keep_below, &side)
        {
            table.apply(&op.kind);
        }
    }
    let mut marks = base.high_water.clone();
    let upto = usize::try_from(cut - base.delivered).unwrap_or(usize::MAX);
    for (i, (origin, origin_seq)) in base.held.iter().take(upto).enumerate() {
        let seq = base.delivered + 1 + i as Seq;
        if kept_at_cut(seq, origin, keep_below, &side) {
            let mark = marks.entry(origin.clone()).or_insert(0);
            *mark = (*mark).max(*origin_seq);
        }
    }
    Ok((cut, keep_below, side, table, marks))
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
