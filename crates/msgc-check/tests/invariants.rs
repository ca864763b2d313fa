//! Hand-made runs: one valid, and one per invariant that breaks it.

use std::collections::BTreeSet;

use msgc_check::{
    ClientLog, Invariant, MsgId, Pos, PublisherLog, Record, Run, Summary, Violation, check, report,
};
use proto::msgc::v1::ViewChange;

const A: &str = "#a#s1";
const B: &str = "#b#s2";
const C: &str = "#c#s3";

fn view(group: &str, gid: u32, change: ViewChange, members: &[&str], position: Pos) -> Record {
    Record::View {
        group: group.into(),
        gid,
        change,
        members: members.iter().map(|m| (*m).to_owned()).collect(),
        position,
    }
}

fn msg(group: &str, tag: &str, counter: u64, position: Pos) -> Record {
    Record::Delivery {
        group: group.into(),
        sender_private: format!("#{tag}#s1"),
        id: MsgId::new(tag, counter),
        position,
    }
}

fn publisher(tag: &str, group: &str, sent: &[u64], acked: u64) -> PublisherLog {
    PublisherLog {
        tag: tag.into(),
        group: group.into(),
        sent: sent.to_vec(),
        acked,
        not_before: None,
    }
}

fn client(name: &str, server: &str, survived: bool, records: Vec<Record>) -> ClientLog {
    ClientLog {
        client: name.into(),
        server: server.into(),
        records,
        survived,
    }
}

/// Three clients on three servers; group `g` has all three until s3 is lost,
/// group `h` has A and B.
///
/// g: (1,1) gid1 [A] · (1,2) gid2 [A,B] · (1,3) gid3 [A,B,C] · p/1 (1,4) ·
///    q/1 (1,5) · p/2 (1,6) · p/3 (1,7) · s3 lost: (2,1) gid4 [A,B] ·
///    p/4 (2,2) · q/2 (2,3)
/// h: (1,20) gid1 [A] · (1,21) gid2 [A,B] · r/1 (1,22)
fn valid() -> Run {
    use ViewChange::{Join, ServerLost};
    let g_before_loss = vec![
        msg("g", "p", 1, (1, 4)),
        msg("g", "q", 1, (1, 5)),
        msg("g", "p", 2, (1, 6)),
        msg("g", "p", 3, (1, 7)),
    ];
    let g_after_loss = vec![
        view("g", 4, ServerLost, &[A, B], (2, 1)),
        msg("g", "p", 4, (2, 2)),
        msg("g", "q", 2, (2, 3)),
    ];
    let mut a = vec![
        view("g", 1, Join, &[A], (1, 1)),
        view("g", 2, Join, &[A, B], (1, 2)),
        view("g", 3, Join, &[A, B, C], (1, 3)),
    ];
    a.extend(g_before_loss.clone());
    a.extend(g_after_loss.clone());
    a.extend([
        view("h", 1, Join, &[A], (1, 20)),
        view("h", 2, Join, &[A, B], (1, 21)),
        msg("h", "r", 1, (1, 22)),
    ]);
    let mut b = vec![
        view("g", 2, Join, &[A, B], (1, 2)),
        view("g", 3, Join, &[A, B, C], (1, 3)),
    ];
    // B interleaves the groups differently from A: only per-group order matters.
    b.push(view("h", 2, Join, &[A, B], (1, 21)));
    b.extend(g_before_loss.clone());
    b.push(msg("h", "r", 1, (1, 22)));
    b.extend(g_after_loss);
    let mut c = vec![view("g", 3, Join, &[A, B, C], (1, 3))];
    c.extend(g_before_loss);
    Run {
        clients: vec![
            client(A, "s1", true, a),
            client(B, "s2", true, b),
            client(C, "s3", false, c),
        ],
        publishers: vec![
            publisher("p", "g", &[1, 2, 3, 4], 4),
            publisher("q", "g", &[1, 2], 2),
            publisher("r", "h", &[1], 1),
        ],
        lost_servers: vec!["s3".into()],
    }
}

fn records<'r>(run: &'r mut Run, name: &str) -> &'r mut Vec<Record> {
    &mut run
        .clients
        .iter_mut()
        .find(|c| c.client == name)
        .expect("client in run")
        .records
}

fn find(run: &Run, name: &str, pred: impl Fn(&Record) -> bool) -> usize {
    run.clients
        .iter()
        .find(|c| c.client == name)
        .expect("client in run")
        .records
        .iter()
        .position(pred)
        .expect("record in log")
}

fn is_msg(tag: &'static str, counter: u64) -> impl Fn(&Record) -> bool {
    move |r| matches!(r, Record::Delivery { id, .. } if id.sender == tag && id.counter == counter)
}

fn is_view(group: &'static str, wanted: u32) -> impl Fn(&Record) -> bool {
    move |r| matches!(r, Record::View { group: g, gid, .. } if g == group && *gid == wanted)
}

/// Checks the run, expects violations, returns them after asserting that
/// `expected` is among their invariants and every invariant is in `allowed`
/// (`expected` is always allowed).
fn violations(run: &Run, expected: Invariant, allowed: &[Invariant]) -> Vec<Violation> {
    let found = match check(run) {
        Ok(summary) => panic!("expected a {expected} violation, got {summary:?}"),
        Err(v) => v,
    };
    let kinds: BTreeSet<Invariant> = found.iter().map(Violation::invariant).collect();
    assert!(
        kinds.contains(&expected),
        "no {expected}: {}",
        report(&found, 50)
    );
    for kind in &kinds {
        assert!(
            *kind == expected || allowed.contains(kind),
            "unexpected {kind}: {}",
            report(&found, 50)
        );
    }
    for v in &found {
        assert!(!v.to_string().is_empty());
    }
    found
}

#[test]
fn valid_run_passes_with_expected_counts() {
    let summary = check(&valid()).unwrap_or_else(|v| panic!("{}", report(&v, 50)));
    assert_eq!(
        summary,
        Summary {
            clients: 3,
            survivors: 2,
            deliveries: 6 + 6 + 4 + 2,
            views: 4 + 2 + 3 + 1 + 1,
            pairs_compared: 3 + 1,
            acked: 7,
            required_deliveries: 6 + 6 + 2,
            unbounded_acked: 0,
            server_lost_views: 2,
        }
    );
    assert_eq!(msgc_check::assert_valid(&valid()), summary);
}

#[test]
fn valid_run_round_trips_through_json() {
    let run = valid();
    let back = Run::from_json(&run.to_json()).expect("json");
    assert_eq!(back, run);
    assert!(check(&back).is_ok());
}

#[test]
fn agreed_order_swapped_messages() {
    let mut run = valid();
    // B delivers q/1 and p/2 the other way round (positions travel with them).
    let i = find(&run, B, is_msg("q", 1));
    let j = find(&run, B, is_msg("p", 2));
    records(&mut run, B).swap(i, j);
    let found = violations(&run, Invariant::AgreedOrder, &[Invariant::Positions]);
    assert!(found.iter().any(|v| matches!(v,
        Violation::OrderDisagrees { group, a, b, a_first, a_then }
            if group == "g" && a == A && b == B
            && *a_first == msgc_check::EventKey::Message(MsgId::new("q", 1))
            && *a_then == msgc_check::EventKey::Message(MsgId::new("p", 2)))));
}

#[test]
fn agreed_order_view_against_message() {
    let mut run = valid();
    // C delivers the join view gid3 after p/1, with positions that look fine to C alone.
    let recs = records(&mut run, C);
    recs.swap(0, 1);
    if let Record::Delivery { position, .. } = &mut recs[0] {
        *position = (1, 3);
    }
    if let Record::View { position, .. } = &mut recs[1] {
        *position = (1, 4);
    }
    let found = violations(&run, Invariant::AgreedOrder, &[Invariant::Positions]);
    assert!(
        found
            .iter()
            .any(|v| matches!(v, Violation::OrderDisagrees { b, .. } if b == C))
    );
}

#[test]
fn positions_disagree() {
    let mut run = valid();
    let i = find(&run, B, is_msg("q", 2));
    if let Record::Delivery { position, .. } = &mut records(&mut run, B)[i] {
        *position = (2, 5);
    }
    let found = violations(&run, Invariant::Positions, &[]);
    assert_eq!(found.len(), 1);
    assert!(matches!(&found[0],
        Violation::PositionsDisagree { a, b, a_pos: (2, 3), b_pos: (2, 5), .. } if a == A && b == B));
}

#[test]
fn position_not_increasing() {
    let mut run = valid();
    // Every client sees p/3 at the same position, but it is before p/2's.
    for name in [A, B, C] {
        let i = find(&run, name, is_msg("p", 3));
        if let Record::Delivery { position, .. } = &mut records(&mut run, name)[i] {
            *position = (1, 5);
        }
    }
    let found = violations(&run, Invariant::Positions, &[]);
    assert_eq!(found.len(), 3);
    assert!(found.iter().all(|v| matches!(
        v,
        Violation::PositionNotIncreasing {
            prev: (1, 6),
            pos: (1, 5),
            ..
        }
    )));
}

#[test]
fn sender_fifo() {
    let mut run = valid();
    // Everyone agrees on the order and positions, but p/3 comes before p/2.
    for name in [A, B, C] {
        let i = find(&run, name, is_msg("p", 2));
        let j = find(&run, name, is_msg("p", 3));
        let recs = records(&mut run, name);
        recs.swap(i, j);
        for (k, pos) in [(i, (1, 6)), (j, (1, 7))] {
            if let Record::Delivery { position, .. } = &mut recs[k] {
                *position = pos;
            }
        }
    }
    let found = violations(&run, Invariant::SenderFifo, &[]);
    assert_eq!(found.len(), 3);
    assert!(found.iter().all(|v| matches!(v,
        Violation::FifoViolated { publisher, first: 3, then: 2, group, .. } if publisher == "p" && group == "g")));
}

#[test]
fn sender_fifo_uses_send_order_not_numbers() {
    let mut run = valid();
    // p sent its counters as 1, 3, 2, 4: what everybody delivered is now out of send order.
    run.publishers[0].sent = vec![1, 3, 2, 4];
    let found = violations(&run, Invariant::SenderFifo, &[]);
    assert_eq!(found.len(), 3);
    // And an unlogged tag is held to numeric order.
    let mut run = valid();
    run.publishers.retain(|p| p.tag != "q");
    for name in [A, B, C] {
        for r in records(&mut run, name) {
            if let Record::Delivery { id, .. } = r
                && id.sender == "q"
            {
                id.counter = 10 - id.counter;
            }
        }
    }
    let found = violations(&run, Invariant::SenderFifo, &[Invariant::NoCreation]);
    assert!(found.iter().any(|v| matches!(
        v,
        Violation::FifoViolated {
            first: 9,
            then: 8,
            ..
        }
    )));
}

#[test]
fn reliable_delivery_missing_message() {
    let mut run = valid();
    let i = find(&run, B, is_msg("p", 4));
    records(&mut run, B).remove(i);
    let found = violations(&run, Invariant::ReliableDelivery, &[]);
    assert_eq!(
        found,
        vec![Violation::Missing {
            client: B.into(),
            group: "g".into(),
            id: MsgId::new("p", 4),
            position: Some((2, 2)),
        }]
    );
}

#[test]
fn reliable_delivery_ignores_non_survivors_and_unacked() {
    let mut run = valid();
    let i = find(&run, C, is_msg("p", 3));
    records(&mut run, C).remove(i);
    assert!(check(&run).is_ok(), "C did not survive");

    let mut run = valid();
    run.publishers[1].acked = 1; // q/2 not acknowledged
    let i = find(&run, B, is_msg("q", 2));
    records(&mut run, B).remove(i);
    assert!(check(&run).is_ok(), "q/2 was not acknowledged");
}

#[test]
fn reliable_delivery_not_required_before_join() {
    let mut run = valid();
    // B joined h at gid2 (1,21); a message ordered at (1,20.5) is not B's.
    run.publishers.push(publisher("s", "h", &[1], 1));
    let recs = records(&mut run, A);
    let i = recs.iter().position(is_view("h", 2)).expect("view");
    recs.insert(i, msg("h", "s", 1, (1, 20)));
    if let Record::View { position, .. } = &mut recs[i - 1] {
        *position = (1, 19);
    }
    for name in [A, B] {
        for r in records(&mut run, name) {
            if let Record::View {
                group,
                gid: 1,
                position,
                ..
            } = r
                && group == "h"
            {
                *position = (1, 19);
            }
        }
    }
    let summary = check(&run).unwrap_or_else(|v| panic!("{}", report(&v, 50)));
    assert_eq!(summary.required_deliveries, 6 + 6 + 2 + 1);
}

#[test]
fn reliable_delivery_message_nobody_delivered() {
    // p/4 reached nobody: it is bounded below by p/3 (1,7), and A and B were
    // members ever after.
    let mut run = valid();
    for name in [A, B] {
        let i = find(&run, name, is_msg("p", 4));
        records(&mut run, name).remove(i);
    }
    let found = violations(&run, Invariant::ReliableDelivery, &[]);
    let missing: BTreeSet<&str> = found
        .iter()
        .filter_map(|v| match v {
            Violation::Missing {
                client,
                position: None,
                id,
                ..
            } if *id == MsgId::new("p", 4) => Some(client.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(missing, BTreeSet::from([A, B]));

    // A publisher nobody heard from at all is unbounded unless it says when it started.
    let mut run = valid();
    run.publishers.push(publisher("z", "g", &[1, 2], 2));
    assert_eq!(check(&run).map(|s| s.unbounded_acked), Ok(2));
    run.publishers.last_mut().expect("z").not_before = Some((1, 3));
    let found = violations(&run, Invariant::ReliableDelivery, &[]);
    assert_eq!(found.len(), 4, "{}", report(&found, 10));
}

#[test]
fn reliable_delivery_missing_view() {
    let mut run = valid();
    let i = find(&run, A, is_view("g", 2));
    records(&mut run, A).remove(i);
    let found = violations(&run, Invariant::ReliableDelivery, &[]);
    assert_eq!(
        found,
        vec![Violation::ViewMissing {
            client: A.into(),
            group: "g".into(),
            gid: 2
        }]
    );
}

#[test]
fn no_creation() {
    let mut run = valid();
    let i = find(&run, A, is_msg("q", 2));
    records(&mut run, A).insert(i + 1, msg("g", "x", 1, (2, 4)));
    let found = violations(&run, Invariant::NoCreation, &[]);
    assert_eq!(
        found,
        vec![Violation::Created {
            client: A.into(),
            group: "g".into(),
            id: MsgId::new("x", 1),
            index: i + 1,
        }]
    );
}

#[test]
fn no_creation_wrong_group() {
    let mut run = valid();
    run.publishers.push(publisher("t", "h", &[1], 0));
    let i = find(&run, A, is_msg("q", 2));
    records(&mut run, A).insert(i + 1, msg("g", "t", 1, (2, 4)));
    let found = violations(&run, Invariant::NoCreation, &[]);
    assert!(
        matches!(&found[..], [Violation::WrongGroup { published_to, delivered_in, .. }]
        if published_to == "h" && delivered_in == "g")
    );
}

#[test]
fn no_duplication() {
    let mut run = valid();
    let i = find(&run, A, is_msg("p", 4));
    let copy = records(&mut run, A)[i].clone();
    records(&mut run, A).insert(i + 1, copy);
    let found = violations(&run, Invariant::NoDuplication, &[]);
    assert_eq!(
        found,
        vec![Violation::Duplicated {
            client: A.into(),
            group: "g".into(),
            id: MsgId::new("p", 4),
            first_index: i,
            index: i + 1,
        }]
    );
}

#[test]
fn virtual_synchrony() {
    let mut run = valid();
    run.publishers[0].acked = 2; // p/3 was in flight when s3 died
    let i = find(&run, B, is_msg("p", 3));
    records(&mut run, B).remove(i);
    let found = violations(&run, Invariant::VirtualSynchrony, &[]);
    assert_eq!(
        found,
        vec![Violation::VirtualSynchrony {
            group: "g".into(),
            gid: 4,
            since_gid: 3,
            a: A.into(),
            b: B.into(),
            only_a: vec![MsgId::new("p", 3)],
            only_b: vec![],
        }]
    );
    // Dropping it from everyone keeps virtual synchrony.
    let i = find(&run, A, is_msg("p", 3));
    records(&mut run, A).remove(i);
    assert!(check(&run).is_ok());
}

#[test]
fn membership_follows_servers_wrong_reason() {
    let mut run = valid();
    for name in [A, B] {
        for r in records(&mut run, name) {
            if let Record::View { gid: 4, change, .. } = r {
                *change = ViewChange::Disconnect;
            }
        }
    }
    let found = violations(&run, Invariant::MembershipFollowsServers, &[]);
    assert_eq!(found.len(), 2);
    assert!(found.iter().all(|v| matches!(v,
        Violation::ServerLostViews { expected: 1, got, server, .. } if got.is_empty() && server == "s3")));
}

#[test]
fn membership_follows_servers_never_dropped() {
    let mut run = valid();
    // The loss view still lists C.
    for name in [A, B] {
        for r in records(&mut run, name) {
            if let Record::View {
                gid: 4, members, ..
            } = r
            {
                members.push(C.into());
            }
        }
    }
    violations(&run, Invariant::MembershipFollowsServers, &[]);
}

#[test]
fn membership_follows_servers_partial_drop() {
    let mut run = valid();
    // D (not recorded) also lives on s3; the loss view drops C but keeps D.
    const D: &str = "#d#s3";
    for name in [A, B, C] {
        for r in records(&mut run, name) {
            if let Record::View {
                group,
                gid,
                members,
                ..
            } = r
                && group == "g"
                && *gid >= 3
            {
                members.push(D.into());
            }
        }
    }
    let found = violations(&run, Invariant::MembershipFollowsServers, &[]);
    assert!(found.iter().any(|v| matches!(v,
        Violation::ServerLostPartial { gid: 4, kept, .. } if kept == &vec![D.to_owned()])));
}

#[test]
fn membership_follows_servers_gids_disagree() {
    let mut run = valid();
    // B sees the loss at another gid than A.
    let recs = records(&mut run, B);
    let i = recs.iter().position(is_view("g", 4)).expect("view");
    if let Record::View { gid, .. } = &mut recs[i] {
        *gid = 5;
    }
    let found = violations(
        &run,
        Invariant::MembershipFollowsServers,
        &[Invariant::ReliableDelivery],
    );
    assert!(found.iter().any(|v| matches!(v,
        Violation::ServerLostViews { client, server, got, .. } if client == B && server == "s3" && got.is_empty())));
}

#[test]
fn membership_follows_servers_leavers_are_not_lost() {
    // C leaves g (only A and B see it) before s3 is lost; A and B then need
    // no SERVER_LOST view, and B's own leave of h needs none either.
    let mut run = valid();
    for name in [A, B] {
        for r in records(&mut run, name) {
            if let Record::View { gid: 4, change, .. } = r {
                *change = ViewChange::Leave;
            }
        }
    }
    assert!(check(&run).is_ok(), "{:?}", check(&run));
}

#[test]
fn membership_follows_servers_counts_losses() {
    let mut run = valid();
    run.lost_servers.push("s3".into()); // lost twice, but A and B only shared g with it once
    assert!(check(&run).is_ok());
    run.lost_servers = vec!["s2".into()]; // says s2 was lost, but B (on s2) was never dropped
    let found = violations(&run, Invariant::MembershipFollowsServers, &[]);
    assert!(
        found
            .iter()
            .all(|v| matches!(v, Violation::ServerLostViews { client, .. } if client == A))
    );
}

#[test]
fn gid_order() {
    let mut run = valid();
    // A numbers h's views 5 then 4; B (which only sees the second) agrees with A.
    for name in [A, B] {
        for r in records(&mut run, name) {
            if let Record::View { group, gid, .. } = r
                && group == "h"
            {
                *gid = 6 - *gid;
            }
        }
    }
    let found = violations(&run, Invariant::GidOrder, &[]);
    assert_eq!(
        found,
        vec![Violation::GidNotIncreasing {
            client: A.into(),
            group: "h".into(),
            index: 11,
            prev: 5,
            gid: 4,
        }]
    );
}

#[test]
fn agreement_view_members() {
    let mut run = valid();
    let i = find(&run, B, is_view("g", 3));
    if let Record::View { members, .. } = &mut records(&mut run, B)[i] {
        *members = vec![B.into(), A.into(), C.into()]; // B thinks it leads
    }
    let found = violations(&run, Invariant::Agreement, &[]);
    assert!(
        matches!(&found[..], [Violation::ViewDisagrees { gid: 3, a, b, .. }] if a == A && b == B)
    );
}

#[test]
fn agreement_sender() {
    let mut run = valid();
    let i = find(&run, C, is_msg("q", 1));
    if let Record::Delivery { sender_private, .. } = &mut records(&mut run, C)[i] {
        *sender_private = "#impostor#s3".into();
    }
    let found = violations(&run, Invariant::Agreement, &[]);
    assert!(matches!(&found[..], [Violation::SenderDisagrees { b, .. }] if b == C));
}

#[test]
fn malformed_runs() {
    let mut run = valid();
    run.clients.push(run.clients[0].clone());
    violations(&run, Invariant::MalformedRun, &[]);

    let mut run = valid();
    run.publishers[0].acked = 9;
    violations(&run, Invariant::MalformedRun, &[]);

    let mut run = valid();
    run.publishers.push(publisher("p", "h", &[4], 0));
    violations(
        &run,
        Invariant::MalformedRun,
        &[Invariant::NoCreation, Invariant::SenderFifo],
    );
}

#[test]
fn reports_every_violation() {
    let mut run = valid();
    // Three independent faults at once.
    let i = find(&run, B, is_msg("p", 4));
    records(&mut run, B).remove(i);
    let i = find(&run, A, is_msg("q", 2));
    let copy = records(&mut run, A)[i].clone();
    records(&mut run, A).insert(i + 1, copy);
    run.publishers.retain(|p| p.tag != "r");
    let found = check(&run).expect_err("violations");
    let kinds: BTreeSet<Invariant> = found.iter().map(Violation::invariant).collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            Invariant::ReliableDelivery,
            Invariant::NoDuplication,
            Invariant::NoCreation
        ])
    );
    let text = report(&found, 2);
    assert!(
        text.starts_with(&format!("{} violation(s):", found.len())),
        "{text}"
    );
    assert!(text.contains("... and"), "{text}");
}

#[test]
fn large_run() {
    // 8 clients, 4 publishers × 2500 messages each, one loss half-way: the
    // pairwise and per-survivor checks stay linear enough for real test runs.
    use ViewChange::{Join, ServerLost};
    let names: Vec<String> = (0..8).map(|c| format!("#c{c}#s{}", c % 4)).collect();
    let mut logs: Vec<ClientLog> = names
        .iter()
        .enumerate()
        .map(|(c, n)| client(n, &format!("s{}", c % 4), c % 4 != 3, Vec::new()))
        .collect();
    let mut members: Vec<&str> = Vec::new();
    let mut seq = 0;
    for (c, n) in names.iter().enumerate() {
        members.push(n);
        seq += 1;
        let v = view("g", c as u32 + 1, Join, &members, (1, seq));
        for log in &mut logs[..=c] {
            log.records.push(v.clone());
        }
    }
    let mut publishers: Vec<PublisherLog> = (0..4)
        .map(|p| PublisherLog::new(format!("p{p}"), "g"))
        .collect();
    for k in 0..10_000u64 {
        if k == 5_000 {
            members.retain(|m| !m.ends_with("#s3"));
            let v = view("g", 9, ServerLost, &members, (2, 1));
            seq = 1;
            for log in logs.iter_mut().filter(|l| l.survived) {
                log.records.push(v.clone());
            }
        }
        seq += 1;
        let p = &mut publishers[(k % 4) as usize];
        p.next_payload(0);
        p.ack(p.sent.len() as u64);
        let m = msg(
            "g",
            &p.tag,
            *p.sent.last().expect("sent"),
            (if k < 5_000 { 1 } else { 2 }, seq),
        );
        for log in logs.iter_mut().filter(|l| k < 5_000 || l.survived) {
            log.records.push(m.clone());
        }
    }
    let run = Run {
        clients: logs,
        publishers,
        lost_servers: vec!["s3".into()],
    };
    let summary = check(&run).unwrap_or_else(|v| panic!("{}", report(&v, 20)));
    assert_eq!(summary.deliveries, 8 * 5_000 + 6 * 5_000);
    assert_eq!(summary.required_deliveries, 6 * 10_000);
    assert_eq!(summary.server_lost_views, 6);
    assert_eq!(summary.pairs_compared, 28);
}
