//! One seed end to end: build, run, check; and shrinking a failing schedule.

use crate::check::{Violation, check};
use crate::config::{FaultClass, SimConfig};
use crate::faults::Schedule;
use crate::record::History;
use crate::sim::{Sim, Stats};

/// The result of one run.
#[derive(Debug)]
pub struct Outcome {
    /// The configuration it ran with.
    pub cfg: SimConfig,
    /// Its schedule.
    pub schedule: Schedule,
    /// Every violation (empty: passed).
    pub violations: Vec<Violation>,
    /// Counters.
    pub stats: Stats,
    /// The event log (empty unless `cfg.trace`).
    pub trace: Vec<String>,
    /// What was recorded.
    pub history: History,
}

impl Outcome {
    /// True if no promise was broken.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    /// The one-line command that replays this run.
    pub fn replay_command(&self) -> String {
        replay_command(self.cfg.seed, self.cfg.class, self.cfg.servers)
    }

    /// Violations, one per line (at most `max`).
    pub fn report(&self, max: usize) -> String {
        let mut s = String::new();
        for v in self.violations.iter().take(max) {
            s.push_str(&format!("  {v}\n"));
        }
        if self.violations.len() > max {
            s.push_str(&format!("  ... and {} more\n", self.violations.len() - max));
        }
        s
    }
}

/// The command that replays a seed.
pub fn replay_command(seed: u64, class: FaultClass, servers: usize) -> String {
    format!(
        "cargo run --release -p msgc-sim -- run --seeds {seed}..{} --class {class} --servers {servers} --trace",
        seed + 1
    )
}

/// Runs a configuration with its seed's generated schedule.
pub fn run_seed(cfg: SimConfig) -> Outcome {
    let schedule = Schedule::generate(&cfg);
    run_schedule(cfg, schedule)
}

/// Runs a configuration with a given schedule, and checks it.
pub fn run_schedule(cfg: SimConfig, schedule: Schedule) -> Outcome {
    let mut sim = Sim::new(cfg.clone(), schedule.clone());
    sim.run();
    finish(sim, cfg, schedule)
}

/// Checks a finished simulation.
pub fn finish(sim: Sim, cfg: SimConfig, schedule: Schedule) -> Outcome {
    let mut violations = sim.violations.clone();
    violations.extend(check(&sim.history, sim.stats.probes_at));
    Outcome {
        cfg,
        schedule,
        violations,
        stats: sim.stats,
        trace: sim.trace().to_vec(),
        history: sim.history,
    }
}

/// Drops faults one at a time while the run still fails; returns the
/// smallest failing schedule found and the indices (into the original
/// `faults`) dropped.
pub fn shrink(cfg: &SimConfig, schedule: &Schedule) -> (Schedule, Vec<usize>) {
    let mut kept: Vec<usize> = (0..schedule.faults.len()).collect();
    let mut i = 0;
    while i < kept.len() {
        let mut trial = kept.clone();
        trial.remove(i);
        let dropped: Vec<usize> = (0..schedule.faults.len())
            .filter(|k| !trial.contains(k))
            .collect();
        let out = run_schedule(cfg.clone(), schedule.without(&dropped));
        if out.passed() {
            i += 1;
        } else {
            kept = trial;
        }
    }
    let dropped: Vec<usize> = (0..schedule.faults.len())
        .filter(|k| !kept.contains(k))
        .collect();
    (schedule.without(&dropped), dropped)
}
