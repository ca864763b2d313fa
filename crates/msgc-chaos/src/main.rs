//! `msgc-chaos`: seeded randomized faults against real msgc servers.
//!
//! ```sh
//! msgc-chaos procs --seed 1 --count 20 --binary target/release/msgc-server
//! msgc-chaos compose --project msgc-rs --seed 1 --count 3
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Parser, Subcommand};
use msgc_chaos::runner::{ProcsConfig, SeedReport, summary_line};
use msgc_chaos::schedule::{CLASSES, Params, Schedule, name};
use msgc_chaos::{ChaosError, compose, netcut, runner};

/// Seeded randomized fault runs against real msgc-server processes, judged
/// by msgc-check plus run-level checks.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// msgc-server processes on loopback (needs root: nft + cgroups).
    Procs(ProcsArgs),
    /// A running docker-compose cluster (msgc1..3 + node1..3).
    Compose(ComposeArgs),
}

#[derive(clap::Args, Clone)]
struct ProcsArgs {
    /// First seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of seeds (seed .. seed+count).
    #[arg(long, default_value_t = 1)]
    count: u64,
    /// Servers in the cluster.
    #[arg(long, default_value_t = 5)]
    servers: usize,
    /// Servers that get faults (the others are never faulted).
    #[arg(long, default_value_t = 3)]
    faulted: usize,
    /// Faults each faulted server takes part in, at least.
    #[arg(long, default_value_t = 5)]
    faults_per_server: usize,
    /// keepalive_interval (and reconnect_interval) of the servers, in ms.
    #[arg(long, default_value_t = 250)]
    keepalive_ms: u64,
    /// The msgc-server binary (default: $CARGO_TARGET_DIR or target, /release/msgc-server).
    #[arg(long)]
    binary: Option<PathBuf>,
    /// Messages per second per publisher.
    #[arg(long, default_value_t = 300)]
    rate: u64,
    /// Most messages one publisher sends in a run.
    #[arg(long, default_value_t = 30_000)]
    max_per_publisher: u64,
    /// Messages each publisher sends after the last fault.
    #[arg(long, default_value_t = 20)]
    final_per_server: usize,
    /// Directory for each seed's configs, server logs and findings.
    #[arg(long, default_value = "/tmp/msgc-chaos")]
    out: PathBuf,
    /// Keep the directories of passing seeds too.
    #[arg(long)]
    keep: bool,
    /// Only these fault classes (kill, pause, cascade, cut, one-way,
    /// non-transitive, split); default all.
    #[arg(long, value_delimiter = ',')]
    classes: Vec<String>,
    /// Print each seed's schedule and exit (runs nothing, needs no root).
    #[arg(long)]
    plan: bool,
    /// Milliseconds of steady traffic before the first fault.
    #[arg(long, default_value_t = 500)]
    warmup_ms: u64,
}

fn default_binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").unwrap_or_else(|| "target".into());
    PathBuf::from(target).join("release").join("msgc-server")
}

impl ProcsArgs {
    fn config(&self) -> ProcsConfig {
        ProcsConfig {
            binary: self.binary.clone().unwrap_or_else(default_binary),
            params: Params {
                servers: self.servers,
                faulted: self.faulted.min(self.servers),
                faults_per_server: self.faults_per_server,
                keepalive: Duration::from_millis(self.keepalive_ms),
                classes: self.classes.clone(),
            },
            rate: self.rate,
            max_per_publisher: self.max_per_publisher,
            final_per_server: self.final_per_server,
            out_dir: self.out.clone(),
            keep: self.keep,
            warmup: Duration::from_millis(self.warmup_ms),
        }
    }

    fn replay(&self, cfg: &ProcsConfig, seed: u64) -> String {
        let classes = if self.classes.is_empty() {
            String::new()
        } else {
            format!(" --classes {}", self.classes.join(","))
        };
        format!(
            "cargo run --release -p msgc-chaos -- procs --seed {seed} --count 1 --servers {} --faulted {} --faults-per-server {} --keepalive-ms {}{classes} --binary {}",
            self.servers,
            self.faulted,
            self.faults_per_server,
            self.keepalive_ms,
            cfg.binary.display()
        )
    }
}

fn print_failure(report: &SeedReport, replay: &str) {
    for f in report.verdict.findings.iter().take(8) {
        println!("    - {f}");
    }
    if report.verdict.findings.len() > 8 {
        println!("    ... {} more", report.verdict.findings.len() - 8);
    }
    println!("    replay: {replay}");
    println!("    logs kept in {}", report.dir.display());
}

fn check_classes(cfg: &ProcsConfig) -> Result<()> {
    for c in &cfg.params.classes {
        if !CLASSES.contains(&c.as_str()) {
            bail!("unknown fault class {c:?} (one of {})", CLASSES.join(", "));
        }
    }
    Ok(())
}

fn print_plans(args: &ProcsArgs, cfg: &ProcsConfig) -> Result<ExitCode> {
    for seed in args.seed..args.seed.saturating_add(args.count) {
        let s = Schedule::generate(seed, &cfg.params);
        let faulted: Vec<String> = s.faulted.iter().map(|i| name(*i)).collect();
        println!(
            "seed {seed}: faulted [{}], {} steps",
            faulted.join(","),
            s.steps.len()
        );
        for (k, step) in s.steps.iter().enumerate() {
            println!(
                "  step {k}: {} (then {} ms)",
                step.fault,
                step.gap.as_millis()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn procs(args: ProcsArgs) -> Result<ExitCode> {
    let cfg = args.config();
    check_classes(&cfg)?;
    if args.plan {
        return print_plans(&args, &cfg);
    }
    let root = netcut::preflight()?;
    netcut::sweep_stale(&root);
    if !cfg.binary.is_file() {
        bail!(
            "msgc-server binary not found at {} (cargo build --release -p msgc-server, or --binary PATH)",
            cfg.binary.display()
        );
    }
    let (mut passed, mut failed) = (0u64, 0u64);
    for seed in args.seed..args.seed.saturating_add(args.count) {
        let (c, r) = (cfg.clone(), root.clone());
        let mut task = tokio::spawn(async move { runner::run_seed(&c, &r, seed).await });
        let outcome = tokio::select! {
            res = &mut task => res,
            _ = tokio::signal::ctrl_c() => {
                task.abort();
                let _ = task.await; // drops the run: servers, nft table, cgroups
                println!("interrupted during seed {seed}");
                println!("{passed} passed, {failed} failed");
                return Ok(ExitCode::from(130));
            }
        };
        let replay = args.replay(&cfg, seed);
        match outcome {
            Ok(Ok(report)) => {
                println!("{}", summary_line(&report));
                if report.verdict.findings.is_empty() {
                    passed += 1;
                } else {
                    failed += 1;
                    print_failure(&report, &replay);
                }
            }
            Ok(Err(ChaosError::Preflight(why))) => bail!(why),
            Ok(Err(e)) => {
                failed += 1;
                println!("seed {seed}: ERROR {e}\n    replay: {replay}");
                println!(
                    "    logs kept in {}",
                    cfg.out_dir.join(format!("seed-{seed}")).display()
                );
            }
            Err(e) => {
                failed += 1;
                println!("seed {seed}: PANIC {e}\n    replay: {replay}");
                println!(
                    "    logs kept in {}",
                    cfg.out_dir.join(format!("seed-{seed}")).display()
                );
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<ExitCode> {
    match Cli::parse().mode {
        Mode::Procs(args) => procs(args).await,
        Mode::Compose(args) => compose_mode(args).await,
    }
}

#[derive(clap::Args, Clone)]
struct ComposeArgs {
    /// The compose project name (as `docker compose -p`).
    #[arg(long, env = "COMPOSE_PROJECT_NAME", default_value = "msgc-rs")]
    project: String,
    /// First seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of seeds.
    #[arg(long, default_value_t = 1)]
    count: u64,
    /// Faults per run (every kind of --kinds once, shuffled, then random ones).
    #[arg(long, default_value_t = 4)]
    faults: usize,
    /// Fault kinds: kill-coordinator, restart-node, partition, rolling-restart.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "kill-coordinator,restart-node,partition,rolling-restart"
    )]
    kinds: Vec<String>,
    /// Server services and their published client addresses, in peer-name order.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "msgc1=127.0.0.1:24809,msgc2=127.0.0.1:24819,msgc3=127.0.0.1:24829"
    )]
    servers: Vec<String>,
    /// Node services (also their node names) and their published
    /// ECCluster_Listener addresses.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "node1=127.0.0.1:24802,node2=127.0.0.1:24812,node3=127.0.0.1:24822"
    )]
    nodes: Vec<String>,
    /// The servers' keepalive_interval in ms (deploy/conf/msgc_server.conf: 5 s).
    #[arg(long, default_value_t = 5000)]
    keepalive_ms: u64,
    /// Messages per second per publisher.
    #[arg(long, default_value_t = 200)]
    rate: u64,
    /// Most messages one publisher sends in a run.
    #[arg(long, default_value_t = 100_000)]
    max_per_publisher: u64,
    /// Messages each publisher sends after the last fault.
    #[arg(long, default_value_t = 20)]
    final_per_server: usize,
    /// Seconds a restarted container may take to be healthy.
    #[arg(long, default_value_t = 90)]
    health_timeout_s: u64,
    /// Directory for each seed's findings and container logs.
    #[arg(long, default_value = "/tmp/msgc-chaos")]
    out: PathBuf,
    /// Keep the directories of passing seeds too.
    #[arg(long)]
    keep: bool,
}

impl ComposeArgs {
    fn config(&self) -> Result<compose::ComposeConfig> {
        let mut kinds = Vec::new();
        for k in &self.kinds {
            match compose::ComposeFault::parse(k) {
                Some(kind) => kinds.push(kind),
                None => bail!(
                    "unknown fault kind {k:?} (kill-coordinator, restart-node, partition, rolling-restart)"
                ),
            }
        }
        let (servers, addrs) = service_addrs("--servers", &self.servers)?;
        let (nodes, node_addrs) = service_addrs("--nodes", &self.nodes)?;
        Ok(compose::ComposeConfig {
            project: self.project.clone(),
            servers,
            addrs,
            nodes,
            node_addrs,
            keepalive: Duration::from_millis(self.keepalive_ms),
            kinds,
            faults: self.faults,
            rate: self.rate,
            max_per_publisher: self.max_per_publisher,
            final_per_server: self.final_per_server,
            health_timeout: Duration::from_secs(self.health_timeout_s),
            out_dir: self.out.clone(),
            keep: self.keep,
        })
    }
}

/// `SERVICE=HOST:PORT` entries split into services and addresses.
fn service_addrs(flag: &str, entries: &[String]) -> Result<(Vec<String>, Vec<String>)> {
    let (mut names, mut addrs) = (Vec::new(), Vec::new());
    for e in entries {
        let Some((name, addr)) = e.split_once('=') else {
            bail!("{flag} entries are SERVICE=HOST:PORT, not {e:?}");
        };
        names.push(name.to_owned());
        addrs.push(addr.to_owned());
    }
    Ok((names, addrs))
}

async fn compose_mode(args: ComposeArgs) -> Result<ExitCode> {
    let cfg = args.config()?;
    let (mut passed, mut failed) = (0u64, 0u64);
    for seed in args.seed..args.seed.saturating_add(args.count) {
        let replay = format!(
            "cargo run --release -p msgc-chaos -- compose --project {} --seed {seed} --count 1 --faults {} --kinds {}",
            args.project,
            args.faults,
            args.kinds.join(",")
        );
        let outcome = tokio::select! {
            r = compose::run_seed(&cfg, seed) => r,
            _ = tokio::signal::ctrl_c() => {
                println!("interrupted during compose seed {seed} (containers may be stopped or disconnected)");
                return Ok(ExitCode::from(130));
            }
        };
        match outcome {
            Ok(report) => {
                println!("{}", compose::summary_line(&report));
                if report.verdict.findings.is_empty() {
                    passed += 1;
                } else {
                    failed += 1;
                    for f in report.verdict.findings.iter().take(8) {
                        println!("    - {f}");
                    }
                    println!("    replay: {replay}");
                    println!("    logs kept in {}", report.dir.display());
                }
            }
            Err(e) => {
                failed += 1;
                println!("compose seed {seed}: ERROR {e}\n    replay: {replay}");
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
