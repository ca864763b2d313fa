//! `msgc-sim run --seeds A..B [--class C|all] [--servers N] [--threads T]
//! [--trace] [--shrink]`: runs seeds, prints per-class counts, seeds per
//! second, a replay line per failing seed, and `N passed, N failed`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use msgc_sim::{FaultClass, Outcome, Schedule, SimConfig, run_schedule, run_seed, shrink};

#[derive(Parser)]
#[command(about = "Deterministic simulator of msgc cores")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a range of seeds.
    Run(RunArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// Seeds `A..B` (B exclusive) or one seed.
    #[arg(long)]
    seeds: String,
    /// A fault class, or `all` (each seed gets the class `seed % 10`).
    #[arg(long, default_value = "all")]
    class: String,
    /// Servers per run (default: 3 to 9, drawn from the seed).
    #[arg(long)]
    servers: Option<usize>,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Print the event log of every run (use with one seed).
    #[arg(long)]
    trace: bool,
    /// Shrink failing schedules (drop faults while the run still fails).
    #[arg(long)]
    shrink: bool,
    /// Drop these faults (indices) from the schedule, to replay a shrunk run.
    #[arg(long, value_delimiter = ',')]
    drop_faults: Vec<usize>,
    /// Restarts draw incarnations above the previous one.
    #[arg(long)]
    monotonic_incarnations: bool,
    /// Violations shown per failing seed.
    #[arg(long, default_value_t = 5)]
    show: usize,
}

fn parse_seeds(s: &str) -> anyhow::Result<(u64, u64)> {
    if let Some((a, b)) = s.split_once("..") {
        let a: u64 = a.parse().context("seed range start")?;
        let b: u64 = b.parse().context("seed range end")?;
        if b <= a {
            bail!("empty seed range {s}");
        }
        Ok((a, b))
    } else {
        let a: u64 = s.parse().context("seed")?;
        Ok((a, a + 1))
    }
}

#[derive(Default)]
struct Tally {
    passed: u64,
    failed: u64,
    views: u64,
    events: u64,
}

fn main() -> anyhow::Result<()> {
    let Cli {
        cmd: Cmd::Run(args),
    } = Cli::parse();
    let (from, to) = parse_seeds(&args.seeds)?;
    let class = match args.class.as_str() {
        "all" => None,
        c => Some(c.parse::<FaultClass>()?),
    };
    if let Some(n) = args.servers
        && !(1..=26).contains(&n)
    {
        bail!("--servers must be 1 to 26 (the issue asks for 3 to 9), got {n}");
    }
    let tallies: Mutex<BTreeMap<FaultClass, Tally>> = Mutex::new(BTreeMap::new());
    let failures: Mutex<Vec<u64>> = Mutex::new(Vec::new());
    let next = AtomicU64::new(from);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..args.threads.max(1) {
            scope.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= to {
                        break;
                    }
                    let out = one(&args, seed, class);
                    let mut t = tallies.lock().expect("tally lock");
                    let tally = t.entry(out.cfg.class).or_default();
                    tally.views += out.stats.views;
                    tally.events += out.stats.events;
                    if out.passed() {
                        tally.passed += 1;
                    } else {
                        tally.failed += 1;
                        failures.lock().expect("failure lock").push(seed);
                        drop(t);
                        report_failure(&args, &out);
                    }
                }
            });
        }
    });
    let secs = started.elapsed().as_secs_f64();
    summary(&tallies.into_inner().expect("tallies"), to - from, secs);
    Ok(())
}

fn one(args: &RunArgs, seed: u64, class: Option<FaultClass>) -> Outcome {
    let class = class.unwrap_or_else(|| FaultClass::for_seed(seed));
    let mut cfg = SimConfig::new(seed, class, args.servers);
    cfg.trace = args.trace;
    cfg.monotonic_incarnations = args.monotonic_incarnations;
    let schedule = Schedule::generate(&cfg).without(&args.drop_faults);
    let out = if args.drop_faults.is_empty() {
        run_seed(cfg)
    } else {
        run_schedule(cfg, schedule)
    };
    if args.trace {
        for line in &out.trace {
            println!("{line}");
        }
    }
    out
}

fn report_failure(args: &RunArgs, out: &Outcome) {
    let mut msg = format!(
        "FAIL seed {} class {} servers {}: {} violation(s)\n{}",
        out.cfg.seed,
        out.cfg.class,
        out.cfg.servers,
        out.violations.len(),
        out.report(args.show)
    );
    msg.push_str(&format!("  schedule:\n{}", schedule_lines(&out.schedule)));
    msg.push_str(&format!("  replay: {}\n", out.replay_command()));
    if args.shrink {
        let mut cfg = out.cfg.clone();
        cfg.trace = false;
        let (small, dropped) = shrink(&cfg, &out.schedule);
        let list: Vec<String> = dropped.iter().map(usize::to_string).collect();
        msg.push_str(&format!(
            "  shrunk to {} fault(s):\n{}",
            small.faults.len(),
            schedule_lines(&small)
        ));
        if !dropped.is_empty() {
            msg.push_str(&format!(
                "  replay shrunk: {} --drop-faults {}\n",
                out.replay_command(),
                list.join(",")
            ));
        }
    }
    print!("{msg}");
}

fn schedule_lines(s: &Schedule) -> String {
    let mut out = String::new();
    for (i, f) in s.faults.iter().enumerate() {
        out.push_str(&format!("    #{i} {f}\n"));
    }
    for (i, t) in s.triggers.iter().enumerate() {
        out.push_str(&format!("    trigger {i}: {t:?}\n"));
    }
    out
}

fn summary(tallies: &BTreeMap<FaultClass, Tally>, seeds: u64, secs: f64) {
    println!(
        "{:<14} {:>9} {:>9} {:>9} {:>12}",
        "class", "passed", "failed", "views", "events"
    );
    let (mut passed, mut failed) = (0, 0);
    for (class, t) in tallies {
        println!(
            "{:<14} {:>9} {:>9} {:>9} {:>12}",
            class.name(),
            t.passed,
            t.failed,
            t.views,
            t.events
        );
        passed += t.passed;
        failed += t.failed;
    }
    println!(
        "{seeds} seeds in {secs:.1}s: {:.1} seeds/s",
        seeds as f64 / secs.max(1e-9)
    );
    println!("{passed} passed, {failed} failed");
}
