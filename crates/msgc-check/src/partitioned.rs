//! The checks that still hold when the run had partitions (extended virtual
//! synchrony: each side goes on, gids and even server view ids may repeat
//! across sides, and messages of one side are never replayed to the other).
//!
//! [`check_partitioned`] checks, over every client log:
//!
//! * **5** no creation (every delivered message was sent, to that group) and no
//!   duplication (no client delivers a message twice);
//! * **2** sender FIFO per client and (group, publisher tag);
//! * **gid order** and **positions** strictly increasing per client and group;
//! * **agreement** on messages: every client delivers a message at the same
//!   position, from the same sender;
//! * **1** agreed order between every pair of clients, over the events both
//!   delivered. A group view is identified by `(gid, position)` rather than
//!   gid alone, so views of two sides that reuse a gid at different positions
//!   are different events. Two that reuse both are taken as one event; that
//!   cannot fail a correct run, since every message is at one position for
//!   all clients (checked), so its order relative to such a view is the same
//!   everywhere.
//!
//! It does not check reliable delivery, virtual synchrony or membership
//! following servers, nor that two clients see one gid alike: those need
//! to know which clients shared a component. Run [`check`](crate::check) on
//! the clients of one component (say, the servers a test never cut off) for
//! those.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::check::Summary;
use crate::payload::MsgId;
use crate::record::{ClientLog, Pos, Record, Run};
use crate::violation::{EventKey, Violation};

/// An event of one group as the partition-aware order check compares them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Message(MsgId),
    View(u32, Pos),
}

impl Key {
    fn event(&self) -> EventKey {
        match self {
            Key::Message(id) => EventKey::Message(id.clone()),
            Key::View(gid, _) => EventKey::View(*gid),
        }
    }
}

/// Runs the partition-safe checks over `run` (see the module docs). Returns
/// what was checked, or every violation found.
pub fn check_partitioned(run: &Run) -> Result<Summary, Vec<Violation>> {
    let mut violations = Vec::new();
    let mut summary = Summary {
        clients: run.clients.len(),
        survivors: run.clients.iter().filter(|c| c.survived).count(),
        ..Summary::default()
    };
    let mut sent: HashMap<MsgId, (&str, usize)> = HashMap::new();
    for p in &run.publishers {
        for (k, c) in p.sent.iter().enumerate() {
            if sent
                .insert(MsgId::new(p.tag.clone(), *c), (&p.group, k))
                .is_some()
            {
                violations.push(Violation::BadRun {
                    reason: format!("message {}/{c} is sent twice by the publisher logs", p.tag),
                });
            }
        }
        summary.acked += p.acked_ids().count();
    }
    let mut first_seen: HashMap<&MsgId, (usize, Pos, &str)> = HashMap::new();
    let mut orders: Vec<BTreeMap<&str, Vec<Key>>> = Vec::new();
    for (ci, log) in run.clients.iter().enumerate() {
        orders.push(one_client(log, &sent, &mut violations, &mut summary));
        for rec in &log.records {
            let Record::Delivery {
                id,
                sender_private,
                position,
                group,
            } = rec
            else {
                continue;
            };
            let (c0, p0, s0) = *first_seen
                .entry(id)
                .or_insert((ci, *position, sender_private));
            if c0 == ci {
                continue;
            }
            if p0 != *position {
                violations.push(Violation::PositionsDisagree {
                    group: group.clone(),
                    event: EventKey::Message(id.clone()),
                    a: run.clients[c0].client.clone(),
                    a_pos: p0,
                    b: log.client.clone(),
                    b_pos: *position,
                });
            }
            if s0 != sender_private {
                violations.push(Violation::SenderDisagrees {
                    group: group.clone(),
                    id: id.clone(),
                    a: run.clients[c0].client.clone(),
                    a_sender: s0.to_owned(),
                    b: log.client.clone(),
                    b_sender: sender_private.clone(),
                });
            }
        }
    }
    pairwise_order(run, &orders, &mut violations, &mut summary);
    if violations.is_empty() {
        Ok(summary)
    } else {
        Err(violations)
    }
}

/// Per-client checks; returns the client's events per group (first
/// occurrence of each, in delivery order).
fn one_client<'a>(
    log: &'a ClientLog,
    sent: &HashMap<MsgId, (&str, usize)>,
    violations: &mut Vec<Violation>,
    summary: &mut Summary,
) -> BTreeMap<&'a str, Vec<Key>> {
    let client = &log.client;
    let mut events: BTreeMap<&str, Vec<Key>> = BTreeMap::new();
    let mut delivered: HashMap<&MsgId, usize> = HashMap::new();
    let mut last_pos: HashMap<&str, Pos> = HashMap::new();
    let mut last_gid: HashMap<&str, u32> = HashMap::new();
    let mut last_fifo: HashMap<(&str, &str), (usize, u64)> = HashMap::new();
    let mut seen_views: HashSet<(&str, u32, Pos)> = HashSet::new();
    for (index, rec) in log.records.iter().enumerate() {
        let (group, pos) = (rec.group(), rec.position());
        let key = match rec {
            Record::Delivery { id, .. } => {
                summary.deliveries += 1;
                if let Some(first_index) = delivered.insert(id, index) {
                    violations.push(Violation::Duplicated {
                        client: client.clone(),
                        group: group.to_owned(),
                        id: id.clone(),
                        first_index,
                        index,
                    });
                    delivered.insert(id, first_index);
                    continue;
                }
                creation_and_fifo(client, group, id, index, sent, &mut last_fifo, violations);
                Key::Message(id.clone())
            }
            Record::View { gid, .. } => {
                summary.views += 1;
                if let Some(prev) = last_gid.get(group)
                    && *prev >= *gid
                {
                    violations.push(Violation::GidNotIncreasing {
                        client: client.clone(),
                        group: group.to_owned(),
                        index,
                        prev: *prev,
                        gid: *gid,
                    });
                }
                last_gid.insert(group, *gid);
                if !seen_views.insert((group, *gid, pos)) {
                    continue;
                }
                Key::View(*gid, pos)
            }
        };
        if let Some(prev) = last_pos.get(group)
            && *prev >= pos
        {
            violations.push(Violation::PositionNotIncreasing {
                client: client.clone(),
                group: group.to_owned(),
                event: key.event(),
                index,
                prev: *prev,
                pos,
            });
        }
        last_pos.insert(group, pos);
        events.entry(group).or_default().push(key);
    }
    events
}

/// 5 (creation, wrong group) and 2 (FIFO) for one delivery.
fn creation_and_fifo<'a>(
    client: &str,
    group: &'a str,
    id: &'a MsgId,
    index: usize,
    sent: &HashMap<MsgId, (&str, usize)>,
    last_fifo: &mut HashMap<(&'a str, &'a str), (usize, u64)>,
    violations: &mut Vec<Violation>,
) {
    match sent.get(id) {
        None => violations.push(Violation::Created {
            client: client.to_owned(),
            group: group.to_owned(),
            id: id.clone(),
            index,
        }),
        Some((g, _)) if *g != group => violations.push(Violation::WrongGroup {
            client: client.to_owned(),
            id: id.clone(),
            published_to: (*g).to_owned(),
            delivered_in: group.to_owned(),
            index,
        }),
        Some((_, rank)) => {
            let slot = (group, id.sender.as_str());
            if let Some((prev_rank, prev_counter)) = last_fifo.get(&slot)
                && prev_rank >= rank
            {
                violations.push(Violation::FifoViolated {
                    client: client.to_owned(),
                    group: group.to_owned(),
                    publisher: id.sender.clone(),
                    first: *prev_counter,
                    then: id.counter,
                    index,
                });
            }
            last_fifo.insert(slot, (*rank, id.counter));
        }
    }
}

/// 1: every pair of clients delivers its common events in the same order.
fn pairwise_order(
    run: &Run,
    orders: &[BTreeMap<&str, Vec<Key>>],
    violations: &mut Vec<Violation>,
    summary: &mut Summary,
) {
    for (a, a_groups) in orders.iter().enumerate() {
        for (group, a_events) in a_groups {
            let index: HashMap<&Key, usize> =
                a_events.iter().enumerate().map(|(i, k)| (k, i)).collect();
            for (b, b_groups) in orders.iter().enumerate().skip(a + 1) {
                let Some(b_events) = b_groups.get(group) else {
                    continue;
                };
                summary.pairs_compared += 1;
                let mut last: Option<(usize, &Key)> = None;
                for key in b_events {
                    let Some(&ia) = index.get(key) else {
                        continue;
                    };
                    if let Some((prev_ia, prev_key)) = last
                        && ia < prev_ia
                    {
                        violations.push(Violation::OrderDisagrees {
                            group: (*group).to_owned(),
                            a: run.clients[a].client.clone(),
                            a_first: key.event(),
                            a_then: prev_key.event(),
                            b: run.clients[b].client.clone(),
                        });
                        break;
                    }
                    last = Some((ia, key));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proto::msgc::v1::ViewChange;

    use super::*;
    use crate::Invariant;
    use crate::record::PublisherLog;

    fn view(gid: u32, members: &[&str], position: Pos) -> Record {
        Record::View {
            group: "g".into(),
            gid,
            change: ViewChange::Join,
            members: members.iter().map(|m| (*m).to_owned()).collect(),
            position,
        }
    }

    fn msg(tag: &str, counter: u64, position: Pos) -> Record {
        Record::Delivery {
            group: "g".into(),
            sender_private: format!("#{tag}#s1"),
            id: MsgId::new(tag, counter),
            position,
        }
    }

    fn client(name: &str, records: Vec<Record>) -> ClientLog {
        ClientLog {
            client: name.into(),
            server: "s1".into(),
            records,
            survived: true,
        }
    }

    fn publisher(tag: &str, n: u64) -> PublisherLog {
        PublisherLog {
            tag: tag.into(),
            group: "g".into(),
            sent: (1..=n).collect(),
            acked: n,
            not_before: None,
        }
    }

    /// Two sides that both install gid 2 (different members, same view id),
    /// each delivering its own publisher, then merge at gid 3.
    fn split_run() -> Run {
        let a = client(
            "#a#s1",
            vec![
                view(1, &["#a#s1", "#b#s2"], (1, 1)),
                msg("p", 1, (1, 2)),
                view(2, &["#a#s1"], (2, 1)),
                msg("p", 2, (2, 2)),
                view(3, &["#a#s1", "#b#s2"], (3, 1)),
                msg("q", 2, (3, 2)),
            ],
        );
        let b = client(
            "#b#s2",
            vec![
                view(1, &["#a#s1", "#b#s2"], (1, 1)),
                msg("p", 1, (1, 2)),
                view(2, &["#b#s2"], (2, 1)),
                msg("q", 1, (2, 2)),
                view(3, &["#a#s1", "#b#s2"], (3, 1)),
                msg("q", 2, (3, 2)),
            ],
        );
        Run {
            clients: vec![a, b],
            publishers: vec![publisher("p", 2), publisher("q", 2)],
            lost_servers: vec![],
        }
    }

    fn invariants(run: &Run) -> Vec<Invariant> {
        check_partitioned(run)
            .err()
            .unwrap_or_default()
            .iter()
            .map(Violation::invariant)
            .collect()
    }

    #[test]
    fn two_sides_reusing_a_gid_and_position_pass() {
        let run = split_run();
        let summary = check_partitioned(&run).expect("valid partitioned run");
        assert_eq!(summary.deliveries, 6);
        assert_eq!(summary.pairs_compared, 1);
        // The full checker takes the two gid 2 views for one, which disagrees.
        assert!(crate::check(&run).is_err());
    }

    #[test]
    fn duplicate_and_fifo_and_creation() {
        let mut run = split_run();
        run.clients[0].records.push(msg("q", 2, (3, 3)));
        run.clients[0].records.push(msg("q", 1, (3, 4)));
        run.clients[0].records.push(msg("x", 1, (3, 5)));
        let got = invariants(&run);
        assert!(got.contains(&Invariant::NoDuplication), "{got:?}");
        assert!(got.contains(&Invariant::SenderFifo), "{got:?}");
        assert!(got.contains(&Invariant::NoCreation), "{got:?}");
    }

    #[test]
    fn order_disagreement_between_sides_is_caught() {
        let mut run = split_run();
        // b delivers p/1 after the merge view, a before it.
        let b = &mut run.clients[1].records;
        b.swap(1, 4);
        let got = invariants(&run);
        assert!(got.contains(&Invariant::AgreedOrder), "{got:?}");
        assert!(got.contains(&Invariant::Positions), "{got:?}");
    }

    #[test]
    fn message_positions_and_senders_must_agree() {
        let mut run = split_run();
        run.clients[1].records[1] = Record::Delivery {
            group: "g".into(),
            sender_private: "#other#s9".into(),
            id: MsgId::new("p", 1),
            position: (1, 3),
        };
        let got = invariants(&run);
        assert!(got.contains(&Invariant::Positions), "{got:?}");
        assert!(got.contains(&Invariant::Agreement), "{got:?}");
    }

    #[test]
    fn gid_must_increase_per_client() {
        let mut run = split_run();
        run.clients[0].records.push(view(2, &["#a#s1"], (4, 1)));
        let got = invariants(&run);
        assert_eq!(got, vec![Invariant::GidOrder]);
    }
}
