//! The core-level invariant checker: judges what every server incarnation
//! and session delivered (see the crate docs for the list).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use msgc_core::{ChangeKind, MemberKey, Position, ServerId, ViewId};

use crate::config::MS;
use crate::record::{History, IncLog, Rec};

/// Which promise a violation breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Invariant {
    /// The core panicked.
    Panic,
    /// A delivered op was never submitted (or not as delivered).
    Created,
    /// A session delivered an op twice.
    Duplicated,
    /// A session delivered a publisher's ops out of order.
    Fifo,
    /// Two servers delivered common ops in different orders.
    AgreedOrder,
    /// Servers moving together from a view delivered different sets.
    VirtualSynchrony,
    /// An acknowledged publish is missing somewhere.
    Reliable,
    /// Gids of a group went backwards for a session.
    GidOrder,
    /// Positions went backwards, or an event is outside its view.
    Position,
    /// Group views differ between servers or sessions that should agree.
    GroupViews,
    /// Guarantee 7: SERVER_LOST missing, repeated or wrong.
    ServerLost,
    /// Two servers delivered one op in different server views (EVS: a
    /// message is delivered in one configuration by all that deliver it).
    OneView,
    /// An ack for the wrong publish, or too many.
    Ack,
    /// More permits released than taken.
    Permits,
    /// No single view, or probes not delivered, in time.
    Liveness,
}

/// One broken promise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Which.
    pub invariant: Invariant,
    /// When it was seen (virtual ns), if while running.
    pub at: Option<u64>,
    /// The servers involved.
    pub servers: Vec<String>,
    /// What happened.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.invariant)?;
        if let Some(at) = self.at {
            write!(f, " at {:.3}ms", at as f64 / MS as f64)?;
        }
        write!(f, " [{}]: {}", self.servers.join(","), self.detail)
    }
}

/// A server-level event: what a watcher saw, comparable across servers.
#[derive(Clone, PartialEq, Eq)]
enum Item {
    Msg(usize, Position),
    View(String, u32, ChangeKind, Vec<MemberKey>, Position),
}

/// The sequence number of an item's position.
fn item_seq(item: &Item) -> u64 {
    match item {
        Item::Msg(_, p) | Item::View(.., p) => p.seq,
    }
}

impl fmt::Debug for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Item::Msg(m, p) => write!(f, "msg#{m}@{}.{}", p.epoch, p.seq),
            Item::View(g, gid, change, ms, p) => {
                write!(
                    f,
                    "{g} gid {gid} {change:?} {} @{}.{}",
                    keys(ms),
                    p.epoch,
                    p.seq
                )
            }
        }
    }
}

fn item(rec: &Rec) -> Item {
    match rec {
        Rec::Msg { msg, position, .. } => Item::Msg(*msg, *position),
        Rec::View { gv, .. } => Item::View(
            gv.group.clone(),
            gv.gid,
            gv.change,
            gv.members.iter().map(|m| m.key.clone()).collect(),
            gv.position,
        ),
    }
}

/// Per watched incarnation, per view index: its regular events and the
/// announcements of the install that ended it.
#[derive(Default)]
struct Segments {
    regular: Vec<Vec<Item>>,
    transition: Vec<Vec<Item>>,
    /// The watcher's group table (gid, members) when each view started.
    start: Vec<BTreeMap<String, (u32, Vec<MemberKey>)>>,
}

fn keys(ms: &[MemberKey]) -> String {
    let v: Vec<String> = ms
        .iter()
        .map(|k| format!("{:?}/{}", k.server, k.session.0))
        .collect();
    format!("[{}]", v.join(" "))
}

struct Checker<'h> {
    h: &'h History,
    out: Vec<Violation>,
    segs: Vec<Option<Segments>>,
    /// When the probes went out (liveness), if they did.
    probes_at: Option<u64>,
}

fn id_name(id: &ServerId) -> String {
    format!("{id:?}")
}

/// Checks every invariant over a recorded run; `probes_at` is when the
/// liveness probes were sent.
pub fn check(h: &History, probes_at: Option<u64>) -> Vec<Violation> {
    let mut c = Checker {
        h,
        out: Vec::new(),
        segs: Vec::new(),
        probes_at,
    };
    c.per_session();
    c.sessions_match_watchers();
    c.build_segments();
    c.agreed_order();
    c.one_view();
    c.same_views_same_events();
    c.reliable_delivery();
    c.server_lost();
    c.out
}

impl Checker<'_> {
    fn push(&mut self, invariant: Invariant, servers: Vec<String>, detail: String) {
        self.out.push(Violation {
            invariant,
            at: None,
            servers,
            detail,
        });
    }

    fn inc_name(&self, inc: usize) -> String {
        id_name(&self.h.incs[inc].id)
    }

    /// Where incarnation `inc` delivered message `m`: view and position.
    fn where_(&self, inc: usize, m: usize) -> String {
        let log = &self.h.incs[inc];
        let Some(w) = log.watcher else {
            return "?".into();
        };
        self.h.sessions[w]
            .events
            .iter()
            .find_map(|e| match e {
                Rec::Msg {
                    msg,
                    position,
                    view,
                    at,
                } if *msg == m => Some(format!(
                    "in {:?} at {}.{} ({:.1}ms)",
                    log.views[*view].1.id,
                    position.epoch,
                    position.seq,
                    *at as f64 / MS as f64
                )),
                _ => None,
            })
            .unwrap_or_else(|| "-".into())
    }

    fn msg_name(&self, m: usize) -> String {
        let msg = &self.h.msgs[m];
        format!("s{}/{}", msg.session, msg.counter)
    }

    /// Duplicates, FIFO, gid order and positions, per session.
    fn per_session(&mut self) {
        let h = self.h;
        for (s, log) in h.sessions.iter().enumerate() {
            let mut seen = HashSet::new();
            let mut fifo: HashMap<usize, u64> = HashMap::new();
            let mut gids: HashMap<&str, u32> = HashMap::new();
            let mut last_pos: HashMap<(String, usize), Position> = HashMap::new();
            let who = || vec![id_name(&h.incs[log.inc].id)];
            for e in &log.events {
                let (group, pos, view) = match e {
                    Rec::Msg {
                        msg,
                        position,
                        view,
                        ..
                    } => {
                        let m = &h.msgs[*msg];
                        if !seen.insert(*msg) {
                            let d = format!(
                                "session s{s} ({}) delivered {} twice",
                                log.private_name,
                                self.msg_name(*msg)
                            );
                            self.push(Invariant::Duplicated, who(), d);
                        }
                        if let Some(prev) = fifo.insert(m.session, m.counter)
                            && prev >= m.counter
                        {
                            let d = format!(
                                "session s{s} ({}) delivered s{}/{} after s{}/{prev}",
                                log.private_name, m.session, m.counter, m.session
                            );
                            self.push(Invariant::Fifo, who(), d);
                        }
                        (crate::sim::group_name(m.group), *position, *view)
                    }
                    Rec::View { gv, view, .. } => {
                        if let Some(prev) = gids.insert(&gv.group, gv.gid)
                            && prev >= gv.gid
                        {
                            let d = format!(
                                "session s{s} ({}) got gid {} of {} after gid {prev}",
                                log.private_name, gv.gid, gv.group
                            );
                            self.push(Invariant::GidOrder, who(), d);
                        }
                        if e.is_transition() {
                            continue;
                        }
                        (gv.group.clone(), gv.position, *view)
                    }
                };
                if let Some(prev) = last_pos.insert((group.clone(), view), pos)
                    && prev >= pos
                {
                    let d = format!(
                        "session s{s} ({}) got {group} at {pos:?} after {prev:?}",
                        log.private_name
                    );
                    self.push(Invariant::Position, who(), d);
                }
            }
        }
    }

    /// Every session's events (once its server's watcher is in every
    /// group) are the watcher's, at the same places.
    fn sessions_match_watchers(&mut self) {
        let h = self.h;
        for (inc, log) in h.incs.iter().enumerate() {
            let (Some(w), Some(from)) = (log.watcher, log.watched_from) else {
                continue;
            };
            let mut msgs: HashMap<usize, (usize, Position)> = HashMap::new();
            let mut views: HashMap<(usize, &str, u32), Item> = HashMap::new();
            for e in &h.sessions[w].events {
                match e {
                    Rec::Msg {
                        msg,
                        position,
                        view,
                        ..
                    } => {
                        msgs.insert(*msg, (*view, *position));
                    }
                    Rec::View { gv, view, .. } => {
                        views.insert((*view, &gv.group, gv.gid), item(e));
                    }
                }
            }
            for (s, slog) in h.sessions.iter().enumerate() {
                if slog.inc != inc || s == w {
                    continue;
                }
                for e in slog.events.iter().filter(|e| e.view() >= from) {
                    let ok = match e {
                        Rec::Msg {
                            msg,
                            position,
                            view,
                            ..
                        } => msgs.get(msg) == Some(&(*view, *position)),
                        Rec::View { gv, view, .. } => {
                            views.get(&(*view, &gv.group, gv.gid)) == Some(&item(e))
                        }
                    };
                    if !ok {
                        let d = format!(
                            "session s{s} ({}) got {:?} in view #{}, which its server's watcher did not get so",
                            slog.private_name,
                            item(e),
                            e.view()
                        );
                        self.push(Invariant::GroupViews, vec![self.inc_name(inc)], d);
                    }
                }
            }
            self.remaining_members_told(inc, w);
        }
    }

    /// Every local session listed as remaining in an announcement gets it.
    fn remaining_members_told(&mut self, inc: usize, w: usize) {
        let h = self.h;
        let me = &h.incs[inc].id;
        for e in h.sessions[w].events.iter().filter(|e| e.is_transition()) {
            let Rec::View { gv, at, .. } = e else {
                continue;
            };
            for m in gv.members.iter().filter(|m| &m.key.server == me) {
                let Some(s) = h
                    .sessions
                    .iter()
                    .position(|l| l.inc == inc && l.id == m.key.session)
                else {
                    continue;
                };
                let open =
                    h.sessions[s].opened <= *at && h.sessions[s].closed.is_none_or(|c| c > *at);
                let got = h.sessions[s].events.iter().any(|x| matches!(x, Rec::View { gv: g, .. } if g.group == gv.group && g.gid == gv.gid && g.change == gv.change));
                if open && !got {
                    let d = format!(
                        "session s{s} ({}) remains in {} but missed its {:?} gid {}",
                        h.sessions[s].private_name, gv.group, gv.change, gv.gid
                    );
                    self.push(Invariant::ServerLost, vec![self.inc_name(inc)], d);
                }
            }
        }
    }

    fn build_segments(&mut self) {
        let h = self.h;
        for (inc, log) in h.incs.iter().enumerate() {
            let (Some(w), Some(_)) = (log.watcher, log.watched_from) else {
                self.segs.push(None);
                continue;
            };
            let n = log.views.len();
            let mut segs = Segments {
                regular: vec![Vec::new(); n],
                transition: vec![Vec::new(); n],
                start: Vec::with_capacity(n),
            };
            let mut table: BTreeMap<String, (u32, Vec<MemberKey>)> = BTreeMap::new();
            for e in &h.sessions[w].events {
                let v = e.view();
                while segs.start.len() <= v {
                    segs.start.push(table.clone());
                }
                if let Rec::View { gv, .. } = e {
                    let ms = gv.members.iter().map(|m| m.key.clone()).collect();
                    table.insert(gv.group.clone(), (gv.gid, ms));
                }
                if e.is_transition() {
                    segs.transition[v].push(item(e));
                } else {
                    if let Rec::Msg { position, .. } = e
                        && position.epoch != log.views[v].1.id.epoch
                    {
                        let d = format!(
                            "{} delivered {:?} at {position:?} while in view {:?}",
                            self.inc_name(inc),
                            item(e),
                            log.views[v].1.id
                        );
                        self.push(Invariant::Position, vec![self.inc_name(inc)], d);
                    }
                    segs.regular[v].push(item(e));
                }
            }
            while segs.start.len() < n {
                segs.start.push(table.clone());
            }
            self.segs.push(Some(segs));
        }
    }

    /// Agreed order between every two incarnations (over their watchers).
    fn agreed_order(&mut self) {
        let h = self.h;
        let orders: Vec<(usize, Vec<usize>)> = h
            .incs
            .iter()
            .enumerate()
            .filter_map(|(i, l)| {
                let w = l.watcher?;
                let o = h.sessions[w].events.iter().filter_map(|e| match e {
                    Rec::Msg { msg, .. } => Some(*msg),
                    _ => None,
                });
                Some((i, o.collect()))
            })
            .collect();
        let mut index = vec![u32::MAX; h.msgs.len()];
        for (a, (ia, oa)) in orders.iter().enumerate() {
            for (k, m) in oa.iter().enumerate() {
                index[*m] = k as u32;
            }
            for (ib, ob) in &orders[a + 1..] {
                let mut last: Option<(u32, usize)> = None;
                for m in ob {
                    let k = index[*m];
                    if k == u32::MAX {
                        continue;
                    }
                    if let Some((lk, lm)) = last
                        && k < lk
                    {
                        let d = format!(
                            "{} delivered {} {} before {} {}, {} the other way round ({} {})",
                            self.inc_name(*ib),
                            self.msg_name(lm),
                            self.where_(*ib, lm),
                            self.msg_name(*m),
                            self.where_(*ib, *m),
                            self.inc_name(*ia),
                            self.where_(*ia, lm),
                            self.where_(*ia, *m)
                        );
                        self.push(
                            Invariant::AgreedOrder,
                            vec![self.inc_name(*ia), self.inc_name(*ib)],
                            d,
                        );
                        break;
                    }
                    last = Some((k, *m));
                }
            }
            for m in oa {
                index[*m] = u32::MAX;
            }
        }
    }

    /// Servers in the same view deliver the same prefix of it; moving on
    /// to the same next view, exactly the same events and announcements.
    fn same_views_same_events(&mut self) {
        let h = self.h;
        let mut by_view: BTreeMap<&ViewId, Vec<(usize, usize)>> = BTreeMap::new();
        for (inc, log) in h.incs.iter().enumerate() {
            let Some(from) = log.watched_from else {
                continue;
            };
            for (i, (_, v)) in log.views.iter().enumerate().skip(from) {
                by_view.entry(&v.id).or_default().push((inc, i));
            }
        }
        for (view, incs) in by_view {
            for (k, &(a, ia)) in incs.iter().enumerate() {
                for &(b, ib) in &incs[k + 1..] {
                    self.compare(view, (a, ia), (b, ib));
                }
            }
        }
    }

    /// The origin-filter boundary an incarnation used leaving `view` (the
    /// lowest any install record gave it from there; everything, if it did
    /// not leave by an install).
    fn keep_below(&self, inc: usize, view: &ViewId) -> u64 {
        let id = &self.h.incs[inc].id;
        self.h
            .installs
            .values()
            .filter_map(|r| r.sources.get(id))
            .filter(|s| s.from == *view)
            .map(|s| s.keep_below)
            .min()
            .unwrap_or(u64::MAX)
    }

    /// True if the install record of `next` names the same source view for
    /// both incarnations (so they left their common view the same way).
    fn same_source(&self, a: &usize, b: &usize, next: &ViewId) -> bool {
        let Some(record) = self.h.installs.get(next) else {
            return true;
        };
        let (ia, ib) = (&self.h.incs[*a].id, &self.h.incs[*b].id);
        record.sources.get(ia).map(|s| &s.from) == record.sources.get(ib).map(|s| &s.from)
    }

    /// True if incarnation `inc` went from its view `i` straight into view
    /// `i + 1` (the install record names view `i` as its source).
    fn direct(&self, inc: usize, i: usize) -> bool {
        let log = &self.h.incs[inc];
        let (Some((_, v)), Some((_, next))) = (log.views.get(i), log.views.get(i + 1)) else {
            return false;
        };
        self.h
            .installs
            .get(&next.id)
            .and_then(|r| r.sources.get(&log.id))
            .is_some_and(|s| s.from == v.id)
    }

    /// Both started `view` with the same group table (gids and member order).
    fn compare_tables(&mut self, view: &ViewId, (a, ia): (usize, usize), (b, ib): (usize, usize)) {
        if let (Some(sa), Some(sb)) = (&self.segs[a], &self.segs[b])
            && let (Some(ta), Some(tb)) = (sa.start.get(ia), sb.start.get(ib))
            && ta != tb
        {
            let diff: Vec<String> = ta
                .iter()
                .filter(|(g, x)| tb.get(*g) != Some(*x))
                .take(3)
                .map(|(g, (gid, ms))| {
                    format!(
                        "{g}: gid {gid} {} vs {:?}",
                        keys(ms),
                        tb.get(g).map(|(gid, ms)| format!("gid {gid} {}", keys(ms)))
                    )
                })
                .collect();
            let d = format!(
                "{} and {} started {view:?} with different group tables: {}",
                self.inc_name(a),
                self.inc_name(b),
                diff.join("; ")
            );
            self.push(
                Invariant::GroupViews,
                vec![self.inc_name(a), self.inc_name(b)],
                d,
            );
        }
    }

    fn compare(&mut self, view: &ViewId, (a, ia): (usize, usize), (b, ib): (usize, usize)) {
        let h = self.h;
        self.compare_tables(view, (a, ia), (b, ib));
        let (Some(sa), Some(sb)) = (&self.segs[a], &self.segs[b]) else {
            return;
        };
        let next = |l: &IncLog, i: usize| l.views.get(i + 1).map(|(_, v)| v.id.clone());
        let (na, nb) = (next(&h.incs[a], ia), next(&h.incs[b], ib));
        let (ra, rb) = (&sa.regular[ia], &sb.regular[ib]);
        let who = vec![self.inc_name(a), self.inc_name(b)];
        if let Some(next) = &na
            && na == nb
        {
            // Through different unstarted views (different sides when
            // those views were installed), the cuts may differ (EVS).
            if !self.same_source(&a, &b, next) {
                return;
            }
            if ra != rb {
                let only = |x: &[Item], y: &[Item]| -> Vec<String> {
                    x.iter()
                        .filter(|i| !y.contains(i))
                        .take(4)
                        .map(|i| format!("{i:?}"))
                        .collect()
                };
                let d = format!(
                    "{} and {} both went {view:?} -> {:?} but delivered different events of {view:?}: only {}: {:?}; only {}: {:?} (lengths {} vs {})",
                    who[0],
                    who[1],
                    next,
                    who[0],
                    only(ra, rb),
                    who[1],
                    only(rb, ra),
                    ra.len(),
                    rb.len()
                );
                self.push(Invariant::VirtualSynchrony, who, d);
            } else if self.direct(a, ia)
                && self.direct(b, ib)
                && sa.transition[ia] != sb.transition[ib]
            {
                let d = format!(
                    "{} and {} both went {view:?} -> {:?} but were told different group changes: {:?} vs {:?}",
                    who[0], who[1], next, sa.transition[ia], sb.transition[ib]
                );
                self.push(Invariant::GroupViews, who, d);
            }
            return;
        }
        // Above the lower origin-filter boundary of the two cuts, each side
        // delivers only its own servers' ops (rule 14a): a prefix property
        // holds below it only (agreed order covers the rest).
        let keep = self.keep_below(a, view).min(self.keep_below(b, view));
        let below = |r: &[Item]| -> Vec<Item> {
            r.iter().filter(|i| item_seq(i) <= keep).cloned().collect()
        };
        let (ra, rb) = (&below(ra), &below(rb));
        let n = ra.len().min(rb.len());
        if let Some(k) = (0..n).find(|k| ra[*k] != rb[*k]) {
            let d = format!(
                "{} and {} diverge inside {view:?} at event #{k}: {:?} vs {:?}",
                who[0], who[1], ra[k], rb[k]
            );
            self.push(Invariant::VirtualSynchrony, who, d);
        }
    }

    /// A publish acked in view V that was stable in V (every member other
    /// than the coordinator reported holding it) reaches every member of V
    /// that started a later view (or ended the run live in V after the
    /// probes). One acked above that (an install delivering up to its
    /// side's cut) is held only to its side, by virtual synchrony.
    fn reliable_delivery(&mut self) {
        let h = self.h;
        let mut delivered: Vec<HashMap<usize, usize>> = vec![HashMap::new(); h.incs.len()];
        for (inc, log) in h.incs.iter().enumerate() {
            if let Some(w) = log.watcher {
                for e in &h.sessions[w].events {
                    if let Rec::Msg { msg, view, .. } = e {
                        delivered[inc].insert(*msg, *view);
                    }
                }
            }
        }
        for (m, msg) in h.msgs.iter().enumerate() {
            let Some((vo, pos, at)) = msg.acked else {
                continue;
            };
            let origin = h.sessions[msg.session].inc;
            let view = &h.incs[origin].views[vo].1;
            if pos.epoch != view.id.epoch {
                let d = format!(
                    "{} acked at {pos:?} in view {:?}",
                    self.msg_name(m),
                    view.id
                );
                self.push(Invariant::Position, vec![self.inc_name(origin)], d);
            }
            let stable = view.members[1..]
                .iter()
                .map(|m| {
                    h.progress
                        .get(&(view.id.clone(), m.clone()))
                        .copied()
                        .unwrap_or(0)
                })
                .min()
                .unwrap_or(u64::MAX);
            if pos.seq > stable || msg.acked_at_install {
                continue; // acked by an install at its side's cut: virtual synchrony covers it
            }
            for member in &view.members {
                let Some(s) = h.inc_of(member) else { continue };
                let log = &h.incs[s];
                let Some(is) = log.views.iter().position(|(_, v)| v.id == view.id) else {
                    continue;
                };
                let later = is + 1 < log.views.len();
                let final_view = log.final_ok && self.probes_at.is_some_and(|p| at < p);
                if !(later || final_view) || log.watched_from.is_none_or(|w| w > is) {
                    continue;
                }
                if delivered[s].get(&m) != Some(&is) {
                    let d = format!(
                        "{} acked by {} at {pos:?} in {:?}, but {} (a member that {}) did not deliver it in that view",
                        self.msg_name(m),
                        self.inc_name(origin),
                        view.id,
                        self.inc_name(s),
                        if later {
                            "started a later view"
                        } else {
                            "ended the run in it"
                        }
                    );
                    self.push(
                        Invariant::Reliable,
                        vec![self.inc_name(origin), self.inc_name(s)],
                        d,
                    );
                }
            }
        }
    }
}

impl Checker<'_> {
    /// Every op is delivered in one server view by everyone who delivers it.
    fn one_view(&mut self) {
        let h = self.h;
        let mut first: HashMap<usize, (usize, &ViewId, Position)> = HashMap::new();
        let mut reported = HashSet::new();
        for (inc, log) in h.incs.iter().enumerate() {
            let Some(w) = log.watcher else { continue };
            for e in &h.sessions[w].events {
                let Rec::Msg {
                    msg,
                    position,
                    view,
                    ..
                } = e
                else {
                    continue;
                };
                let id = &log.views[*view].1.id;
                let (i0, v0, p0) = *first.entry(*msg).or_insert((inc, id, *position));
                if v0 != id && reported.insert((i0, inc)) {
                    let d = format!(
                        "{} delivered {} in {v0:?} at {}.{}, {} in {id:?} at {}.{}",
                        self.inc_name(i0),
                        self.msg_name(*msg),
                        p0.epoch,
                        p0.seq,
                        self.inc_name(inc),
                        position.epoch,
                        position.seq
                    );
                    self.push(
                        Invariant::OneView,
                        vec![self.inc_name(i0), self.inc_name(inc)],
                        d,
                    );
                }
            }
        }
    }
}

impl Checker<'_> {
    /// Guarantee 7 over each watched transition `V -> X`: SERVER_LOST only
    /// removes and PARTITION_MERGE only adds members; afterwards no member
    /// lives on a server outside `X`; and when the install took this server
    /// straight from `V` to `X`, each group with members on a lost server
    /// gets exactly one SERVER_LOST (others none).
    fn server_lost(&mut self) {
        let h = self.h;
        for (inc, log) in h.incs.iter().enumerate() {
            let (Some(w), Some(from)) = (log.watcher, log.watched_from) else {
                continue;
            };
            let mut members: BTreeMap<&str, Vec<MemberKey>> = BTreeMap::new();
            let events = &h.sessions[w].events;
            let mut k = 0;
            for i in 0..log.views.len() {
                let mut lost_views: BTreeMap<&str, usize> = BTreeMap::new();
                let mut before = None;
                while k < events.len() && events[k].view() == i {
                    if let Rec::View { gv, .. } = &events[k] {
                        let keys: Vec<MemberKey> =
                            gv.members.iter().map(|m| m.key.clone()).collect();
                        if events[k].is_transition() {
                            before.get_or_insert_with(|| members.clone());
                            self.kind_fits(inc, gv, members.get(gv.group.as_str()), &keys);
                            if gv.change == ChangeKind::ServerLost {
                                *lost_views.entry(&gv.group).or_default() += 1;
                            }
                        }
                        members.insert(&gv.group, keys);
                    }
                    k += 1;
                }
                let Some((_, next)) = log.views.get(i + 1) else {
                    break;
                };
                if i < from {
                    continue;
                }
                self.no_ghosts(inc, next, &members);
                let view = &log.views[i].1;
                let direct = h
                    .installs
                    .get(&next.id)
                    .and_then(|r| r.sources.get(&log.id))
                    .is_some_and(|s| s.from == view.id);
                if direct {
                    let before = before.unwrap_or_else(|| members.clone());
                    self.exactly_one(inc, view, next, &before, &lost_views);
                }
            }
        }
    }

    fn kind_fits(
        &mut self,
        inc: usize,
        gv: &msgc_core::GroupView,
        prev: Option<&Vec<MemberKey>>,
        keys: &[MemberKey],
    ) {
        let prev: &[MemberKey] = prev.map_or(&[], |p| p.as_slice());
        let ok = match gv.change {
            ChangeKind::ServerLost => {
                keys.iter().all(|k| prev.contains(k)) && keys.len() < prev.len()
            }
            _ => prev.iter().all(|k| keys.contains(k)),
        };
        if !ok {
            let d = format!(
                "{} announced {:?} gid {} of {} with {:?} after {:?}",
                self.inc_name(inc),
                gv.change,
                gv.gid,
                gv.group,
                keys,
                prev
            );
            self.push(Invariant::ServerLost, vec![self.inc_name(inc)], d);
        }
    }

    fn no_ghosts(
        &mut self,
        inc: usize,
        next: &msgc_core::View,
        members: &BTreeMap<&str, Vec<MemberKey>>,
    ) {
        for (group, keys) in members {
            if let Some(ghost) = keys.iter().find(|k| !next.contains(&k.server)) {
                let d = format!(
                    "{} entered {:?} {:?} with {group} still listing {ghost:?}",
                    self.inc_name(inc),
                    next.id,
                    next.members
                );
                self.push(Invariant::ServerLost, vec![self.inc_name(inc)], d);
            }
        }
    }

    fn exactly_one(
        &mut self,
        inc: usize,
        view: &msgc_core::View,
        next: &msgc_core::View,
        before: &BTreeMap<&str, Vec<MemberKey>>,
        lost_views: &BTreeMap<&str, usize>,
    ) {
        let lost: Vec<&ServerId> = view.members.iter().filter(|m| !next.contains(m)).collect();
        // Servers that come into `next` from another side: their members
        // count from that side, so they may be dropped here too.
        let record = self.h.installs.get(&next.id);
        let switched: Vec<&ServerId> = view
            .members
            .iter()
            .filter(|m| next.contains(m))
            .filter(|m| {
                record
                    .and_then(|r| r.sources.get(*m))
                    .is_some_and(|s| s.from != view.id)
            })
            .collect();
        for (group, keys) in before {
            let had = keys.iter().any(|k| lost.contains(&&k.server));
            let may = keys.iter().any(|k| switched.contains(&&k.server));
            let got = lost_views.get(group).copied().unwrap_or(0);
            let ok = if had {
                got == 1
            } else {
                got == 0 || (may && got == 1)
            };
            if !ok {
                let d = format!(
                    "{} went {:?} -> {:?} (lost {:?}): {group} {} members there and got {got} SERVER_LOST views",
                    self.inc_name(inc),
                    view.id,
                    next.id,
                    lost,
                    if had { "had" } else { "had no" }
                );
                self.push(Invariant::ServerLost, vec![self.inc_name(inc)], d);
            }
        }
    }
}
