//! Named scenarios: scripted fault schedules, deterministic, each judged by
//! the full checker plus what the scenario is about.
//!
//! * `issue_*`: the eight causes listed in issue 12.
//! * `ref_*`: the twelve scenarios of `view-change-references.md`.

use msgc_sim::record::Rec;
use msgc_sim::{
    Action, CutLabel, Fault, FaultClass, FaultKind, MS, MsgKind, Outcome, Schedule, Sim, SimConfig,
    Target, Trigger, run_schedule,
};

/// A scenario's configuration. Restarts draw increasing incarnations here
/// (random ones hit a separate bug, pinned in `regressions.rs`).
fn cfg(seed: u64, servers: usize) -> SimConfig {
    let mut cfg = SimConfig::new(seed, FaultClass::None, Some(servers));
    cfg.monotonic_incarnations = true;
    cfg
}

fn fault(at_ms: u64, kind: FaultKind) -> Fault {
    Fault {
        at: at_ms * MS,
        kind,
    }
}

fn cut(a: usize, b: usize, len_ms: u64) -> FaultKind {
    FaultKind::Cut {
        dirs: vec![(a, b), (b, a)],
        len: len_ms * MS,
        label: CutLabel::Symmetric,
    }
}

fn trigger(on: MsgKind, from: Option<usize>, action: Action) -> Trigger {
    Trigger {
        on,
        from,
        skip: 0,
        action,
        window: 1500 * MS,
    }
}

/// Runs and asserts that every promise held.
fn passes(cfg: SimConfig, schedule: Schedule) -> Outcome {
    let out = run_schedule(cfg, schedule);
    assert!(
        out.passed(),
        "violations:\n{}schedule: {:?}",
        out.report(10),
        out.schedule
    );
    out
}

fn fired(out: &Outcome, at_least: u64) {
    assert!(
        out.stats.fired >= at_least,
        "triggers fired {} < {at_least}",
        out.stats.fired
    );
}

/// SERVER_LOST views a server's watchers were given after `after`.
fn server_lost_after(out: &Outcome, server: usize, after: u64) -> usize {
    let h = &out.history;
    h.incs
        .iter()
        .filter(|i| i.server == server)
        .filter_map(|i| i.watcher)
        .flat_map(|w| h.sessions[w].events.iter())
        .filter(|e| matches!(e, Rec::View { gv, at, .. } if *at > after && gv.change == msgc_core::ChangeKind::ServerLost))
        .count()
}

#[test]
fn issue_1_proposer_dies_mid_install() {
    let schedule = Schedule {
        faults: vec![
            fault(
                600,
                FaultKind::Crash {
                    server: 3,
                    down: 1000 * MS,
                },
            ),
            fault(600, FaultKind::Arm(0)),
        ],
        triggers: vec![trigger(
            MsgKind::Install,
            None,
            Action::Crash(Target::Sender, 400 * MS),
        )],
    };
    let out = passes(cfg(11, 4), schedule);
    fired(&out, 1);
}

#[test]
fn issue_2_member_mid_flush_switches_to_a_lower_proposer() {
    // `a` pauses, `b` proposes {b,c,d}; as `c` answers, `a` comes back
    // and proposes {a,b,c,d} with a lower name.
    let schedule = Schedule {
        faults: vec![
            fault(
                600,
                FaultKind::Pause {
                    server: 0,
                    len: 900 * MS,
                },
            ),
            fault(600, FaultKind::Arm(0)),
        ],
        triggers: vec![trigger(
            MsgKind::Flush,
            Some(2),
            Action::Release(Target::Server(0)),
        )],
    };
    let out = passes(cfg(12, 4), schedule);
    fired(&out, 1);
}

#[test]
fn issue_3_non_transitive_cut_does_not_stall() {
    let cfg = cfg(13, 3);
    let schedule = Schedule {
        faults: vec![fault(600, cut(0, 2, 1500))],
        triggers: vec![],
    };
    let mut sim = Sim::new(cfg.clone(), schedule.clone());
    sim.run_until(1600 * MS);
    for s in 0..3 {
        let core = sim.core(s).expect("runs");
        assert!(core.is_active(), "server {s} stalls in {:?}", core.view());
    }
    let names = |s: usize| -> Vec<String> {
        sim.core(s)
            .unwrap()
            .view()
            .members
            .iter()
            .map(|m| m.name.to_string())
            .collect()
    };
    assert_eq!(names(0), ["a", "b"]);
    assert_eq!(names(1), ["a", "b"]);
    assert_eq!(names(2), ["c"]);
    sim.run();
    let out = msgc_sim::runner_finish(sim, cfg, schedule);
    assert!(out.passed(), "{}", out.report(10));
}

#[test]
fn issue_4_resubmitted_ops_are_not_duplicated() {
    let mut cfg = cfg(14, 3);
    cfg.think = (MS, 4 * MS);
    let schedule = Schedule {
        faults: vec![
            fault(
                800,
                FaultKind::Crash {
                    server: 1,
                    down: 300 * MS,
                },
            ),
            fault(800, FaultKind::Arm(0)),
            fault(
                1500,
                FaultKind::Drop {
                    a: 0,
                    b: 2,
                    both: true,
                },
            ),
            fault(1500, FaultKind::Arm(1)),
        ],
        triggers: vec![
            trigger(
                MsgKind::Flush,
                None,
                Action::DropLinks(Target::Receiver, true),
            ),
            trigger(
                MsgKind::Install,
                None,
                Action::DropLinks(Target::Sender, false),
            ),
        ],
    };
    let out = passes(cfg, schedule);
    fired(&out, 1);
}

#[test]
fn issue_5_gid_never_goes_backwards_after_a_merge() {
    let mut cfg = cfg(15, 4);
    cfg.think = (MS, 6 * MS);
    let dirs = msgc_sim::faults::split(&[0, 0, 1, 1]);
    let schedule = Schedule {
        faults: vec![fault(
            500,
            FaultKind::Cut {
                dirs,
                len: 1200 * MS,
                label: CutLabel::Partition,
            },
        )],
        triggers: vec![],
    };
    passes(cfg, schedule);
}

#[test]
fn issue_6_a_reconnected_name_is_not_credited_with_old_publishes() {
    let mut cfg = cfg(16, 3);
    cfg.reconnect_permille = 300;
    let out = passes(cfg, Schedule::default());
    let reused = out
        .history
        .sessions
        .iter()
        .filter(|s| s.client.is_some())
        .count();
    assert!(reused > 20, "only {reused} sessions");
}

#[test]
fn issue_7_merge_coinciding_with_a_server_loss_announces_server_lost() {
    let dirs = msgc_sim::faults::split(&[0, 0, 1, 1]);
    let schedule = Schedule {
        faults: vec![
            fault(
                500,
                FaultKind::Cut {
                    dirs,
                    len: 1000 * MS,
                    label: CutLabel::Partition,
                },
            ),
            fault(
                1500,
                FaultKind::Crash {
                    server: 1,
                    down: 2000 * MS,
                },
            ),
        ],
        triggers: vec![],
    };
    let out = passes(cfg(17, 4), schedule);
    assert!(
        server_lost_after(&out, 0, 1500 * MS) > 0,
        "a never saw SERVER_LOST after the crash"
    );
}

#[test]
fn issue_8_large_payloads_keep_flush_and_install_small() {
    let mut cfg = cfg(18, 3);
    cfg.payload = (200_000, 400_000);
    let schedule = Schedule {
        faults: vec![
            fault(
                700,
                FaultKind::Crash {
                    server: 2,
                    down: 400 * MS,
                },
            ),
            fault(
                1500,
                FaultKind::Pause {
                    server: 0,
                    len: 400 * MS,
                },
            ),
        ],
        triggers: vec![],
    };
    let out = passes(cfg, schedule);
    let h = &out.history;
    assert!(
        h.max_flush_weight > 0 && h.max_install_weight > 0,
        "no view change seen"
    );
    assert!(
        h.max_flush_weight < 64 * 1024,
        "flush weighs {}",
        h.max_flush_weight
    );
    assert!(
        h.max_install_weight < 64 * 1024,
        "install weighs {}",
        h.max_install_weight
    );
}

#[test]
fn ref_1_coordinator_dies_after_sending_an_op_to_one_member() {
    let schedule = Schedule {
        faults: vec![fault(800, FaultKind::Arm(0))],
        triggers: vec![trigger(
            MsgKind::Sequenced,
            Some(0),
            Action::Crash(Target::Sender, 500 * MS),
        )],
    };
    let out = passes(cfg(21, 3), schedule);
    fired(&out, 1);
}

#[test]
fn ref_2_coordinator_dies_after_a_prepare_and_after_a_partial_commit() {
    let schedule = Schedule {
        faults: vec![
            fault(
                700,
                FaultKind::Crash {
                    server: 3,
                    down: 300 * MS,
                },
            ),
            fault(700, FaultKind::Arm(0)),
            fault(
                1300,
                FaultKind::Crash {
                    server: 2,
                    down: 300 * MS,
                },
            ),
            fault(1300, FaultKind::Arm(1)),
        ],
        triggers: vec![
            trigger(
                MsgKind::Propose,
                Some(0),
                Action::Crash(Target::Sender, 200 * MS),
            ),
            trigger(
                MsgKind::Commit,
                None,
                Action::Crash(Target::Sender, 300 * MS),
            ),
        ],
    };
    let out = passes(cfg(22, 4), schedule);
    fired(&out, 2);
}

#[test]
fn ref_3_next_proposer_dies_during_recovery() {
    let schedule = Schedule {
        faults: vec![
            fault(
                700,
                FaultKind::Crash {
                    server: 0,
                    down: 800 * MS,
                },
            ),
            fault(700, FaultKind::Arm(0)),
        ],
        triggers: vec![trigger(
            MsgKind::Install,
            Some(1),
            Action::Crash(Target::Sender, 300 * MS),
        )],
    };
    let out = passes(cfg(23, 4), schedule);
    fired(&out, 1);
}

#[test]
fn ref_4_coordinator_pauses_past_the_timeout_then_resumes() {
    let schedule = Schedule {
        faults: vec![fault(
            700,
            FaultKind::Pause {
                server: 0,
                len: 500 * MS,
            },
        )],
        triggers: vec![],
    };
    passes(cfg(24, 3), schedule);
}

#[test]
fn ref_5_killed_and_restarted_before_anyone_suspects() {
    let schedule = Schedule {
        faults: vec![fault(
            700,
            FaultKind::Crash {
                server: 1,
                down: 20 * MS,
            },
        )],
        triggers: vec![],
    };
    passes(cfg(25, 3), schedule);
}

#[test]
fn ref_6_permanent_a_c_cut_then_heal() {
    let schedule = Schedule {
        faults: vec![fault(500, cut(0, 2, 1900))],
        triggers: vec![],
    };
    passes(cfg(26, 3), schedule);
}

#[test]
fn ref_7_one_way_loss_on_a_link() {
    let kind = FaultKind::Cut {
        dirs: vec![(0, 1)],
        len: 800 * MS,
        label: CutLabel::OneWay,
    };
    passes(
        cfg(27, 3),
        Schedule {
            faults: vec![fault(700, kind)],
            triggers: vec![],
        },
    );
}

#[test]
fn ref_8_three_two_partition_with_publishes_then_merge() {
    let dirs = msgc_sim::faults::split(&[0, 0, 0, 1, 1]);
    let kind = FaultKind::Cut {
        dirs,
        len: 1000 * MS,
        label: CutLabel::Partition,
    };
    let out = passes(
        cfg(28, 5),
        Schedule {
            faults: vec![fault(600, kind)],
            triggers: vec![],
        },
    );
    assert!(out.stats.converged_at.is_some());
}

#[test]
fn ref_9_resubmission_with_reconnects_and_replaced_links() {
    let mut cfg = cfg(29, 3);
    cfg.think = (MS, 4 * MS);
    let faults = (0..8)
        .map(|k| {
            fault(
                600 + 150 * k,
                FaultKind::Drop {
                    a: (k % 3) as usize,
                    b: ((k + 1) % 3) as usize,
                    both: k % 2 == 0,
                },
            )
        })
        .collect();
    passes(
        cfg,
        Schedule {
            faults,
            triggers: vec![],
        },
    );
}

#[test]
fn ref_10_a_server_joins_while_the_coordinator_crashes() {
    let schedule = Schedule {
        faults: vec![
            fault(
                1,
                FaultKind::Crash {
                    server: 3,
                    down: 800 * MS,
                },
            ),
            fault(790, FaultKind::Arm(0)),
        ],
        triggers: vec![trigger(
            MsgKind::Propose,
            Some(0),
            Action::Crash(Target::Sender, 500 * MS),
        )],
    };
    let out = passes(cfg(30, 4), schedule);
    fired(&out, 1);
}

#[test]
fn ref_11_connections_reset_during_recovery() {
    let schedule = Schedule {
        faults: vec![
            fault(
                700,
                FaultKind::Crash {
                    server: 2,
                    down: 600 * MS,
                },
            ),
            fault(700, FaultKind::Arm(0)),
            fault(700, FaultKind::Arm(1)),
        ],
        triggers: vec![
            trigger(
                MsgKind::Flush,
                None,
                Action::DropLinks(Target::Receiver, true),
            ),
            trigger(
                MsgKind::Install,
                None,
                Action::DropLinks(Target::Sender, true),
            ),
        ],
    };
    let out = passes(cfg(31, 4), schedule);
    fired(&out, 1);
}

#[test]
fn ref_12_liveness_after_healing_mixed_faults() {
    for seed in 0..3 {
        let mut cfg = SimConfig::new(9000 + seed, FaultClass::Mixed, Some(5));
        cfg.monotonic_incarnations = true;
        let out = msgc_sim::run_seed(cfg);
        let bound = out.cfg.heal_at + out.cfg.liveness_bound;
        assert!(
            out.stats.converged_at.is_some_and(|t| t <= bound),
            "seed {}: no convergence",
            out.cfg.seed
        );
        assert!(
            out.passed(),
            "seed {}:\n{}{}",
            out.cfg.seed,
            out.report(10),
            out.replay_command()
        );
    }
}

/// A healing split whose links come up one by one must not pull a server out
/// of the view it shares with linked peers it never lost (rule 9's blocks).
/// Sides {a, d} and {b, c, e}; b's links to the other side heal 500 ms after
/// the rest. On the core before blocks, c and e joined a and d as soon as
/// their own links were up and left b alone: b, never cut from c or e,
/// delivered another list than theirs (real processes, chaos seed 102).
#[test]
fn split_heal_keeps_linked_view_mates_together() {
    let split = msgc_sim::faults::split(&[0, 1, 1, 0, 1]);
    let late = vec![(0, 1), (1, 0), (3, 1), (1, 3)];
    let schedule = Schedule {
        faults: vec![
            fault(
                500,
                FaultKind::Cut {
                    dirs: split,
                    len: 1000 * MS,
                    label: CutLabel::Partition,
                },
            ),
            fault(
                500,
                FaultKind::Cut {
                    dirs: late,
                    len: 1500 * MS,
                    label: CutLabel::Partition,
                },
            ),
        ],
        triggers: vec![],
    };
    let out = passes(cfg(40, 5), schedule);
    let name = |s: usize| msgc_sim::srv_name(s);
    // From when the split has settled (b, c, e in one view) on, every view
    // b, c or e starts holds all three.
    let settled = 1000 * MS;
    for inc in out
        .history
        .incs
        .iter()
        .filter(|i| [1, 2, 4].contains(&i.server))
    {
        for (at, view) in inc.views.iter().filter(|(at, _)| *at >= settled) {
            let names: Vec<String> = view.members.iter().map(|m| m.name.to_string()).collect();
            for mate in [1, 2, 4] {
                assert!(
                    names.contains(&name(mate)),
                    "{} started a view without {} at {} ms: {names:?}",
                    name(inc.server),
                    name(mate),
                    at / MS
                );
            }
        }
    }
    assert!(out.stats.converged_at.is_some());
}
