//! Property tests: runs recorded from a simulated sequencer pass the checker;
//! the same runs with one random fault injected fail it.

use msgc_check::{
    ClientLog, Invariant, MsgId, PublisherLog, Record, Run, Violation, check, report,
};
use proptest::prelude::*;
use proptest::sample::Index;
use proto::msgc::v1::ViewChange;

const SERVERS: usize = 3;
const GROUPS: usize = 2;
const PUBLISHERS_PER_GROUP: usize = 2;

/// One step of the simulated bus.
#[derive(Clone, Debug)]
enum Op {
    Join { client: usize, group: usize },
    Leave { client: usize, group: usize },
    Publish { publisher: usize },
    LoseServer { server: usize },
}

fn op(clients: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..clients, 0..GROUPS).prop_map(|(client, group)| Op::Join { client, group }),
        1 => (0..clients, 0..GROUPS).prop_map(|(client, group)| Op::Leave { client, group }),
        8 => (0..GROUPS * PUBLISHERS_PER_GROUP).prop_map(|publisher| Op::Publish { publisher }),
        1 => (0..SERVERS).prop_map(|server| Op::LoseServer { server }),
    ]
}

fn scenario() -> impl Strategy<Value = (usize, Vec<Op>, Vec<u8>)> {
    (2usize..6).prop_flat_map(|clients| {
        (
            Just(clients),
            prop::collection::vec(op(clients), 10..60),
            // How many of each publisher's last messages stay unacknowledged.
            prop::collection::vec(0u8..3, GROUPS * PUBLISHERS_PER_GROUP),
        )
    })
}

fn name(client: usize) -> String {
    format!("#c{client}#s{}", client % SERVERS)
}

/// A sequencer with one total order: every event gets the next position and
/// is recorded by every current member of its group.
fn simulate(clients: usize, ops: &[Op], unacked: &[u8]) -> Run {
    let mut logs: Vec<ClientLog> = (0..clients)
        .map(|c| ClientLog::new(name(c), format!("s{}", c % SERVERS)))
        .collect();
    let mut publishers: Vec<PublisherLog> = (0..GROUPS * PUBLISHERS_PER_GROUP)
        .map(|p| PublisherLog::new(format!("p{p}"), format!("g{}", p / PUBLISHERS_PER_GROUP)))
        .collect();
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); GROUPS];
    let mut gids = [0u32; GROUPS];
    let mut lost_servers = Vec::new();
    // The last position handed out; a server loss starts a new server view.
    let mut now: (u64, u64) = (1, 0);
    fn next_pos(now: &mut (u64, u64), new_view: bool) -> (u64, u64) {
        *now = if new_view {
            (now.0 + 1, 1)
        } else {
            (now.0, now.1 + 1)
        };
        *now
    }
    // Records a view at every member, and at `also` (a leaver, which is told too).
    let emit_view = |logs: &mut Vec<ClientLog>,
                     members: &[usize],
                     also: Option<usize>,
                     (group, gid): (usize, u32),
                     change,
                     position| {
        let record = Record::View {
            group: format!("g{group}"),
            gid,
            change,
            members: members.iter().map(|m| name(*m)).collect(),
            position,
        };
        for m in members.iter().chain(&also) {
            logs[*m].records.push(record.clone());
        }
    };
    // Everyone starts in g0 so that there is always something to deliver.
    let prefix = (0..clients)
        .map(|client| Op::Join { client, group: 0 })
        .chain([Op::Publish { publisher: 0 }]);
    for op in prefix.chain(ops.iter().cloned()) {
        match op {
            Op::Join { client, group } => {
                if !logs[client].survived || members[group].contains(&client) {
                    continue;
                }
                members[group].push(client);
                gids[group] += 1;
                let pos = next_pos(&mut now, false);
                emit_view(
                    &mut logs,
                    &members[group],
                    None,
                    (group, gids[group]),
                    ViewChange::Join,
                    pos,
                );
            }
            Op::Leave { client, group } => {
                let Some(i) = members[group].iter().position(|m| *m == client) else {
                    continue;
                };
                members[group].remove(i);
                gids[group] += 1;
                let pos = next_pos(&mut now, false);
                // The leaver is told too (as in Spread).
                emit_view(
                    &mut logs,
                    &members[group],
                    Some(client),
                    (group, gids[group]),
                    ViewChange::Leave,
                    pos,
                );
            }
            Op::Publish { publisher } => {
                let p = &mut publishers[publisher];
                let counter = p.sent.last().map_or(1, |c| c + 1);
                p.sent.push(counter);
                if p.not_before.is_none() {
                    // What a harness knows: everything so far was ordered before.
                    p.not_before = Some(now);
                }
                let group = publisher / PUBLISHERS_PER_GROUP;
                let pos = next_pos(&mut now, false);
                let record = Record::Delivery {
                    group: format!("g{group}"),
                    sender_private: format!("#pub{publisher}#s0"),
                    id: MsgId::new(p.tag.clone(), counter),
                    position: pos,
                };
                for m in &members[group] {
                    logs[*m].records.push(record.clone());
                }
            }
            Op::LoseServer { server } => {
                let server_name = format!("s{server}");
                if lost_servers.contains(&server_name) {
                    continue;
                }
                lost_servers.push(server_name);
                for log in logs.iter_mut().skip(server).step_by(SERVERS) {
                    log.survived = false;
                }
                let mut first = true;
                for group in 0..GROUPS {
                    let before = members[group].len();
                    members[group].retain(|m| m % SERVERS != server);
                    if members[group].len() == before {
                        continue;
                    }
                    gids[group] += 1;
                    let pos = next_pos(&mut now, first);
                    first = false;
                    emit_view(
                        &mut logs,
                        &members[group],
                        None,
                        (group, gids[group]),
                        ViewChange::ServerLost,
                        pos,
                    );
                }
            }
        }
    }
    for (p, unacked) in publishers.iter_mut().zip(unacked) {
        p.acked = (p.sent.len() as u64).saturating_sub(u64::from(*unacked));
    }
    Run {
        clients: logs,
        publishers,
        lost_servers,
    }
}

/// Injects one fault; returns the invariants that must then be reported.
fn mutate(run: &mut Run, kind: usize, a: Index, b: Index) -> (&'static str, Vec<Invariant>) {
    // (client, record) of every delivery.
    let deliveries: Vec<(usize, usize)> = run
        .clients
        .iter()
        .enumerate()
        .flat_map(|(c, log)| {
            log.records
                .iter()
                .enumerate()
                .filter(|(_, r)| matches!(r, Record::Delivery { .. }))
                .map(move |(i, _)| (c, i))
        })
        .collect();
    match kind {
        0 => {
            // Swap two events of one group in one client.
            let pairs: Vec<(usize, usize, usize)> = run
                .clients
                .iter()
                .enumerate()
                .flat_map(|(c, log)| {
                    let recs = &log.records;
                    (0..recs.len()).flat_map(move |i| {
                        (i + 1..recs.len())
                            .filter(move |j| recs[i].group() == recs[*j].group())
                            .map(move |j| (c, i, j))
                    })
                })
                .collect();
            if !pairs.is_empty() {
                let (c, i, j) = *a.get(&pairs);
                run.clients[c].records.swap(i, j);
                return ("swap", vec![Invariant::Positions]);
            }
        }
        1 => {
            // Drop an acknowledged message from a survivor. (Only messages
            // someone else delivered too: a message nobody delivered has no
            // known position, and the sequencer may have ordered it before the
            // survivor joined.)
            let acked: Vec<MsgId> = run
                .publishers
                .iter()
                .flat_map(PublisherLog::acked_ids)
                .collect();
            let id_of = |(c, i): (usize, usize)| match &run.clients[c].records[i] {
                Record::Delivery { id, .. } => Some(id.clone()),
                Record::View { .. } => None,
            };
            let candidates: Vec<(usize, usize)> = deliveries
                .iter()
                .copied()
                .filter(|&(c, i)| {
                    let id = id_of((c, i));
                    run.clients[c].survived
                        && id.as_ref().is_some_and(|id| acked.contains(id))
                        && deliveries
                            .iter()
                            .any(|&(c2, i2)| c2 != c && id_of((c2, i2)) == id)
                })
                .collect();
            if !candidates.is_empty() {
                let (c, i) = *a.get(&candidates);
                run.clients[c].records.remove(i);
                return ("drop", vec![Invariant::ReliableDelivery]);
            }
        }
        2 => {
            // Renumber a view to its predecessor's gid in one client.
            let pairs: Vec<(usize, usize, u32)> = run
                .clients
                .iter()
                .enumerate()
                .flat_map(|(c, log)| {
                    let recs = &log.records;
                    recs.iter().enumerate().filter_map(move |(j, r)| {
                        let Record::View { group, .. } = r else {
                            return None;
                        };
                        recs[..j].iter().rev().find_map(|p| match p {
                            Record::View { group: g, gid, .. } if g == group => Some((c, j, *gid)),
                            _ => None,
                        })
                    })
                })
                .collect();
            if !pairs.is_empty() {
                let (c, j, prev) = *a.get(&pairs);
                if let Record::View { gid, .. } = &mut run.clients[c].records[j] {
                    *gid = prev;
                }
                return ("gid", vec![Invariant::GidOrder]);
            }
        }
        _ => {}
    }
    // Duplicate a delivery (there always is one).
    let (c, i) = *a.get(&deliveries);
    let copy = run.clients[c].records[i].clone();
    let at = i + 1 + b.index(run.clients[c].records.len() - i);
    run.clients[c].records.insert(at, copy);
    ("duplicate", vec![Invariant::NoDuplication])
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

proptest! {
    // 64 cases keep the suite fast; PROPTEST_CASES=5000 for a deeper look.
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn simulated_runs_pass((clients, ops, unacked) in scenario()) {
        let run = simulate(clients, &ops, &unacked);
        let summary = check(&run).map_err(|v| TestCaseError::fail(report(&v, 20)))?;
        prop_assert!(summary.deliveries > 0);
        prop_assert_eq!(summary.clients, clients);
    }

    #[test]
    fn mutated_runs_fail(
        (clients, ops, unacked) in scenario(),
        kind in 0usize..4,
        a in any::<Index>(),
        b in any::<Index>(),
    ) {
        let mut run = simulate(clients, &ops, &unacked);
        let (what, expected) = mutate(&mut run, kind, a, b);
        match check(&run) {
            Ok(summary) => prop_assert!(false, "{} went unnoticed: {:?}", what, summary),
            Err(found) => {
                for invariant in expected {
                    prop_assert!(
                        found.iter().any(|v: &Violation| v.invariant() == invariant),
                        "{} not reported as {}: {}", what, invariant, report(&found, 20)
                    );
                }
            }
        }
    }
}

fn arbitrary_record() -> impl Strategy<Value = Record> {
    let group = prop_oneof![Just("g0".to_owned()), Just("g1".to_owned())];
    let pos = (0u64..3, 0u64..6);
    prop_oneof![
        (group.clone(), 0usize..3, 0usize..3, 0u64..4, pos.clone()).prop_map(
            |(group, s, p, counter, position)| {
                Record::Delivery {
                    group,
                    sender_private: name(s),
                    id: MsgId::new(format!("p{p}"), counter),
                    position,
                }
            }
        ),
        (
            group,
            0u32..5,
            0i32..6,
            prop::collection::vec(0usize..4, 0..4),
            pos
        )
            .prop_map(|(group, gid, change, members, position)| Record::View {
                group,
                gid,
                change: ViewChange::try_from(change).unwrap_or_default(),
                members: members.into_iter().map(name).collect(),
                position,
            }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// Garbage in: the checker reports, it never panics.
    #[test]
    fn arbitrary_logs_never_panic(
        logs in prop::collection::vec((prop::collection::vec(arbitrary_record(), 0..20), any::<bool>()), 0..4),
        sent in prop::collection::vec((0usize..3, prop::collection::vec(0u64..4, 0..4), 0u64..5), 0..4),
        lost in prop::collection::vec(0usize..3, 0..3),
    ) {
        let run = Run {
            clients: logs
                .into_iter()
                .enumerate()
                .map(|(c, (records, survived))| ClientLog {
                    client: name(c),
                    server: format!("s{}", c % SERVERS),
                    records,
                    survived,
                })
                .collect(),
            publishers: sent
                .into_iter()
                .map(|(p, sent, acked)| PublisherLog {
                    tag: format!("p{p}"),
                    group: format!("g{}", p % GROUPS),
                    sent,
                    acked,
                    not_before: Some((0, 1)),
                })
                .collect(),
            lost_servers: lost.into_iter().map(|s| format!("s{s}")).collect(),
        };
        let _ = check(&run);
    }
}
