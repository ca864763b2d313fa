//! Handler tests: a core in a given state, one input, the exact effects.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;

use super::*;

fn cfg(name: &str) -> CoreConfig {
    CoreConfig {
        name: ServerName::new(name),
        peers: ["a", "b", "c"].iter().map(ServerName::new).collect(),
        keepalive_interval: Duration::from_millis(200),
        proposal_timeout: Duration::from_millis(600),
        ready_after: Duration::from_millis(500),
        stuck_after: Duration::from_secs(1),
    }
}

fn id(name: &str) -> ServerId {
    ServerId::new(name, name.as_bytes()[0] as u64)
}

fn row(name: &str, version: u64, view: &ViewId, links: &[&str]) -> Row {
    Row {
        server: id(name),
        version,
        view: view.clone(),
        answered: None,
        links: links.iter().map(|l| id(l)).collect(),
    }
}

fn solo(name: &str) -> ViewId {
    ViewId {
        epoch: 1,
        proposer: id(name),
    }
}

/// Core `b`, linked to `a` (link 1) and `c` (link 2), knowing both rows:
/// a full mesh in which `a` proposes.
fn core_b_in_mesh() -> Core {
    let mut b = Core::new(cfg("b"), id("b").incarnation, Duration::ZERO);
    b.handle(
        Duration::ZERO,
        Input::LinkUp {
            peer: id("a"),
            link: LinkId(1),
        },
    );
    b.handle(
        Duration::ZERO,
        Input::LinkUp {
            peer: id("c"),
            link: LinkId(2),
        },
    );
    let rows = vec![
        row("a", 1, &solo("a"), &["b", "c"]),
        row("c", 1, &solo("c"), &["a", "b"]),
    ];
    b.handle(
        Duration::ZERO,
        Input::Peer {
            peer: ServerName::new("a"),
            link: LinkId(1),
            msgs: vec![PeerMsg::Rows(rows)],
        },
    );
    b.take_effects();
    b
}

fn proposal_from_a(epoch: u64) -> View {
    View {
        id: ViewId {
            epoch,
            proposer: id("a"),
        },
        members: vec![id("a"), id("b"), id("c")],
    }
}

fn from_a(msg: PeerMsg) -> Input {
    Input::Peer {
        peer: ServerName::new("a"),
        link: LinkId(1),
        msgs: vec![msg],
    }
}

fn sends(effects: &[Effect]) -> Vec<(String, &PeerMsg)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send { to, msg, .. } => Some((to.to_string(), msg)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_member_answers_a_matching_proposal_with_its_state_and_wedges() {
    let mut b = core_b_in_mesh();
    b.handle(
        Duration::ZERO,
        from_a(PeerMsg::Propose {
            view: proposal_from_a(2),
        }),
    );
    let effects = b.take_effects();
    let sent = sends(&effects);
    // Its row (now naming the answered proposal) to both peers, then the flush state.
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert!(matches!(sent[0].1, PeerMsg::Rows(r) if r[0].answered == Some(proposal_from_a(2).id)));
    let (to, PeerMsg::Flush(state)) = &sent[2] else {
        panic!("{sent:?}")
    };
    assert_eq!(to, "a");
    assert_eq!(state.proposal, proposal_from_a(2).id);
    assert_eq!(state.current, solo("b"));
    assert_eq!((state.delivered, state.received), (0, 0));
    assert!(!b.is_active(), "wedged");
}

#[test]
fn a_proposal_for_another_component_is_refused() {
    let mut b = core_b_in_mesh();
    let mut view = proposal_from_a(2);
    view.members.pop(); // {a, b}: but b reaches c, which reaches a
    b.handle(
        Duration::ZERO,
        from_a(PeerMsg::Propose { view: view.clone() }),
    );
    let effects = b.take_effects();
    assert_eq!(
        sends(&effects),
        vec![(
            "a".to_string(),
            &PeerMsg::Refuse {
                proposal: view.id.clone(),
                known: view.id
            }
        )]
    );
    assert!(b.is_active());
}

#[test]
fn an_install_from_an_earlier_proposer_is_ignored_after_answering_a_later_one() {
    // Scenario 2: b answered a's proposal at epoch 2, then a's at epoch 3
    // (standing in for any later proposer); the epoch-2 install must not land.
    let mut b = core_b_in_mesh();
    b.handle(
        Duration::ZERO,
        from_a(PeerMsg::Propose {
            view: proposal_from_a(2),
        }),
    );
    b.handle(
        Duration::ZERO,
        from_a(PeerMsg::Propose {
            view: proposal_from_a(3),
        }),
    );
    b.take_effects();
    let old = proposal_from_a(2);
    let record = InstallRecord {
        sources: old
            .members
            .iter()
            .map(|m| {
                (
                    m.clone(),
                    Source {
                        from: solo(m.name.as_str()),
                        cut: 0,
                        keep_below: 0,
                        keep_from: vec![],
                    },
                )
            })
            .collect(),
        view: old,
        table: GroupTable::default(),
        high_water: BTreeMap::new(),
    };
    b.handle(
        Duration::ZERO,
        from_a(PeerMsg::Install {
            record: Box::new(record),
        }),
    );
    assert_eq!(b.take_effects(), vec![]);
    assert_eq!(b.view().id, solo("b"));
}

#[test]
fn install_then_commit_starts_the_view_and_resubmits_pending_ops() {
    let mut b = core_b_in_mesh();
    let session = b.open_session(Duration::ZERO, Hello::default()).unwrap().id;
    b.handle(
        Duration::ZERO,
        from_a(PeerMsg::Propose {
            view: proposal_from_a(2),
        }),
    );
    // A publish while wedged waits.
    let publish = ClientOp::Publish {
        group: "g".into(),
        payload: Bytes::from_static(b"x"),
    };
    b.handle(Duration::ZERO, Input::Commands(session, vec![publish]));
    b.handle(Duration::ZERO, Input::EndOfTurn);
    b.take_effects();
    let view = proposal_from_a(2);
    let record = InstallRecord {
        sources: view
            .members
            .iter()
            .map(|m| {
                (
                    m.clone(),
                    Source {
                        from: solo(m.name.as_str()),
                        cut: 0,
                        keep_below: 0,
                        keep_from: vec![],
                    },
                )
            })
            .collect(),
        view: view.clone(),
        table: GroupTable::default(),
        high_water: BTreeMap::new(),
    };
    b.handle(
        Duration::ZERO,
        from_a(PeerMsg::Install {
            record: Box::new(record),
        }),
    );
    let effects = b.take_effects();
    let sent = sends(&effects);
    assert!(
        matches!(sent.last(), Some((to, PeerMsg::InstallAck { view: v })) if to == "a" && *v == view.id),
        "{sent:?}"
    );
    // Held, not applied, until the commit [rule 17]: no cut delivered, no
    // view entered.
    assert!(
        !effects.iter().any(|e| matches!(
            e,
            Effect::Installed { .. } | Effect::ViewStarted { .. } | Effect::Deliver { .. }
        )),
        "{effects:?}"
    );
    assert_eq!(b.view().id, solo("b"));
    b.handle(Duration::ZERO, Input::EndOfTurn);
    assert!(
        sends(&b.take_effects()).is_empty(),
        "nothing is submitted before the commit"
    );
    b.handle(
        Duration::ZERO,
        from_a(PeerMsg::Commit {
            view: view.id.clone(),
        }),
    );
    b.handle(Duration::ZERO, Input::EndOfTurn);
    let effects = b.take_effects();
    assert!(effects.contains(&Effect::ViewStarted { view: view.clone() }));
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::Installed { .. }))
    );
    let submits: Vec<_> = sends(&effects)
        .into_iter()
        .filter(|(_, m)| matches!(m, PeerMsg::Submit { .. }))
        .collect();
    let [(to, PeerMsg::Submit { view: v, ops })] = submits.as_slice() else {
        panic!("{submits:?}")
    };
    assert_eq!(
        (to.as_str(), v, ops.len(), ops[0].origin_seq),
        ("a", &view.id, 1, 1)
    );
}

#[test]
fn a_duplicate_op_is_delivered_once() {
    // Scenario 4: the same (origin, origin seq) twice in the order.
    let mut c = Core::new(cfg("c"), 7, Duration::ZERO);
    let s = c.open_session(Duration::ZERO, Hello::default()).unwrap().id;
    c.handle(
        Duration::ZERO,
        Input::Commands(
            s,
            vec![ClientOp::Join {
                group: "g".into(),
                capabilities: Bytes::new(),
            }],
        ),
    );
    c.handle(Duration::ZERO, Input::EndOfTurn);
    let op = Op {
        origin: id("a"),
        origin_seq: 9,
        kind: OpKind::Publish {
            group: "g".into(),
            sender: "#p#a".into(),
            payload: Bytes::from_static(b"m"),
        },
    };
    c.take_effects();
    c.deliver_op(op.clone(), Position { epoch: 1, seq: 2 });
    c.deliver_op(op, Position { epoch: 1, seq: 3 });
    let deliveries = c
        .take_effects()
        .into_iter()
        .filter(|e| {
            matches!(
                e,
                Effect::Deliver {
                    event: Event::Delivery { .. },
                    ..
                }
            )
        })
        .count();
    assert_eq!(deliveries, 1);
}

#[test]
fn a_merge_with_a_loss_announces_server_lost_then_partition_merge() {
    // Scenario 7.
    let mut b = Core::new(cfg("b"), id("b").incarnation, Duration::ZERO);
    let s = b.open_session(Duration::ZERO, Hello::default()).unwrap().id;
    let mine = Member {
        key: op::local_key(b.id(), s),
        private_name: "#c1#b".into(),
        capabilities: Bytes::new(),
        node: None,
    };
    let lost = Member {
        key: MemberKey {
            server: id("c"),
            session: SessionId(1),
        },
        private_name: "#x#c".into(),
        capabilities: Bytes::new(),
        node: None,
    };
    let back = Member {
        key: MemberKey {
            server: id("a"),
            session: SessionId(1),
        },
        private_name: "#y#a".into(),
        capabilities: Bytes::new(),
        node: None,
    };
    b.groups.join("g", mine.clone());
    b.groups.join("g", lost);
    b.rebuild_local_members();
    let mut table = GroupTable::default();
    table.set(
        "g".into(),
        Group {
            gid: 9,
            members: vec![mine, back],
        },
    );
    let view = View {
        id: ViewId {
            epoch: 5,
            proposer: id("a"),
        },
        members: vec![id("a"), id("b")],
    };
    let record = InstallRecord {
        sources: [(
            id("b"),
            Source {
                from: b.view.id.clone(),
                cut: 0,
                keep_below: 0,
                keep_from: vec![],
            },
        )]
        .into(),
        view,
        table,
        high_water: BTreeMap::new(),
    };
    b.enter(record);
    let views: Vec<(ChangeKind, u32, Vec<String>)> = b
        .take_effects()
        .into_iter()
        .filter_map(|e| match e {
            Effect::Deliver {
                event: Event::View(v),
                ..
            } => Some((v.change, v.gid, v.changed)),
            _ => None,
        })
        .collect();
    assert_eq!(
        views,
        vec![
            (ChangeKind::ServerLost, 8, vec!["#x#c".to_string()]),
            (ChangeKind::PartitionMerge, 9, vec!["#y#a".to_string()]),
        ]
    );
}

fn state(
    current: ViewId,
    delivered: u64,
    received: u64,
    holds: Option<InstallRecord>,
) -> FlushState {
    FlushState {
        proposal: ViewId {
            epoch: 9,
            proposer: id("a"),
        },
        current,
        holds,
        delivered,
        received,
        stable: 0,
        table: GroupTable::default(),
        membership: vec![],
        high_water: BTreeMap::new(),
        held: vec![],
    }
}

#[test]
fn plan_reuses_a_held_installs_cut_and_keeps_doubtful_ops_of_its_side_only() {
    // Scenario 1: the proposer a of X (epoch 5) sent its install to b only,
    // then died; b holds X uncommitted, c never got it, both still last
    // started V. The next proposal gives both X's cut of V (where X may have
    // committed, that cut was delivered), and above X's stable point keeps
    // only b's and c's ops: a, on X's side, may have gone elsewhere without
    // X, and an op in doubt is delivered only where its origin goes [rules
    // 14a, 14b].
    let v = ViewId {
        epoch: 4,
        proposer: id("a"),
    };
    let x = View {
        id: ViewId {
            epoch: 5,
            proposer: id("a"),
        },
        members: vec![id("a"), id("b"), id("c")],
    };
    let record = InstallRecord {
        view: x.clone(),
        sources: x
            .members
            .iter()
            .map(|m| {
                (
                    m.clone(),
                    Source {
                        from: v.clone(),
                        cut: 6,
                        keep_below: 2,
                        keep_from: vec![id("a"), id("b"), id("c")],
                    },
                )
            })
            .collect(),
        table: GroupTable::default(),
        high_water: BTreeMap::new(),
    };
    let next = View {
        id: ViewId {
            epoch: 9,
            proposer: id("b"),
        },
        members: vec![id("b"), id("c")],
    };
    let states: BTreeMap<_, _> = [
        (id("b"), state(v.clone(), 2, 8, Some(record))),
        (id("c"), state(v.clone(), 2, 8, None)),
    ]
    .into();
    let planned = plan::plan(&next, &states).unwrap();
    for m in ["b", "c"] {
        assert_eq!(
            planned.sources[&id(m)],
            Source {
                from: v.clone(),
                cut: 6,
                keep_below: 2,
                keep_from: vec![id("b"), id("c")],
            }
        );
    }
}

#[test]
fn plan_cuts_each_side_at_its_lowest_received() {
    let v = ViewId {
        epoch: 4,
        proposer: id("a"),
    };
    let next = View {
        id: ViewId {
            epoch: 9,
            proposer: id("b"),
        },
        members: vec![id("b"), id("c")],
    };
    let states: BTreeMap<_, _> = [
        (id("b"), state(v.clone(), 3, 10, None)),
        (id("c"), state(v.clone(), 5, 7, None)),
    ]
    .into();
    let plan = plan::plan(&next, &states).unwrap();
    assert_eq!(
        plan.sources[&id("b")],
        Source {
            from: v.clone(),
            cut: 7,
            keep_below: 0,
            keep_from: vec![id("b"), id("c")],
        }
    );
    assert_eq!(
        plan.sources[&id("c")],
        Source {
            from: v,
            cut: 7,
            keep_below: 0,
            keep_from: vec![id("b"), id("c")],
        }
    );
}

#[test]
fn plan_never_lets_a_gid_go_back_after_a_merge() {
    // Scenario 5: side A has g at gid 10; side B forgot g at gid 30 and then
    // re-created it (gid 31): the merged gid is above both.
    let member = |server: &str| Member {
        key: MemberKey {
            server: id(server),
            session: SessionId(1),
        },
        private_name: format!("#m#{server}"),
        capabilities: Bytes::new(),
        node: None,
    };
    let mut side_a = GroupTable::default();
    side_a.set(
        "g".into(),
        Group {
            gid: 10,
            members: vec![member("b")],
        },
    );
    let mut side_c = GroupTable::default();
    side_c.set(
        "g".into(),
        Group {
            gid: 30,
            members: vec![],
        },
    );
    side_c.set(
        "g".into(),
        Group {
            gid: 31,
            members: vec![member("c")],
        },
    );
    let (va, vc) = (solo("b"), solo("c"));
    let next = View {
        id: ViewId {
            epoch: 9,
            proposer: id("b"),
        },
        members: vec![id("b"), id("c")],
    };
    let mut sb = state(va, 0, 0, None);
    sb.table = side_a;
    let mut sc = state(vc, 0, 0, None);
    sc.table = side_c;
    let plan = plan::plan(&next, &[(id("b"), sb), (id("c"), sc)].into()).unwrap();
    let g = plan.table.get("g").unwrap();
    assert_eq!(g.gid, 33);
    assert_eq!(g.members, vec![member("b"), member("c")]);
}

#[test]
fn flush_and_install_frames_carry_no_payloads() {
    // Scenario 8: whatever the payload sizes, what a view change sends stays small.
    let mut b = core_b_in_mesh();
    let big = Op {
        origin: id("a"),
        origin_seq: 1,
        kind: OpKind::Publish {
            group: "g".into(),
            sender: "#p#a".into(),
            payload: Bytes::from(vec![0u8; 1 << 20]),
        },
    };
    b.order.held.extend(std::iter::repeat_n(big, 50));
    b.handle(
        Duration::ZERO,
        from_a(PeerMsg::Propose {
            view: proposal_from_a(2),
        }),
    );
    let effects = b.take_effects();
    let (_, flush) = sends(&effects)
        .into_iter()
        .find(|(_, m)| matches!(m, PeerMsg::Flush(_)))
        .unwrap();
    assert!(flush.weight() < 4096, "flush weighs {}", flush.weight());
    let PeerMsg::Flush(f) = flush else {
        unreachable!()
    };
    assert_eq!((f.received, f.membership.len()), (50, 0));
}

#[test]
fn a_member_short_of_a_held_installs_cut_gets_the_ops_first() {
    // b holds X's install, which gave V the cut 9 (where X committed, that
    // cut was delivered); c, also leaving V, holds only up to 6. The plan
    // must first have b send c ops 7..=9 [rule 14c]; until then the side
    // could only take 6 and would drop ops delivered where X committed.
    let v = ViewId {
        epoch: 4,
        proposer: id("a"),
    };
    let x = View {
        id: ViewId {
            epoch: 5,
            proposer: id("a"),
        },
        members: vec![id("a"), id("b")],
    };
    let source = Source {
        from: v.clone(),
        cut: 9,
        keep_below: 4,
        keep_from: vec![id("a"), id("b")],
    };
    let record = InstallRecord {
        sources: x
            .members
            .iter()
            .map(|m| (m.clone(), source.clone()))
            .collect(),
        view: x,
        table: GroupTable::default(),
        high_water: BTreeMap::new(),
    };
    let next = View {
        id: ViewId {
            epoch: 9,
            proposer: id("b"),
        },
        members: vec![id("b"), id("c")],
    };
    let mut states: BTreeMap<_, _> = [
        (id("b"), state(v.clone(), 4, 9, Some(record))),
        (id("c"), state(v.clone(), 4, 6, None)),
    ]
    .into();
    assert_eq!(
        plan::transfers(&next, &states),
        vec![plan::Transfer {
            holder: id("b"),
            lagger: id("c"),
            view: v.clone(),
            after: 6,
            upto: 9,
        }]
    );
    assert_eq!(plan::plan(&next, &states).unwrap().sources[&id("c")].cut, 6);
    states.get_mut(&id("c")).unwrap().received = 9;
    assert!(plan::transfers(&next, &states).is_empty());
    let planned = plan::plan(&next, &states).unwrap();
    assert_eq!(
        (
            planned.sources[&id("c")].cut,
            planned.sources[&id("c")].keep_below
        ),
        (9, 4)
    );
}
