//! `msgc-bench`: the msgc bus and a NATS cluster side by side, same
//! workloads, one run. Starts a 3-server msgc cluster and a 3-server NATS
//! cluster on loopback, runs each workload against both (several repetitions,
//! medians), prints one table and writes it to `BENCHMARKS.md` with the machine,
//! the versions and the command. `scripts/bench` builds and runs it.

#![forbid(unsafe_code)]

mod msgc_bus;
mod nats_bus;
mod procs;
mod profile;
mod report;
mod workload;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;

use crate::procs::Cluster;
use crate::report::{Bus, Results};
use crate::workload::{Kind, Outcome, Spec};

/// Command-line flags.
#[derive(Parser, Debug, Clone)]
#[command(version, about)]
struct Args {
    /// Tiny counts, 1 repetition, no BENCHMARKS.md: keeps the driver working.
    #[arg(long)]
    smoke: bool,
    /// Repetitions of every workload (medians are reported).
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Messages in the 128 B fan-out; 1 KiB sends half, 16 KiB a tenth,
    /// contention this many in total (a third per publisher).
    #[arg(long, default_value_t = 500_000)]
    msgs: u64,
    /// Seconds of the paced latency workload (at --rate msgs/s).
    #[arg(long, default_value_t = 5)]
    latency_secs: u64,
    /// Publish rate of the latency workload, msgs/s.
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    /// Bound on one run of one workload, seconds (exceeded: a failure).
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// The msgc-server binary (default: msgc-server next to this executable).
    #[arg(long)]
    msgc_server_bin: Option<PathBuf>,
    /// The nats-server binary.
    #[arg(long, default_value = "nats-server")]
    nats_server_bin: String,
    /// Run msgc only.
    #[arg(long)]
    no_nats: bool,
    /// Run NATS only (smoke checks of the NATS side).
    #[arg(long)]
    no_msgc: bool,
    /// Write the report here (full runs only), e.g. BENCHMARKS.md.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Run only the workloads whose name contains this text.
    #[arg(long)]
    only: Option<String>,
    /// After the measured runs, profile one msgc run of the first workload
    /// (the 128 B fan-out) with `perf`.
    #[arg(long)]
    profile: bool,
}

fn default_server_bin() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("executable has no directory")?;
    // Integration tests run from target/<profile>/deps.
    let candidates = [
        dir.join("msgc-server"),
        dir.parent()
            .map(|p| p.join("msgc-server"))
            .unwrap_or_default(),
    ];
    Ok(candidates
        .iter()
        .find(|p| p.is_file())
        .unwrap_or(&candidates[0])
        .clone())
}

/// The workloads of issue 7, sized for a full or a smoke run.
fn workloads(args: &Args) -> Vec<Spec> {
    let (msgs, lat_msgs, timeout) = if args.smoke {
        (2_000, 2_000, Duration::from_secs(args.timeout.min(60)))
    } else {
        (
            args.msgs,
            args.rate * args.latency_secs,
            Duration::from_secs(args.timeout),
        )
    };
    // msgc: s1 coordinates (lowest name); the publisher sits on s2. NATS
    // uses the same layout: publisher on n2, subscribers on n1, n2, n3.
    let fan = |name: &str, size: usize, n: u64| Spec {
        name: name.to_owned(),
        kind: Kind::FanOut,
        publishers: vec![1],
        subscribers: vec![0, 1, 2],
        msgs_per_publisher: n.max(1),
        size,
        rate: 0,
        timeout,
    };
    let small = |n: u64| if args.smoke { msgs } else { n };
    vec![
        fan("fan-out 1→3, 128 B", 128, msgs),
        fan("fan-out 1→3, 1 KiB", 1024, small(msgs / 2)),
        fan("fan-out 1→3, 16 KiB", 16 * 1024, small(msgs / 10)),
        Spec {
            name: "contention 3→3, 128 B".to_owned(),
            kind: Kind::Contention,
            publishers: vec![0, 1, 2],
            subscribers: vec![0, 1, 2],
            msgs_per_publisher: (msgs / 3).max(1),
            size: 128,
            rate: 0,
            timeout,
        },
        Spec {
            name: format!("latency 1→3, 128 B at {} msgs/s", args.rate),
            kind: Kind::Latency,
            publishers: vec![1],
            subscribers: vec![0, 1, 2],
            msgs_per_publisher: lat_msgs.max(1),
            size: 128,
            rate: args.rate,
            timeout,
        },
    ]
}

/// Runs one workload against one cluster, with CPU accounting.
async fn measure(bus: Bus, spec: &Spec, cluster: &mut Cluster, tag: &str) -> Result<Outcome> {
    cluster.procs.check_alive()?;
    let ticks = procs::clock_ticks();
    let pids = cluster.procs.pids();
    let me = std::process::id();
    let before: Vec<f64> = pids.iter().map(|&p| procs::cpu_seconds(p, ticks)).collect();
    let me_before = procs::cpu_seconds(me, ticks);
    let mut outcome = match bus {
        Bus::Msgc => msgc_bus::run(spec, &cluster.addrs, tag).await?,
        Bus::Nats => nats_bus::run(spec, &cluster.addrs, tag).await?,
    };
    outcome.server_cpu = pids
        .iter()
        .zip(&before)
        .map(|(&p, b)| procs::cpu_seconds(p, ticks) - b)
        .collect();
    outcome.client_cpu = procs::cpu_seconds(me, ticks) - me_before;
    if !outcome.complete() {
        bail!(
            "incomplete: subscribers got {:?} of {} (fifo breaks {}, client drop notices {}){}",
            outcome.delivered,
            outcome.expected,
            outcome.fifo_violations,
            outcome.drop_notices,
            if outcome.stop_reasons.is_empty() {
                String::new()
            } else {
                format!("; {}", outcome.stop_reasons.join("; "))
            }
        );
    }
    if outcome.fifo_violations > 0 {
        bail!("{} per-publisher FIFO breaks", outcome.fifo_violations);
    }
    if bus == Bus::Msgc && !outcome.orders_agree {
        bail!("msgc subscribers saw different orders");
    }
    Ok(outcome)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args = Args::parse();
    match real_main(args).await {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("msgc-bench: {e:#}");
            std::process::exit(2);
        }
    }
}

/// Returns whether every run succeeded.
async fn real_main(mut args: Args) -> Result<bool> {
    if args.smoke {
        args.reps = 1;
    }
    let reps = args.reps.max(1);
    let mut specs = workloads(&args);
    if let Some(only) = &args.only {
        specs.retain(|s| s.name.contains(only.as_str()));
        if specs.is_empty() {
            bail!("no workload name contains {only:?}");
        }
    }
    let dir = tempfile::Builder::new().prefix("msgc-bench").tempdir()?;
    let load_before = report::loadavg();

    let mut buses: Vec<(Bus, Cluster)> = Vec::new();
    let mut skipped = Vec::new();
    if !args.no_msgc {
        let bin = match &args.msgc_server_bin {
            Some(b) => b.clone(),
            None => default_server_bin()?,
        };
        let mdir = dir.path().join("msgc");
        std::fs::create_dir_all(&mdir)?;
        let mut cluster = procs::start_msgc(&bin, &mdir)?;
        procs::wait_msgc_ready(&mut cluster, Duration::from_secs(30)).await?;
        println!("msgc cluster up: {}", cluster.addrs.join(" "));
        buses.push((Bus::Msgc, cluster));
    }
    if args.no_nats {
        skipped.push("NATS skipped: --no-nats".to_owned());
    } else if !procs::nats_available(&args.nats_server_bin) {
        skipped.push(format!(
            "NATS skipped: `{} --version` did not run (install: apt-get install -y nats-server)",
            args.nats_server_bin
        ));
    } else {
        let ndir = dir.path().join("nats");
        std::fs::create_dir_all(&ndir)?;
        let mut cluster = procs::start_nats(&args.nats_server_bin, &ndir)?;
        procs::wait_nats_ready(&mut cluster, Duration::from_secs(30)).await?;
        println!("NATS cluster up: {}", cluster.addrs.join(" "));
        buses.push((Bus::Nats, cluster));
    }
    for s in &skipped {
        println!("{s}");
    }
    if buses.is_empty() {
        bail!("nothing to run");
    }

    // Warm-up: one small fan-out per bus (connections, allocators, JIT-free
    // but caches and routes warm).
    let mut warm = specs[0].clone();
    warm.msgs_per_publisher = warm
        .msgs_per_publisher
        .min(if args.smoke { 200 } else { 20_000 });
    for (bus, cluster) in &mut buses {
        if let Err(e) = measure(*bus, &warm, cluster, "warm").await {
            println!("warm-up {} failed: {e:#}", bus.name());
        }
    }

    let mut results = Results::new(&specs);
    for rep in 0..reps {
        for (w, spec) in specs.iter().enumerate() {
            // Alternate which bus goes first, so drift favours neither.
            let order: Vec<usize> = if rep % 2 == 0 {
                (0..buses.len()).collect()
            } else {
                (0..buses.len()).rev().collect()
            };
            for b in order {
                let (bus, cluster) = &mut buses[b];
                let tag = format!("r{rep}w{w}");
                let r = measure(*bus, spec, cluster, &tag).await;
                println!(
                    "rep {}/{reps} {:<38} {:<5} {}",
                    rep + 1,
                    spec.name,
                    bus.name(),
                    report::one_line(spec, &r)
                );
                results.push(w, *bus, r.map_err(|e| format!("{e:#}")));
            }
        }
    }
    let load_after = report::loadavg();

    let table = report::table(
        &specs,
        &results,
        &buses.iter().map(|b| b.0).collect::<Vec<_>>(),
    );
    println!("\n{table}");
    for s in &skipped {
        println!("{s}");
    }

    let mut profile_md = None;
    if args.profile
        && let Some((_, cluster)) = buses.iter_mut().find(|(b, _)| *b == Bus::Msgc)
    {
        match profile::perf_profile(&specs[0], cluster, dir.path()).await {
            Ok(md) => {
                println!("{md}");
                profile_md = Some(md);
            }
            Err(e) => println!("profile failed: {e:#}"),
        }
    }

    if let Some(out) = &args.out {
        if args.smoke {
            println!("--smoke: not writing {}", out.display());
        } else {
            let md = report::markdown(&report::Context {
                table: &table,
                specs: &specs,
                results: &results,
                buses: &buses.iter().map(|b| b.0).collect::<Vec<_>>(),
                reps,
                load_before: &load_before,
                load_after: &load_after,
                nats_bin: &args.nats_server_bin,
                profile: profile_md.as_deref(),
                skipped: &skipped,
            });
            report::write_preserving_notes(out, &md)?;
            println!("wrote {}", out.display());
        }
    }
    let ok = results.all_ok();
    if !ok {
        // Keep the server configs and logs of a run with failures.
        let kept = dir.keep();
        println!(
            "some runs failed; server configs and logs kept in {}",
            kept.display()
        );
    }
    Ok(ok)
}
