//! What a run is made of: the fault class, the cluster size and the timers,
//! all derived from one seed.

use std::fmt;
use std::str::FromStr;

use crate::rng::Rng;

/// One millisecond of virtual time, in nanoseconds.
pub const MS: u64 = 1_000_000;

/// A family of faults; results are counted per class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultClass {
    /// No faults (clients only).
    None,
    /// A link dropped, seen by one end or by both.
    Drop,
    /// A symmetric cut of one pair.
    Cut,
    /// One direction of one pair cut.
    OneWay,
    /// A–C cut while B reaches both.
    NonTransitive,
    /// Two or three sides, then heal.
    Partition,
    /// Crash and restart with a new incarnation.
    Crash,
    /// Stop a server (no ticks, no input), then resume.
    Pause,
    /// A second fault triggered while a view change runs.
    Cascade,
    /// Faults drawn from every class.
    Mixed,
}

impl FaultClass {
    /// Every class, in the order `all` cycles through them (by seed).
    pub const ALL: [FaultClass; 10] = [
        FaultClass::None,
        FaultClass::Drop,
        FaultClass::Cut,
        FaultClass::OneWay,
        FaultClass::NonTransitive,
        FaultClass::Partition,
        FaultClass::Crash,
        FaultClass::Pause,
        FaultClass::Cascade,
        FaultClass::Mixed,
    ];

    /// The class `--class all` gives a seed.
    pub fn for_seed(seed: u64) -> FaultClass {
        Self::ALL[(seed % Self::ALL.len() as u64) as usize]
    }

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            FaultClass::None => "none",
            FaultClass::Drop => "drop",
            FaultClass::Cut => "cut",
            FaultClass::OneWay => "oneway",
            FaultClass::NonTransitive => "nontransitive",
            FaultClass::Partition => "partition",
            FaultClass::Crash => "crash",
            FaultClass::Pause => "pause",
            FaultClass::Cascade => "cascade",
            FaultClass::Mixed => "mixed",
        }
    }

    /// True if runs of this class may split the servers into sides.
    pub fn may_partition(self) -> bool {
        !matches!(self, FaultClass::None)
    }
}

impl fmt::Display for FaultClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown class name.
#[derive(Debug, thiserror::Error)]
#[error("unknown fault class {0:?} (one of: all, {names})", names = FaultClass::ALL.map(FaultClass::name).join(", "))]
pub struct UnknownClass(pub String);

impl FromStr for FaultClass {
    type Err = UnknownClass;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| UnknownClass(s.to_owned()))
    }
}

/// Everything that shapes one run (times in virtual nanoseconds).
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The seed everything is drawn from.
    pub seed: u64,
    /// The fault class.
    pub class: FaultClass,
    /// Number of servers (3 to 9).
    pub servers: usize,
    /// The cores' keepalive interval.
    pub keepalive: u64,
    /// The cores' proposal timeout.
    pub proposal_timeout: u64,
    /// A lower server re-dials a lost link after this.
    pub reconnect_interval: u64,
    /// Base one-way link delay range.
    pub delay: (u64, u64),
    /// Extra random delay per message (FIFO is kept).
    pub jitter: u64,
    /// Simulated clients per server.
    pub clients_per_server: usize,
    /// Number of groups (`g0`, `g1`, ...).
    pub groups: usize,
    /// Payload size range (bytes).
    pub payload: (usize, usize),
    /// A client acts every this much (range).
    pub think: (u64, u64),
    /// Per-mille chance that a client action is a reconnect under its name.
    pub reconnect_permille: u64,
    /// Window permits per server.
    pub window: usize,
    /// Clients start acting here.
    pub clients_from: u64,
    /// Faults happen in `[faults_from, heal_at)`.
    pub faults_from: u64,
    /// Everything heals here; the liveness phase starts.
    pub heal_at: u64,
    /// Liveness must hold this long after `heal_at`.
    pub liveness_bound: u64,
    /// Number of faults (range, the upper end exclusive).
    pub faults: (usize, usize),
    /// Record the event log.
    pub trace: bool,
    /// Draw each restart's incarnation above the previous one (a driver
    /// using a clock would); by default incarnations are random.
    pub monotonic_incarnations: bool,
}

impl SimConfig {
    /// The configuration of `seed` in `class`; `servers` is drawn from the
    /// seed (3 to 9) unless given.
    pub fn new(seed: u64, class: FaultClass, servers: Option<usize>) -> Self {
        let mut rng = Rng::stream(seed, 0xc0f1);
        let servers = servers.unwrap_or_else(|| 3 + rng.index(7)).clamp(1, 26);
        let keepalive = 100 * MS;
        Self {
            seed,
            class,
            servers,
            keepalive,
            proposal_timeout: 3 * keepalive,
            reconnect_interval: 50 * MS,
            delay: (200_000, 2 * MS),
            jitter: 500_000,
            clients_per_server: 2,
            groups: 3,
            payload: (16, 64),
            // The offered load stays about the same whatever the size.
            think: (servers as u64 * 2 * MS, servers as u64 * 15 * MS),
            reconnect_permille: 20,
            window: 64,
            clients_from: 100 * MS,
            faults_from: 400 * MS,
            heal_at: 2_400 * MS,
            liveness_bound: 20 * keepalive,
            faults: (2, 7),
            trace: false,
            monotonic_incarnations: false,
        }
    }

    /// The server's name (`a`, `b`, ...).
    pub fn name(&self, server: usize) -> String {
        ((b'a' + server as u8) as char).to_string()
    }
}
