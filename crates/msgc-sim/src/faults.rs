//! Fault schedules: what happens to which server when, drawn from the seed
//! per class, or written by hand (scenarios).

use std::fmt;

use crate::config::{FaultClass, MS, SimConfig};
use crate::rng::Rng;

/// One scheduled fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// When (virtual ns).
    pub at: u64,
    /// What.
    pub kind: FaultKind,
}

/// What a fault does. Servers are indices (`0` is `a`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// `a`'s end of its link to `b` drops; `b` hears of it only if `both`
    /// (otherwise it must notice by its own keepalive timeout).
    Drop {
        /// The end that drops.
        a: usize,
        /// The other end.
        b: usize,
        /// Whether `b` sees the drop.
        both: bool,
    },
    /// The directions `(from, to)` stop passing packets for `len` (queued
    /// messages wait, as TCP's would), then pass again.
    Cut {
        /// The directions cut.
        dirs: Vec<(usize, usize)>,
        /// For how long.
        len: u64,
        /// How it was made (for the log).
        label: CutLabel,
    },
    /// The server crashes (state lost) and restarts after `down` with a
    /// new incarnation.
    Crash {
        /// The server.
        server: usize,
        /// Down time.
        down: u64,
    },
    /// The server stops (no ticks, no input handled) for `len`.
    Pause {
        /// The server.
        server: usize,
        /// For how long.
        len: u64,
    },
    /// Arms trigger `0` of the schedule's triggers list (by index).
    Arm(usize),
}

/// How a cut was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CutLabel {
    /// Both directions of one pair.
    Symmetric,
    /// One direction.
    OneWay,
    /// A–C cut, B reaches both.
    NonTransitive,
    /// Sides of a partition.
    Partition,
    /// One server from everyone.
    Isolate,
}

/// The kind of peer message a trigger watches for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsgKind {
    /// A proposal.
    Propose,
    /// A member's answer (it is wedged).
    Flush,
    /// An install, proposer to member.
    Install,
    /// A member's install ack.
    InstallAck,
    /// The commit of a view.
    Commit,
    /// Sequenced ops (non-empty).
    Sequenced,
}

/// Who a triggered action hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The server that sent the watched message.
    Sender,
    /// The server it was sent to.
    Receiver,
    /// A fixed server.
    Server(usize),
}

/// What a trigger does when it fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Crash (the sender crashes right after that send: the rest of its
    /// turn's effects are lost) and restart after `down`.
    Crash(Target, u64),
    /// Pause for a while.
    Pause(Target, u64),
    /// Drop every link of the target (seen by both ends if `true`).
    DropLinks(Target, bool),
    /// Cut the target from everyone for a while.
    Isolate(Target, u64),
    /// Resume a paused target and heal its cuts.
    Release(Target),
}

/// A second fault that waits for a view-change message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trigger {
    /// The message watched for.
    pub on: MsgKind,
    /// Only sends by this server count (any if `None`).
    pub from: Option<usize>,
    /// Let this many matching sends pass first.
    pub skip: u32,
    /// What it does.
    pub action: Action,
    /// It stays armed this long after its `Arm` fault.
    pub window: u64,
}

/// A run's faults and triggers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Schedule {
    /// Faults in time order.
    pub faults: Vec<Fault>,
    /// Triggers, armed by [`FaultKind::Arm`].
    pub triggers: Vec<Trigger>,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |ns: u64| ns as f64 / MS as f64;
        let n = |s: usize| ((b'a' + s as u8) as char).to_string();
        write!(f, "@{:.1}ms ", ms(self.at))?;
        match &self.kind {
            FaultKind::Drop { a, b, both } => {
                write!(
                    f,
                    "drop {}-{} seen by {}",
                    n(*a),
                    n(*b),
                    if *both { "both" } else { "one" }
                )
            }
            FaultKind::Cut { dirs, len, label } => {
                let d: Vec<String> = dirs
                    .iter()
                    .map(|(x, y)| format!("{}>{}", n(*x), n(*y)))
                    .collect();
                write!(f, "cut {label:?} [{}] for {:.0}ms", d.join(" "), ms(*len))
            }
            FaultKind::Crash { server, down } => {
                write!(f, "crash {} for {:.0}ms", n(*server), ms(*down))
            }
            FaultKind::Pause { server, len } => {
                write!(f, "pause {} for {:.0}ms", n(*server), ms(*len))
            }
            FaultKind::Arm(t) => write!(f, "arm trigger {t}"),
        }
    }
}

impl Schedule {
    /// The schedule of a seeded run: `cfg.faults` faults of `cfg.class` in
    /// `[faults_from, heal_at)`.
    pub fn generate(cfg: &SimConfig) -> Schedule {
        let mut rng = Rng::stream(cfg.seed, 0xfa17);
        let mut s = Schedule::default();
        if cfg.class == FaultClass::None || cfg.servers < 2 {
            return s;
        }
        let count = rng.range(cfg.faults.0 as u64, cfg.faults.1 as u64) as usize;
        let span = cfg
            .heal_at
            .saturating_sub(cfg.faults_from + 200 * MS)
            .max(MS);
        let mut times: Vec<u64> = (0..count)
            .map(|_| cfg.faults_from + rng.below(span))
            .collect();
        times.sort_unstable();
        for at in times {
            let class = match cfg.class {
                FaultClass::Mixed => *rng.pick(&FaultClass::ALL[1..9]),
                c => c,
            };
            s.add(&mut rng, cfg, class, at);
        }
        s
    }

    fn add(&mut self, rng: &mut Rng, cfg: &SimConfig, class: FaultClass, at: u64) {
        let n = cfg.servers;
        let ka = cfg.keepalive;
        let len = |rng: &mut Rng| {
            if rng.chance(1, 3) {
                rng.range(ka / 5, 2 * ka)
            } else {
                rng.range(2 * ka, 12 * ka)
            }
        };
        let kind = match class {
            FaultClass::None | FaultClass::Mixed => return,
            FaultClass::Drop => {
                let p = rng.sample(n, 2);
                FaultKind::Drop {
                    a: p[0],
                    b: p[1],
                    both: rng.chance(1, 2),
                }
            }
            FaultClass::Cut => {
                let p = rng.sample(n, 2);
                let dirs = vec![(p[0], p[1]), (p[1], p[0])];
                FaultKind::Cut {
                    dirs,
                    len: len(rng),
                    label: CutLabel::Symmetric,
                }
            }
            FaultClass::OneWay => {
                let p = rng.sample(n, 2);
                FaultKind::Cut {
                    dirs: vec![(p[0], p[1])],
                    len: len(rng),
                    label: CutLabel::OneWay,
                }
            }
            FaultClass::NonTransitive => {
                let p = rng.sample(n, 2);
                let dirs = vec![(p[0], p[1]), (p[1], p[0])];
                let len = rng.range(5 * ka, 15 * ka);
                FaultKind::Cut {
                    dirs,
                    len,
                    label: CutLabel::NonTransitive,
                }
            }
            FaultClass::Partition => {
                let len = len(rng);
                partition(rng, n, len)
            }
            FaultClass::Crash => FaultKind::Crash {
                server: rng.index(n),
                down: down_time(rng, ka),
            },
            FaultClass::Pause => FaultKind::Pause {
                server: rng.index(n),
                len: pause_time(rng, ka),
            },
            FaultClass::Cascade => return self.cascade(rng, cfg, at),
        };
        self.faults.push(Fault { at, kind });
    }

    /// A first fault, and a trigger armed with it that hits during the view
    /// change it causes.
    fn cascade(&mut self, rng: &mut Rng, cfg: &SimConfig, at: u64) {
        let n = cfg.servers;
        let ka = cfg.keepalive;
        let first = match rng.below(4) {
            0 => FaultKind::Crash {
                server: rng.index(n),
                down: down_time(rng, ka),
            },
            1 => FaultKind::Pause {
                server: rng.index(n),
                len: rng.range(2 * ka, 8 * ka),
            },
            2 => {
                let p = rng.sample(n, 2);
                FaultKind::Drop {
                    a: p[0],
                    b: p[1],
                    both: rng.chance(1, 2),
                }
            }
            _ => {
                let len = rng.range(2 * ka, 10 * ka);
                partition(rng, n, len)
            }
        };
        let on = *rng.pick(&[
            MsgKind::Propose,
            MsgKind::Flush,
            MsgKind::Flush,
            MsgKind::Install,
            MsgKind::Install,
            MsgKind::InstallAck,
            MsgKind::Commit,
        ]);
        let target = if rng.chance(1, 2) {
            Target::Sender
        } else {
            Target::Receiver
        };
        let action = match rng.below(5) {
            0 | 1 => Action::Crash(target, down_time(rng, ka)),
            2 => Action::Pause(target, pause_time(rng, ka)),
            3 => Action::DropLinks(target, rng.chance(1, 2)),
            _ => Action::Isolate(target, rng.range(ka, 8 * ka)),
        };
        let trigger = Trigger {
            on,
            from: None,
            skip: rng.below(3) as u32,
            action,
            window: 10 * ka,
        };
        self.triggers.push(trigger);
        self.faults.push(Fault { at, kind: first });
        self.faults.push(Fault {
            at,
            kind: FaultKind::Arm(self.triggers.len() - 1),
        });
    }

    /// This schedule without the faults at `drop` (indices into `faults`).
    pub fn without(&self, drop: &[usize]) -> Schedule {
        Schedule {
            faults: self
                .faults
                .iter()
                .enumerate()
                .filter(|(i, _)| !drop.contains(i))
                .map(|(_, f)| f.clone())
                .collect(),
            triggers: self.triggers.clone(),
        }
    }
}

fn down_time(rng: &mut Rng, ka: u64) -> u64 {
    if rng.chance(1, 3) {
        rng.range(MS, ka / 2)
    } else {
        rng.range(2 * ka, 10 * ka)
    }
}

fn pause_time(rng: &mut Rng, ka: u64) -> u64 {
    if rng.chance(1, 2) {
        rng.range(ka / 4, 3 * ka / 2)
    } else {
        rng.range(3 * ka / 2, 8 * ka)
    }
}

/// Cuts between 2 or 3 random sides.
fn partition(rng: &mut Rng, n: usize, len: u64) -> FaultKind {
    let sides = if n >= 3 && rng.chance(1, 3) { 3 } else { 2 };
    let order = rng.sample(n, n);
    let mut side = vec![0usize; n];
    for (k, s) in order.iter().enumerate() {
        side[*s] = if k < sides { k } else { rng.index(sides) };
    }
    FaultKind::Cut {
        dirs: split(&side),
        len,
        label: CutLabel::Partition,
    }
}

/// Every direction between servers on different sides (`side[i]` is
/// server `i`'s side).
pub fn split(side: &[usize]) -> Vec<(usize, usize)> {
    let mut dirs = Vec::new();
    for a in 0..side.len() {
        for b in 0..side.len() {
            if side[a] != side[b] {
                dirs.push((a, b));
            }
        }
    }
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_schedules_are_deterministic_and_in_the_fault_phase() {
        for class in FaultClass::ALL {
            for seed in 0..50 {
                let cfg = SimConfig::new(seed, class, None);
                let s = Schedule::generate(&cfg);
                assert_eq!(s, Schedule::generate(&cfg));
                assert!(
                    s.faults
                        .iter()
                        .all(|f| f.at >= cfg.faults_from && f.at < cfg.heal_at)
                );
                if class != FaultClass::None {
                    assert!(!s.faults.is_empty(), "{class} {seed}");
                }
            }
        }
    }

    #[test]
    fn split_cuts_across_sides_only() {
        assert_eq!(split(&[0, 0, 1]), vec![(0, 2), (1, 2), (2, 0), (2, 1)]);
    }
}
