//! Every bug the simulator found, pinned as a seed (replay any with the
//! command in its message). They fail until the bug is fixed.

use msgc_sim::{FaultClass, SimConfig, run_seed};

fn pinned(seed: u64, class: FaultClass, servers: usize, monotonic: bool) {
    let mut cfg = SimConfig::new(seed, class, Some(servers));
    cfg.monotonic_incarnations = monotonic;
    let out = run_seed(cfg);
    assert!(
        out.passed(),
        "seed {seed}:\n{}replay: {}",
        out.report(8),
        out.replay_command()
    );
}

/// A restarted server whose random incarnation is below its previous
/// one: peers keep the old incarnation's row (rows compare
/// `(incarnation, version)`), so the components never include it and the
/// cluster stays split after the heal (liveness).
#[test]
fn restart_with_a_lower_incarnation_rejoins() {
    pinned(8, FaultClass::Cascade, 3, false);
    pinned(16, FaultClass::Crash, 3, false);
}

/// `c` installed v6@a = {a, c} leaving v5@b at cut 210 (never started);
/// v7@a = {a, b, c} then cut `b`, the only member left "in" v5@b, at its
/// own received point 212: `b` and `c` both went v5@b -> v7@a having
/// delivered different sets of v5@b (virtual synchrony). A view's cut,
/// once used by an install, must be reused for every member leaving it.
#[test]
fn a_views_cut_is_the_same_for_every_member_leaving_it() {
    pinned(45, FaultClass::Partition, 3, true);
}

/// After a merge the new table's member order ("the proposer's side
/// first") differs from a side's old order, with no announcement or under
/// a SERVER_LOST listing the old order: servers in the same view hold one
/// (group, gid) with different member orders (seniority, leader).
#[test]
fn servers_in_one_view_agree_on_member_order() {
    pinned(17, FaultClass::Pause, 3, true);
}

/// An op above one side's cut but within another's is delivered by the
/// second side in V, and resubmitted by its origin on the first side and
/// delivered there in the next view: one op, two server views, and the
/// relative order of two such ops differs between sides (agreed order).
#[test]
fn an_op_is_delivered_in_one_view_by_everyone() {
    pinned(3, FaultClass::OneWay, 3, true);
}

/// `a`'s link to `d` dropped (seen by `a` only) and `a` re-dialled while it
/// waited for rows to settle: the view went on over the new link although
/// the ops sent on the old one were lost to `d`, so the stable point never
/// moved again and every window ran dry (liveness). A view cannot outlive a
/// dropped or replaced link to one of its members.
#[test]
fn a_dropped_link_to_a_member_always_changes_the_view() {
    pinned(11, FaultClass::Drop, 4, false);
}

/// An op in doubt at a partition was delivered by one side at its cut and by
/// its origin's side after resubmission (one op in two views): now every op
/// above a side's known stable point has one owner (rule 14a).
#[test]
fn an_op_in_doubt_is_judged_from_its_earlier_view() {
    pinned(1011858, FaultClass::Cascade, 3, false);
}

/// Checker bugs (the cores were right): a session whose join was sequenced
/// after a liveness probe rightly never gets that probe, but the liveness
/// check required it of every member of the watcher's last view.
#[test]
fn a_session_that_joined_after_a_probe_is_not_owed_it() {
    pinned(13272, FaultClass::Cut, 5, false);
    pinned(8822, FaultClass::Cut, 3, false);
}

/// Checker bug: a server whose window was still full of ops from before the
/// heal had no permit for its probe at the instant the one view formed; the
/// window drains as that view delivers (back-pressure, not a stall), so the
/// probe waits for a permit within the bound.
#[test]
fn a_probe_waits_for_a_window_permit() {
    pinned(6969, FaultClass::Mixed, 4, false);
}

/// A proposer cut off right after sending its install (seed 2348: `a` of
/// v16; seed 6379 likewise) had applied it at once and, alone, rolled
/// forward through it into a view of its own: it delivered another
/// server's op in doubt at the old view's cut, which that server's side
/// dropped and resubmitted, so one op was delivered in two views and out
/// of agreed order. An install is now held until its commit, and nothing
/// is rolled forward: a held install delivered nothing [rules 14b, 17].
#[test]
fn an_install_delivers_nothing_before_its_commit() {
    pinned(2348, FaultClass::Cascade, 9, false);
    pinned(6379, FaultClass::Mixed, 7, false);
    pinned(17918, FaultClass::Cascade, 8, false);
}

/// A side reusing another side's published trim also reused its kept
/// origins, which did not include the side's own servers: `b` dropped its
/// own op at the cut (above the trim's stable point) while the other side
/// delivered it (below its own, higher stable point), and `b` resubmitted
/// it (one op, two views). A cut keeps above its stable point the ops of
/// its own side's servers, always [rule 14a].
#[test]
fn a_side_always_keeps_its_own_ops_at_its_cut() {
    pinned(10599, FaultClass::Mixed, 8, false);
    pinned(18245, FaultClass::Partition, 6, false);
}

/// Found while moving to held installs: a member rolled through a held
/// install with a wider origin filter than the install's own plan used,
/// so it delivered a join the install's table did not have, and two group
/// views of g0 carried gid 34 at one server.
#[test]
fn a_gid_names_one_member_list() {
    pinned(4066, FaultClass::Crash, 3, false);
}

/// v14@a committed at `a` and `f` (they delivered v13 up to 174) but its
/// commit never reached `e`; `e` then joined `b`, which held only up to
/// 135 of v13, so their side cut v13 at 135 and `e` resubmitted its own op
/// at 151 that `a` and `f` had delivered (one op, two views). The plan now
/// has `e` send `b` the ops up to the held install's cut first, and takes
/// the highest cut any held install gave the view [rule 14c].
#[test]
fn a_lagging_member_gets_the_ops_of_a_held_installs_cut() {
    pinned(20525, FaultClass::Partition, 7, false);
}

/// `d`'s submit of its op 30 was lost on a link only `a` (the coordinator)
/// saw drop; its op 31 came over the new link and was numbered. With op
/// transfer, `d` then got op 31 at its cut without 30: its own ops out of
/// order, and an acknowledgement for the wrong publish. The coordinator
/// now numbers an origin's ops only without a gap [rule 2].
#[test]
fn a_coordinator_numbers_an_origins_ops_without_a_gap() {
    pinned(13561, FaultClass::Drop, 6, false);
}
