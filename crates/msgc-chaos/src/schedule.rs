//! Seeded fault schedules: which servers are faulted, which faults hit them,
//! for how long. Pure: the same seed and parameters give the same schedule.
//!
//! **The link-cut rule.** Single-link cuts (symmetric, one-way,
//! non-transitive) only ever cut a link between two *faulted* servers. A split
//! puts some faulted servers on one side and every never-faulted server on the
//! other. So two never-faulted servers are never separated from each other
//! (every link between them stays up for the whole run), which is what lets a
//! run demand that their subscribers deliver exactly the same list.

use std::fmt;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// What a schedule is generated from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    /// Servers in the cluster (`s1..sN`).
    pub servers: usize,
    /// How many of them are faulted (chosen by the seed).
    pub faulted: usize,
    /// Faults each faulted server takes part in, at least.
    pub faults_per_server: usize,
    /// The servers' `keepalive_interval`; a silent link is cut after three.
    pub keepalive: Duration,
    /// Fault classes to draw from ([`CLASSES`] names); empty means all.
    pub classes: Vec<String>,
}

/// Every fault class, as [`Fault::class`] names them.
pub const CLASSES: [&str; 7] = [
    "kill",
    "pause",
    "cascade",
    "cut",
    "one-way",
    "non-transitive",
    "split",
];

/// The class of each draw of [`pick`] (pause has two: short and long).
const DRAWS: [&str; 8] = [
    "kill",
    "pause",
    "pause",
    "cascade",
    "cut",
    "one-way",
    "split",
    "non-transitive",
];

impl Params {
    /// The keepalive timeout: a peer silent this long is dropped.
    pub fn timeout(&self) -> Duration {
        self.keepalive * 3
    }
}

/// One side of a one-way cut: `from` can no longer send to `to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OneWay {
    /// The server whose packets are dropped.
    pub from: usize,
    /// The server they were meant for.
    pub to: usize,
}

/// What a cascade does to one server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hit {
    /// SIGKILL; restarted when the cascade heals.
    Kill,
    /// SIGSTOP; SIGCONT when the cascade heals.
    Pause,
}

/// One fault (server indexes are 0-based: index `i` is server `s{i+1}`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL, stay down `down`, then restart (same name, new incarnation).
    Kill {
        /// The server.
        server: usize,
        /// Time between the kill and the restart.
        down: Duration,
    },
    /// SIGSTOP for `hold`, then SIGCONT; shorter or longer than the timeout.
    Pause {
        /// The server.
        server: usize,
        /// Time stopped.
        hold: Duration,
    },
    /// A first hit, then a second one on another server as soon as a view
    /// change is seen in progress; both heal after `hold`.
    Cascade {
        /// The first server and what hits it.
        first: (usize, Hit),
        /// The second server and what hits it.
        second: (usize, Hit),
        /// Time from the second hit to the heal of both.
        hold: Duration,
    },
    /// One link cut, both directions (`one_way: None`) or one.
    Cut {
        /// One end.
        a: usize,
        /// The other end.
        b: usize,
        /// Only this direction is cut, if set.
        one_way: Option<OneWay>,
        /// How long the cut lasts.
        hold: Duration,
    },
    /// `a`–`c` cut (both ways) while `witness` reaches both, held for several
    /// timeouts: connectivity that is not transitive.
    NonTransitive {
        /// One end of the cut link.
        a: usize,
        /// The other end.
        c: usize,
        /// A faulted server that still reaches both.
        witness: usize,
        /// How long the cut lasts.
        hold: Duration,
    },
    /// Every link between `side` (faulted servers only) and the other servers cut.
    Split {
        /// The servers cut off together; all never-faulted ones are on the other side.
        side: Vec<usize>,
        /// How long the split lasts.
        hold: Duration,
    },
}

/// A link cut as the firewall applies it: the lower-numbered server dials
/// (its name is lower), the higher one accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkCut {
    /// The dialling server (lower index).
    pub dialer: usize,
    /// The accepting server (higher index).
    pub acceptor: usize,
    /// Drop what the dialer sends (conntrack direction original).
    pub drop_original: bool,
    /// Drop what the acceptor sends (conntrack direction reply).
    pub drop_reply: bool,
}

impl LinkCut {
    /// Both directions of the link between `a` and `b`.
    pub fn both(a: usize, b: usize) -> Self {
        Self {
            dialer: a.min(b),
            acceptor: a.max(b),
            drop_original: true,
            drop_reply: true,
        }
    }

    /// Only `from` → `to`.
    pub fn one_way(from: usize, to: usize) -> Self {
        Self {
            dialer: from.min(to),
            acceptor: from.max(to),
            drop_original: from < to,
            drop_reply: from > to,
        }
    }
}

impl Fault {
    /// The servers this fault counts for (a link cut counts for both ends, a
    /// split for every server on the cut-off side, a non-transitive cut not
    /// for its witness).
    pub fn servers(&self) -> Vec<usize> {
        match self {
            Fault::Kill { server, .. } | Fault::Pause { server, .. } => vec![*server],
            Fault::Cascade { first, second, .. } => vec![first.0, second.0],
            Fault::Cut { a, b, .. } => vec![*a, *b],
            Fault::NonTransitive { a, c, .. } => vec![*a, *c],
            Fault::Split { side, .. } => side.clone(),
        }
    }

    /// The link cuts it makes (empty for process faults); `n` is the cluster size.
    pub fn links(&self, n: usize) -> Vec<LinkCut> {
        match self {
            Fault::Cut {
                a,
                b,
                one_way: None,
                ..
            } => vec![LinkCut::both(*a, *b)],
            Fault::Cut {
                one_way: Some(w), ..
            } => vec![LinkCut::one_way(w.from, w.to)],
            Fault::NonTransitive { a, c, .. } => vec![LinkCut::both(*a, *c)],
            Fault::Split { side, .. } => side
                .iter()
                .flat_map(|s| {
                    (0..n)
                        .filter(|o| !side.contains(o))
                        .map(move |o| LinkCut::both(*s, o))
                })
                .collect(),
            Fault::Kill { .. } | Fault::Pause { .. } | Fault::Cascade { .. } => Vec::new(),
        }
    }

    /// A short name of its class, for counting.
    pub fn class(&self) -> &'static str {
        match self {
            Fault::Kill { .. } => "kill",
            Fault::Pause { .. } => "pause",
            Fault::Cascade { .. } => "cascade",
            Fault::Cut { one_way: None, .. } => "cut",
            Fault::Cut { .. } => "one-way",
            Fault::NonTransitive { .. } => "non-transitive",
            Fault::Split { .. } => "split",
        }
    }
}

/// Server `i`'s name.
pub fn name(i: usize) -> String {
    format!("s{}", i + 1)
}

fn ms(d: &Duration) -> u128 {
    d.as_millis()
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hit = |h: &Hit| match h {
            Hit::Kill => "kill",
            Hit::Pause => "pause",
        };
        match self {
            Fault::Kill { server, down } => {
                write!(f, "kill {} (down {}ms)", name(*server), ms(down))
            }
            Fault::Pause { server, hold } => {
                write!(f, "pause {} for {}ms", name(*server), ms(hold))
            }
            Fault::Cascade {
                first,
                second,
                hold,
            } => write!(
                f,
                "cascade: {} {}, then {} {} during the view change, heal after {}ms",
                hit(&first.1),
                name(first.0),
                hit(&second.1),
                name(second.0),
                ms(hold)
            ),
            Fault::Cut {
                a,
                b,
                one_way: None,
                hold,
            } => write!(f, "cut {}<->{} for {}ms", name(*a), name(*b), ms(hold)),
            Fault::Cut {
                one_way: Some(w),
                hold,
                ..
            } => write!(
                f,
                "cut {}->{} one-way for {}ms",
                name(w.from),
                name(w.to),
                ms(hold)
            ),
            Fault::NonTransitive {
                a,
                c,
                witness,
                hold,
            } => write!(
                f,
                "non-transitive: cut {}<->{} while {} reaches both, for {}ms",
                name(*a),
                name(*c),
                name(*witness),
                ms(hold)
            ),
            Fault::Split { side, hold } => {
                let names: Vec<String> = side.iter().map(|s| name(*s)).collect();
                write!(
                    f,
                    "split [{}] from the rest for {}ms",
                    names.join(","),
                    ms(hold)
                )
            }
        }
    }
}

/// One step of a schedule: a fault, then a pause before the next one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The fault.
    pub fault: Fault,
    /// Wait after it has healed (and the view re-formed or the bound passed).
    pub gap: Duration,
}

/// A whole run's faults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// The seed it was made from.
    pub seed: u64,
    /// The parameters.
    pub params: Params,
    /// Faulted servers, ascending.
    pub faulted: Vec<usize>,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

impl Schedule {
    /// Servers never faulted, ascending.
    pub fn never_faulted(&self) -> Vec<usize> {
        (0..self.params.servers)
            .filter(|s| !self.faulted.contains(s))
            .collect()
    }

    /// How many faults each server takes part in.
    pub fn counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.params.servers];
        for step in &self.steps {
            for s in step.fault.servers() {
                counts[s] += 1;
            }
        }
        counts
    }

    /// Generates the schedule of `seed`.
    pub fn generate(seed: u64, params: &Params) -> Schedule {
        let mut rng = StdRng::seed_from_u64(seed);
        let n = params.servers;
        let mut all: Vec<usize> = (0..n).collect();
        all.shuffle(&mut rng);
        let mut faulted: Vec<usize> = all[..params.faulted.min(n)].to_vec();
        faulted.sort_unstable();
        let mut counts = vec![0usize; n];
        let mut steps = Vec::new();
        // Each step raises the count of a least-faulted server, so this ends.
        while faulted
            .iter()
            .any(|s| counts[*s] < params.faults_per_server)
        {
            let fault = pick(&mut rng, params, &faulted, &counts);
            for s in fault.servers() {
                counts[s] += 1;
            }
            let gap = Duration::from_millis(rng.random_range(0..=300));
            steps.push(Step { fault, gap });
        }
        Schedule {
            seed,
            params: params.clone(),
            faulted,
            steps,
        }
    }
}

/// A random duration between `lo` and `hi` times `unit`.
fn span(rng: &mut StdRng, unit: Duration, lo: f64, hi: f64) -> Duration {
    unit.mul_f64(rng.random_range(lo..=hi))
}

/// One random fault whose first server is a least-faulted one.
fn pick(rng: &mut StdRng, params: &Params, faulted: &[usize], counts: &[usize]) -> Fault {
    let least = faulted.iter().map(|s| counts[*s]).min().unwrap_or(0);
    let candidates: Vec<usize> = faulted
        .iter()
        .copied()
        .filter(|s| counts[*s] == least)
        .collect();
    let a = candidates[rng.random_range(0..candidates.len())];
    let others: Vec<usize> = faulted.iter().copied().filter(|s| *s != a).collect();
    let t = params.timeout();
    // Classes needing a second faulted server are skipped when there is
    // none; a draw of an excluded class is drawn again (with every class
    // allowed, the draws are those of a schedule without the option).
    let allowed =
        |d: usize| params.classes.is_empty() || params.classes.iter().any(|c| c == DRAWS[d]);
    let range = if others.is_empty() { 0..3 } else { 0..8 };
    if !range.clone().any(allowed) {
        return Fault::Kill {
            server: a,
            down: span(rng, t, 0.1, 2.0),
        };
    }
    let class = loop {
        let d = rng.random_range(range.clone());
        if allowed(d) {
            break d;
        }
    };
    let other = |rng: &mut StdRng| others[rng.random_range(0..others.len().max(1))];
    match class {
        0 => Fault::Kill {
            server: a,
            down: span(rng, t, 0.1, 2.0),
        },
        1 => Fault::Pause {
            server: a,
            hold: span(rng, t, 0.2, 0.6),
        },
        2 => Fault::Pause {
            server: a,
            hold: span(rng, t, 1.5, 4.0),
        },
        3 => {
            let hit = |rng: &mut StdRng| {
                if rng.random_bool(0.5) {
                    Hit::Kill
                } else {
                    Hit::Pause
                }
            };
            Fault::Cascade {
                first: (a, hit(rng)),
                second: (other(rng), hit(rng)),
                hold: span(rng, t, 1.0, 2.5),
            }
        }
        4 => Fault::Cut {
            a,
            b: other(rng),
            one_way: None,
            hold: span(rng, t, 0.5, 3.0),
        },
        5 => {
            let b = other(rng);
            let (from, to) = if rng.random_bool(0.5) { (a, b) } else { (b, a) };
            Fault::Cut {
                a,
                b,
                one_way: Some(OneWay { from, to }),
                hold: span(rng, t, 1.0, 3.0),
            }
        }
        6 => split(rng, t, a, &others),
        _ => non_transitive(rng, t, a, &others),
    }
}

fn split(rng: &mut StdRng, t: Duration, a: usize, others: &[usize]) -> Fault {
    let mut side = vec![a];
    for o in others {
        if rng.random_bool(0.4) {
            side.push(*o);
        }
    }
    side.sort_unstable();
    Fault::Split {
        side,
        hold: span(rng, t, 1.5, 4.0),
    }
}

fn non_transitive(rng: &mut StdRng, t: Duration, a: usize, others: &[usize]) -> Fault {
    let mut pool = others.to_vec();
    pool.shuffle(rng);
    let c = pool[0];
    // The witness is another faulted server if there is one, else any
    // server: every server but a and c reaches both.
    let witness = pool.get(1).copied().unwrap_or(c);
    Fault::NonTransitive {
        a,
        c,
        witness,
        hold: span(rng, t, 3.0, 6.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Params {
        Params {
            servers: 5,
            faulted: 3,
            faults_per_server: 5,
            keepalive: Duration::from_millis(250),
            classes: Vec::new(),
        }
    }

    #[test]
    fn same_seed_same_schedule() {
        assert_eq!(
            Schedule::generate(7, &params()),
            Schedule::generate(7, &params())
        );
        assert_ne!(
            Schedule::generate(7, &params()).steps,
            Schedule::generate(8, &params()).steps
        );
    }

    #[test]
    fn every_faulted_server_gets_enough_faults_and_only_they_do() {
        for seed in 0..300 {
            let s = Schedule::generate(seed, &params());
            assert_eq!(s.faulted.len(), 3);
            let counts = s.counts();
            for f in &s.faulted {
                assert!(counts[*f] >= 5, "seed {seed}: {counts:?}");
            }
            for n in s.never_faulted() {
                assert_eq!(counts[n], 0, "seed {seed}");
            }
        }
    }

    #[test]
    fn never_faulted_servers_are_never_separated() {
        for seed in 0..300 {
            let s = Schedule::generate(seed, &params());
            let never = s.never_faulted();
            for step in &s.steps {
                for cut in step.fault.links(5) {
                    assert!(cut.dialer < cut.acceptor);
                    assert!(cut.drop_original || cut.drop_reply);
                    let both_never = never.contains(&cut.dialer) && never.contains(&cut.acceptor);
                    assert!(!both_never, "seed {seed}: {}", step.fault);
                    let single = !matches!(step.fault, Fault::Split { .. });
                    if single {
                        assert!(s.faulted.contains(&cut.dialer), "seed {seed}");
                        assert!(s.faulted.contains(&cut.acceptor), "seed {seed}");
                    }
                }
                if let Fault::Split { side, .. } = &step.fault {
                    assert!(side.iter().all(|x| s.faulted.contains(x)));
                }
            }
        }
    }

    #[test]
    fn every_class_appears() {
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..50 {
            for step in Schedule::generate(seed, &params()).steps {
                seen.insert(step.fault.class());
            }
        }
        assert_eq!(seen.len(), 7, "{seen:?}");
    }

    #[test]
    fn link_cut_directions() {
        assert_eq!(
            LinkCut::one_way(3, 1),
            LinkCut {
                dialer: 1,
                acceptor: 3,
                drop_original: false,
                drop_reply: true
            }
        );
        assert!(LinkCut::one_way(1, 3).drop_original);
        let split = Fault::Split {
            side: vec![0, 2],
            hold: Duration::ZERO,
        };
        assert_eq!(split.links(4).len(), 4);
    }

    #[test]
    fn classes_restrict_the_draws() {
        let p = Params {
            classes: vec!["cut".into(), "split".into()],
            ..params()
        };
        for seed in 0..50 {
            let s = Schedule::generate(seed, &p);
            assert!(
                s.steps
                    .iter()
                    .all(|st| ["cut", "split"].contains(&st.fault.class()))
            );
            assert!(s.faulted.iter().all(|f| s.counts()[*f] >= 5));
        }
        for (i, d) in DRAWS.iter().enumerate() {
            assert!(CLASSES.contains(d), "draw {i}");
        }
    }

    #[test]
    fn one_faulted_server_gets_process_faults_only() {
        let p = Params {
            faulted: 1,
            ..params()
        };
        for seed in 0..50 {
            for step in Schedule::generate(seed, &p).steps {
                assert!(step.fault.links(5).is_empty());
                assert!(!matches!(step.fault, Fault::Cascade { .. }));
            }
        }
    }
}
