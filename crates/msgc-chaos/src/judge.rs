//! Judging one run: `msgc-check` over the logs, plus the run-level checks a
//! fault schedule with never-faulted servers allows.
//!
//! * [`msgc_check::check_partitioned`] over every session's log: no
//!   duplicates, no creation, FIFO per session, gid and position order,
//!   message agreement, agreed order between any two subscribers.
//! * [`msgc_check::check`] (every guarantee it knows) over the subscribers on
//!   never-faulted servers, which always share one component; publishers on
//!   faulted servers count as unacknowledged there.
//! * Subscribers on never-faulted servers deliver exactly the same list (from
//!   the first group view that lists all of them).
//! * Every publish acknowledged on a never-faulted server reaches every
//!   subscriber on a never-faulted server.
//! * No session on a never-faulted server ends.
//! * After the last fault all servers are in one view within the bound, and
//!   messages published after that from every server reach every subscriber.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use msgc_check::{ClientLog, MsgId, Record, Run, Violation, check, check_partitioned};

use crate::clients::{PubLog, SubLog};

/// What a run left to judge.
#[derive(Clone, Debug)]
pub struct Evidence {
    /// Every subscriber session's log.
    pub subs: Vec<SubLog>,
    /// Every publisher session's log.
    pub pubs: Vec<PubLog>,
    /// Indexes of the servers never faulted.
    pub never_faulted: Vec<usize>,
    /// How long the final re-formation took, or the state when the bound passed.
    pub one_view: Result<Duration, String>,
    /// The bound on it (10 × keepalive_interval).
    pub one_view_bound: Duration,
    /// Messages published after the last fault, one batch per server.
    pub final_ids: Vec<MsgId>,
    /// Private names of the subscribers live at the end, which must deliver them.
    pub final_subs: Vec<String>,
    /// Why the final phase could not run in full, if it could not.
    pub final_problems: Vec<String>,
}

impl Default for Evidence {
    fn default() -> Self {
        Self {
            subs: Vec::new(),
            pubs: Vec::new(),
            never_faulted: Vec::new(),
            one_view: Err("not measured".into()),
            one_view_bound: Duration::ZERO,
            final_ids: Vec::new(),
            final_subs: Vec::new(),
            final_problems: Vec::new(),
        }
    }
}

/// One thing a run got wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    /// `msgc-check` over every session (`never_faulted: false`) or over the
    /// never-faulted servers' subscribers (`true`).
    Check {
        /// Which scope found it.
        never_faulted: bool,
        /// What it found.
        violation: Violation,
    },
    /// Two subscribers on never-faulted servers delivered different lists.
    ListsDiffer {
        /// One subscriber.
        a: String,
        /// The other.
        b: String,
        /// First index (after the common start) where they differ.
        index: usize,
        /// `a`'s record there, if any.
        a_rec: Option<String>,
        /// `b`'s record there, if any.
        b_rec: Option<String>,
    },
    /// Acknowledged messages of a never-faulted server's publisher that a
    /// never-faulted server's subscriber never delivered.
    AckedMissing {
        /// The subscriber.
        subscriber: String,
        /// The publisher tag.
        publisher: String,
        /// How many it misses.
        missing: usize,
        /// The first one.
        example: MsgId,
    },
    /// A session on a never-faulted server ended.
    SessionEnded {
        /// The session's private name or publisher tag.
        session: String,
        /// Why, as the client saw it.
        why: String,
    },
    /// The servers were not in one view within the bound after the last fault.
    NotOneView {
        /// The bound.
        bound: Duration,
        /// Every server's view when it passed.
        state: String,
    },
    /// A subscriber live at the end misses messages published after the last fault.
    FinalMissing {
        /// The subscriber.
        subscriber: String,
        /// How many it misses.
        missing: usize,
        /// The first one.
        example: MsgId,
    },
    /// The final phase could not publish or wait as it should.
    FinalIncomplete {
        /// What went wrong.
        reason: String,
    },
    /// Compose mode: after one heal, the servers were not in one view of
    /// all of them (`nodes: false`), or some node did not list every node
    /// (`nodes: true`), within the bound.
    NotReformed {
        /// The heal, as done ("docker start msgc1", ...).
        heal: String,
        /// Whether it is the nodes' membership (else the servers' view).
        nodes: bool,
        /// The bound (10 × keepalive_interval from the heal).
        bound: Duration,
        /// What the servers or nodes said when it passed.
        state: String,
    },
    /// Compose mode: a fault that must change the servers' views did not
    /// (the run would test nothing).
    NoEffect {
        /// The fault.
        fault: String,
        /// What was expected and not seen.
        why: String,
    },
    /// A subscriber delivered payloads nobody of this run sent.
    Foreign {
        /// The subscriber.
        subscriber: String,
        /// How many.
        count: usize,
    },
}

impl Finding {
    /// A short name of its kind, for counting (msgc-check findings are named
    /// by the invariant they break).
    pub fn kind(&self) -> String {
        match self {
            Finding::Check {
                never_faulted,
                violation,
            } => format!(
                "{}{}",
                violation.invariant(),
                if *never_faulted {
                    " [never-faulted]"
                } else {
                    ""
                }
            ),
            Finding::ListsDiffer { .. } => "never-faulted lists differ".into(),
            Finding::AckedMissing { .. } => "never-faulted acked missing".into(),
            Finding::SessionEnded { .. } => "never-faulted session ended".into(),
            Finding::NotOneView { .. } => "no single view in bound".into(),
            Finding::FinalMissing { .. } => "post-heal message missing".into(),
            Finding::FinalIncomplete { .. } => "post-heal phase incomplete".into(),
            Finding::NotReformed { nodes: false, .. } => {
                "no single view in bound after a heal".into()
            }
            Finding::NotReformed { nodes: true, .. } => {
                "nodes not all listed in bound after a heal".into()
            }
            Finding::NoEffect { .. } => "fault without effect".into(),
            Finding::Foreign { .. } => "foreign payload".into(),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Check {
                never_faulted,
                violation,
            } => {
                let scope = if *never_faulted {
                    "never-faulted"
                } else {
                    "all"
                };
                write!(f, "[{scope}] {violation}")
            }
            Finding::ListsDiffer {
                a,
                b,
                index,
                a_rec,
                b_rec,
            } => write!(
                f,
                "never-faulted subscribers {a} and {b} differ at record {index} after their common start: {a_rec:?} vs {b_rec:?}"
            ),
            Finding::AckedMissing {
                subscriber,
                publisher,
                missing,
                example,
            } => write!(
                f,
                "{subscriber} misses {missing} acknowledged message(s) of never-faulted publisher {publisher}, first {example}"
            ),
            Finding::SessionEnded { session, why } => {
                write!(
                    f,
                    "session {session} on a never-faulted server ended: {why}"
                )
            }
            Finding::NotOneView { bound, state } => write!(
                f,
                "servers not in one view {}ms after the last heal: {state}",
                bound.as_millis()
            ),
            Finding::FinalMissing {
                subscriber,
                missing,
                example,
            } => write!(
                f,
                "{subscriber} misses {missing} message(s) published after the last fault, first {example}"
            ),
            Finding::FinalIncomplete { reason } => write!(f, "post-heal phase: {reason}"),
            Finding::NotReformed {
                heal,
                nodes,
                bound,
                state,
            } => write!(
                f,
                "{} within {} ms of `{heal}`: {state}",
                if *nodes {
                    "not every node lists every node"
                } else {
                    "servers not in one view"
                },
                bound.as_millis()
            ),
            Finding::NoEffect { fault, why } => write!(f, "{fault} had no effect: {why}"),
            Finding::Foreign { subscriber, count } => {
                write!(f, "{subscriber} delivered {count} foreign payload(s)")
            }
        }
    }
}

/// The outcome of judging a run.
#[derive(Clone, Debug, Default)]
pub struct Verdict {
    /// Everything it got wrong (empty: the run passed).
    pub findings: Vec<Finding>,
    /// Deliveries checked, over every subscriber session.
    pub messages: usize,
    /// (never-faulted subscriber, acknowledged never-faulted message) pairs demanded.
    pub required: usize,
}

/// Judges a run.
pub fn judge(ev: &Evidence) -> Verdict {
    let mut v = Verdict {
        messages: ev
            .subs
            .iter()
            .map(|s| {
                s.log
                    .records
                    .iter()
                    .filter(|r| matches!(r, Record::Delivery { .. }))
                    .count()
            })
            .sum(),
        ..Verdict::default()
    };
    let logs = |subs: &mut dyn Iterator<Item = &SubLog>| -> Vec<ClientLog> {
        subs.map(|s| ClientLog {
            survived: s.ended.is_none(),
            ..s.log.clone()
        })
        .collect()
    };
    let all = Run {
        clients: logs(&mut ev.subs.iter()),
        publishers: ev.pubs.iter().map(|p| p.log.clone()).collect(),
        lost_servers: Vec::new(),
    };
    if let Err(found) = check_partitioned(&all) {
        v.findings
            .extend(found.into_iter().map(|violation| Finding::Check {
                never_faulted: false,
                violation,
            }));
    }
    let never = |server: usize| ev.never_faulted.contains(&server);
    let primary = Run {
        clients: logs(&mut ev.subs.iter().filter(|s| never(s.server))),
        publishers: ev
            .pubs
            .iter()
            .map(|p| {
                let mut log = p.log.clone();
                if !never(p.server) {
                    log.acked = 0;
                }
                log
            })
            .collect(),
        lost_servers: Vec::new(),
    };
    if let Err(found) = check(&primary) {
        v.findings
            .extend(found.into_iter().map(|violation| Finding::Check {
                never_faulted: true,
                violation,
            }));
    }
    let never_subs: Vec<&SubLog> = ev.subs.iter().filter(|s| never(s.server)).collect();
    same_lists(&never_subs, &mut v.findings);
    acked_reach(ev, &never_subs, &mut v);
    sessions_lasted(ev, &mut v.findings);
    final_phase(ev, &mut v.findings);
    for s in &ev.subs {
        if s.foreign > 0 {
            v.findings.push(Finding::Foreign {
                subscriber: s.log.client.clone(),
                count: s.foreign,
            });
        }
    }
    v
}

/// The records of `log` from the first view listing every one of `names`
/// (the whole log if there is none).
fn from_common_start<'a>(log: &'a ClientLog, names: &[&str]) -> &'a [Record] {
    let start = log.records.iter().position(|r| {
        matches!(r, Record::View { members, .. }
            if names.iter().all(|n| members.iter().any(|m| m == n)))
    });
    &log.records[start.unwrap_or(0)..]
}

fn same_lists(subs: &[&SubLog], findings: &mut Vec<Finding>) {
    let names: Vec<&str> = subs.iter().map(|s| s.log.client.as_str()).collect();
    let Some((first, rest)) = subs.split_first() else {
        return;
    };
    let a = from_common_start(&first.log, &names);
    for other in rest {
        let b = from_common_start(&other.log, &names);
        let differs = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i));
        if let Some(index) = differs {
            findings.push(Finding::ListsDiffer {
                a: first.log.client.clone(),
                b: other.log.client.clone(),
                index,
                a_rec: a.get(index).map(|r| format!("{r:?}")),
                b_rec: b.get(index).map(|r| format!("{r:?}")),
            });
        }
    }
}

fn delivered(log: &ClientLog) -> HashSet<&MsgId> {
    log.records
        .iter()
        .filter_map(|r| match r {
            Record::Delivery { id, .. } => Some(id),
            Record::View { .. } => None,
        })
        .collect()
}

fn acked_reach(ev: &Evidence, subs: &[&SubLog], v: &mut Verdict) {
    for sub in subs {
        let got = delivered(&sub.log);
        for p in ev
            .pubs
            .iter()
            .filter(|p| ev.never_faulted.contains(&p.server))
        {
            let missing: Vec<MsgId> = p.log.acked_ids().filter(|id| !got.contains(id)).collect();
            v.required += p.log.acked as usize;
            if let Some(example) = missing.first() {
                v.findings.push(Finding::AckedMissing {
                    subscriber: sub.log.client.clone(),
                    publisher: p.log.tag.clone(),
                    missing: missing.len(),
                    example: example.clone(),
                });
            }
        }
    }
}

fn sessions_lasted(ev: &Evidence, findings: &mut Vec<Finding>) {
    let never = |server: usize| ev.never_faulted.contains(&server);
    for s in ev.subs.iter().filter(|s| never(s.server)) {
        if let Some(why) = &s.ended {
            findings.push(Finding::SessionEnded {
                session: s.log.client.clone(),
                why: why.clone(),
            });
        }
    }
    for p in ev.pubs.iter().filter(|p| never(p.server)) {
        if let Some(why) = &p.ended {
            findings.push(Finding::SessionEnded {
                session: p.log.tag.clone(),
                why: why.clone(),
            });
        }
    }
}

fn final_phase(ev: &Evidence, findings: &mut Vec<Finding>) {
    if let Err(state) = &ev.one_view {
        findings.push(Finding::NotOneView {
            bound: ev.one_view_bound,
            state: state.clone(),
        });
    }
    for reason in &ev.final_problems {
        findings.push(Finding::FinalIncomplete {
            reason: reason.clone(),
        });
    }
    for name in &ev.final_subs {
        let Some(sub) = ev.subs.iter().find(|s| &s.log.client == name) else {
            continue;
        };
        let got = delivered(&sub.log);
        let missing: Vec<&MsgId> = ev.final_ids.iter().filter(|id| !got.contains(id)).collect();
        if let Some(example) = missing.first() {
            findings.push(Finding::FinalMissing {
                subscriber: name.clone(),
                missing: missing.len(),
                example: (*example).clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use msgc_check::{Pos, PublisherLog};
    use proto::msgc::v1::ViewChange;

    use super::*;

    const A: &str = "#sub1-1#s1"; // faulted server s1
    const D: &str = "#sub4-1#s4"; // never faulted
    const E: &str = "#sub5-1#s5"; // never faulted

    fn view(gid: u32, members: &[&str], position: Pos) -> Record {
        Record::View {
            group: "chaos".into(),
            gid,
            change: ViewChange::Join,
            members: members.iter().map(|m| (*m).to_owned()).collect(),
            position,
        }
    }

    fn msg(tag: &str, counter: u64, position: Pos) -> Record {
        Record::Delivery {
            group: "chaos".into(),
            sender_private: format!("#{tag}#s1"),
            id: MsgId::new(tag, counter),
            position,
        }
    }

    fn sub(server: usize, name: &str, records: Vec<Record>) -> SubLog {
        SubLog {
            server,
            log: ClientLog {
                client: name.into(),
                server: format!("s{}", server + 1),
                records,
                survived: true,
            },
            ended: None,
            foreign: 0,
        }
    }

    fn publ(server: usize, tag: &str, n: u64, acked: u64) -> PubLog {
        let mut log = PublisherLog::new(tag, "chaos");
        log.sent = (1..=n).collect();
        log.acked = acked;
        PubLog {
            server,
            log,
            ended: None,
        }
    }

    /// s1 faulted (its subscriber saw only part), s4 and s5 never faulted.
    /// D joined first, so its list starts one view earlier.
    fn good() -> Evidence {
        let common = vec![
            view(2, &[D, E], (1, 2)),
            view(3, &[D, E, A], (1, 3)),
            msg("p4.1", 1, (1, 4)),
            msg("p1.1", 1, (1, 5)),
            msg("p4.1", 2, (1, 6)),
        ];
        let mut d = vec![view(1, &[D], (1, 1))];
        d.extend(common.clone());
        Evidence {
            subs: vec![
                sub(3, D, d),
                sub(4, E, common),
                sub(
                    0,
                    A,
                    vec![view(3, &[D, E, A], (1, 3)), msg("p4.1", 1, (1, 4))],
                ),
            ],
            pubs: vec![publ(3, "p4.1", 2, 2), publ(0, "p1.1", 1, 1)],
            never_faulted: vec![3, 4],
            one_view: Ok(Duration::from_millis(300)),
            one_view_bound: Duration::from_millis(2500),
            final_ids: vec![MsgId::new("p4.1", 2)],
            final_subs: vec![D.into(), E.into()],
            final_problems: vec![],
        }
    }

    fn kinds(ev: &Evidence) -> Vec<String> {
        judge(ev).findings.iter().map(Finding::kind).collect()
    }

    #[test]
    fn a_good_run_passes() {
        let v = judge(&good());
        assert_eq!(v.findings, vec![], "{:?}", v.findings);
        assert_eq!(v.messages, 3 + 3 + 1);
        assert_eq!(v.required, 4);
    }

    #[test]
    fn never_faulted_lists_must_be_equal() {
        let mut ev = good();
        ev.subs[1].log.records.push(msg("p1.1", 9, (1, 7)));
        ev.pubs[1].log.sent.push(9);
        let v = judge(&ev);
        assert!(
            v.findings
                .iter()
                .any(|f| matches!(f, Finding::ListsDiffer { index: 5, .. })),
            "{:?}",
            v.findings
        );
    }

    #[test]
    fn acked_on_never_faulted_must_reach_never_faulted() {
        let mut ev = good();
        ev.pubs[0] = publ(3, "p4.1", 3, 3);
        let k = kinds(&ev);
        assert!(
            k.contains(&"never-faulted acked missing".to_owned()),
            "{k:?}"
        );
        // msgc-check over the never-faulted subscribers finds it too.
        assert!(
            k.contains(&"reliable delivery (3) [never-faulted]".to_owned()),
            "{k:?}"
        );
    }

    #[test]
    fn acked_on_a_faulted_server_is_not_demanded() {
        let mut ev = good();
        ev.pubs[1] = publ(0, "p1.1", 2, 2);
        assert_eq!(judge(&ev).findings, vec![]);
    }

    #[test]
    fn duplicates_and_fifo_anywhere_are_found() {
        let mut ev = good();
        ev.subs[2].log.records.push(msg("p4.1", 1, (2, 1)));
        let k = kinds(&ev);
        assert!(k.contains(&"no duplication (5)".to_owned()), "{k:?}");
        let mut ev = good();
        ev.subs[2].log.records.push(msg("p4.1", 2, (1, 6)));
        ev.subs[2].log.records.swap(1, 2);
        let k = kinds(&ev);
        assert!(k.contains(&"sender FIFO (2)".to_owned()), "{k:?}");
    }

    #[test]
    fn agreed_order_between_a_faulted_and_a_never_faulted_subscriber() {
        let mut ev = good();
        ev.subs[2].log.records = vec![msg("p4.1", 2, (1, 6)), msg("p1.1", 1, (1, 5))];
        let k = kinds(&ev);
        assert!(k.contains(&"agreed order (1)".to_owned()), "{k:?}");
    }

    #[test]
    fn convergence_and_final_delivery() {
        let mut ev = good();
        ev.one_view = Err("s1: no answer".into());
        ev.final_subs.push(A.into());
        ev.final_problems.push("no live publisher on s1".into());
        let k = kinds(&ev);
        assert!(k.contains(&"no single view in bound".to_owned()), "{k:?}");
        assert!(k.contains(&"post-heal message missing".to_owned()), "{k:?}");
        assert!(
            k.contains(&"post-heal phase incomplete".to_owned()),
            "{k:?}"
        );
    }

    #[test]
    fn never_faulted_sessions_must_last() {
        let mut ev = good();
        ev.subs[0].ended = Some("cut".into());
        ev.pubs[1].ended = Some("killed".into()); // faulted: fine
        let found = judge(&ev).findings;
        let ended: Vec<&Finding> = found
            .iter()
            .filter(|f| matches!(f, Finding::SessionEnded { .. }))
            .collect();
        assert_eq!(ended.len(), 1, "{found:?}");
    }

    #[test]
    fn foreign_payloads_are_reported() {
        let mut ev = good();
        ev.subs[2].foreign = 2;
        assert_eq!(kinds(&ev), vec!["foreign payload".to_owned()]);
    }
}
