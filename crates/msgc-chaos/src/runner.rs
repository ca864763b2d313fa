//! `procs` mode: one seeded schedule against real msgc-server processes on
//! loopback, from start to verdict.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::error::ChaosError;
use crate::judge::{Evidence, Verdict, judge};
use crate::netcut::{CgroupRoot, Firewall};
use crate::phases::{self, Clients};
use crate::procs::{ServerSet, free_ports};
use crate::schedule::{Fault, Hit, Params, Schedule, Step, name};
use crate::views::{Views, describe};

/// Everything a `procs` run is made from, besides the seed.
#[derive(Clone, Debug)]
pub struct ProcsConfig {
    /// The msgc-server binary.
    pub binary: PathBuf,
    /// Cluster size, faulted servers, faults per faulted server, keepalive.
    pub params: Params,
    /// Messages per second per publisher.
    pub rate: u64,
    /// Most messages one publisher sends in a run.
    pub max_per_publisher: u64,
    /// Messages each publisher sends after the last fault.
    pub final_per_server: usize,
    /// Where each seed's directory (configs, server logs, findings) goes.
    pub out_dir: PathBuf,
    /// Keep the directory of passing seeds too.
    pub keep: bool,
    /// Steady traffic before the first fault.
    pub warmup: Duration,
}

/// What happened in one step.
#[derive(Clone, Debug)]
pub struct StepReport {
    /// The fault, as text.
    pub fault: String,
    /// Time from the heal to one view of every server, if within the bound.
    pub reform: Option<Duration>,
    /// For a cascade: whether the second hit came while a view change was seen.
    pub during_view_change: Option<bool>,
}

/// The outcome of one seed.
#[derive(Clone, Debug)]
pub struct SeedReport {
    /// The seed.
    pub seed: u64,
    /// The schedule it ran.
    pub schedule: Schedule,
    /// One report per step.
    pub steps: Vec<StepReport>,
    /// The verdict.
    pub verdict: Verdict,
    /// Time to one view after the last fault (or the state at the bound).
    pub final_reform: Result<Duration, String>,
    /// The run's directory (removed if it passed and `keep` was off).
    pub dir: PathBuf,
    /// Wall time of the run.
    pub elapsed: Duration,
}

/// Servers and firewall of one run. Fields drop in order: the servers are
/// killed first, so their cgroups are empty when the firewall removes them.
struct Harness {
    servers: ServerSet,
    fw: Firewall,
}

impl Harness {
    async fn hit(&mut self, server: usize, hit: Hit) -> Result<(), ChaosError> {
        match hit {
            Hit::Kill => self.servers.kill(server),
            Hit::Pause => self.servers.stop(server)?,
        }
        Ok(())
    }

    fn unhit(&mut self, server: usize, hit: Hit) -> Result<(), ChaosError> {
        match hit {
            Hit::Kill => self.servers.restart(server),
            Hit::Pause => self.servers.cont(server),
        }
    }
}

/// Applies one fault and heals it; returns whether a cascade's second hit
/// met a view change in progress.
async fn apply(
    h: &mut Harness,
    views: &Views,
    params: &Params,
    fault: &Fault,
) -> Result<Option<bool>, ChaosError> {
    match fault {
        Fault::Kill { server, down } => {
            h.servers.kill(*server);
            tokio::time::sleep(*down).await;
            h.servers.restart(*server)?;
        }
        Fault::Pause { server, hold } => {
            h.servers.stop(*server)?;
            tokio::time::sleep(*hold).await;
            h.servers.cont(*server)?;
        }
        Fault::Cascade {
            first,
            second,
            hold,
        } => {
            h.hit(first.0, first.1).await?;
            let watchers: Vec<usize> = (0..params.servers)
                .filter(|s| *s != first.0 && *s != second.0)
                .collect();
            let seen = views
                .wait_view_change(&watchers, &name(first.0), params.timeout() * 3)
                .await;
            h.hit(second.0, second.1).await?;
            tokio::time::sleep(*hold).await;
            h.unhit(first.0, first.1)?;
            h.unhit(second.0, second.1)?;
            return Ok(Some(seen));
        }
        Fault::Cut { hold, .. } | Fault::NonTransitive { hold, .. } | Fault::Split { hold, .. } => {
            h.fw.cut(&fault.links(params.servers))?;
            tokio::time::sleep(*hold).await;
            h.fw.heal()?;
        }
    }
    Ok(None)
}

async fn run_steps(
    h: &mut Harness,
    views: &Views,
    schedule: &Schedule,
    log: &mut std::fs::File,
) -> Result<Vec<StepReport>, ChaosError> {
    use std::io::Write;
    let bound = schedule.params.keepalive * 10;
    let mut reports = Vec::new();
    for (k, Step { fault, gap }) in schedule.steps.iter().enumerate() {
        writeln!(log, "step {k}: {fault}")?;
        let during_view_change = apply(h, views, &schedule.params, fault).await?;
        let reform = views.wait_one_view(bound).await;
        let restarted = h.servers.respawn_exited()?;
        match &reform {
            Ok(d) => writeln!(log, "  healed; one view after {} ms", d.as_millis())?,
            Err(snap) => writeln!(
                log,
                "  healed; no one view in bound: {}",
                describe(snap, &views.names)
            )?,
        }
        if !restarted.is_empty() {
            writeln!(log, "  respawned exited servers {restarted:?}")?;
        }
        reports.push(StepReport {
            fault: fault.to_string(),
            reform: reform.ok(),
            during_view_change,
        });
        tokio::time::sleep(*gap).await;
    }
    Ok(reports)
}

fn seed_dir(out: &Path, seed: u64) -> Result<PathBuf, ChaosError> {
    let dir = out.join(format!("seed-{seed}"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Runs one seed against real processes and judges it.
pub async fn run_seed(
    cfg: &ProcsConfig,
    root: &CgroupRoot,
    seed: u64,
) -> Result<SeedReport, ChaosError> {
    let started = Instant::now();
    let schedule = Schedule::generate(seed, &cfg.params);
    let dir = seed_dir(&cfg.out_dir, seed)?;
    let mut log = std::fs::File::create(dir.join("schedule.txt"))?;
    write_schedule(&mut log, &schedule)?;
    let n = cfg.params.servers;
    let ports = free_ports(n)?;
    let fw = Firewall::new(
        root.clone(),
        &format!("msgc-chaos-{}-{seed}", std::process::id()),
        &ports,
    )?;
    let procs_files = (0..n).map(|i| Some(fw.procs_file(i))).collect();
    let ka = u64::try_from(cfg.params.keepalive.as_millis()).unwrap_or(250);
    let servers = ServerSet::start(&cfg.binary, &dir, &ports, ka, procs_files)?;
    let mut h = Harness { servers, fw };
    let names: Vec<String> = (0..n).map(name).collect();
    let views = Views::new(&h.servers.addrs, &names);
    views
        .wait_one_view(Duration::from_secs(30))
        .await
        .map_err(|s| ChaosError::Setup(format!("mesh never formed: {}", describe(&s, &names))))?;
    let stop = CancellationToken::new();
    let clients = Clients::start(&h.servers.addrs, cfg.rate, cfg.max_per_publisher, &stop);
    let outcome = exercise(&mut h, &views, &schedule, &clients, cfg, &mut log).await;
    stop.cancel();
    let (subs, pubs) = clients.finish().await;
    drop(h);
    let (steps, mut evidence) = outcome?;
    evidence.subs = subs;
    evidence.pubs = pubs;
    evidence.never_faulted = schedule.never_faulted();
    let verdict = judge(&evidence);
    write_findings(&dir, &verdict)?;
    if verdict.findings.is_empty() && !cfg.keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(SeedReport {
        seed,
        schedule,
        steps,
        verdict,
        final_reform: evidence.one_view,
        dir,
        elapsed: started.elapsed(),
    })
}

/// Setup of the clients, the schedule, and the final phase.
async fn exercise(
    h: &mut Harness,
    views: &Views,
    schedule: &Schedule,
    clients: &Clients,
    cfg: &ProcsConfig,
    log: &mut std::fs::File,
) -> Result<(Vec<StepReport>, Evidence), ChaosError> {
    clients
        .wait_settled(Duration::from_secs(20))
        .await
        .map_err(ChaosError::Setup)?;
    clients.steady(true);
    tokio::time::sleep(cfg.warmup).await;
    let steps = run_steps(h, views, schedule, log).await?;
    let bound = schedule.params.keepalive * 10;
    let one_view = views
        .wait_stable_view(bound, schedule.params.keepalive * 2)
        .await
        .map_err(|s| describe(&s, &views.names));
    h.servers.respawn_exited()?;
    let mut evidence = phases::final_phase(clients, cfg.final_per_server).await;
    evidence.one_view = one_view;
    evidence.one_view_bound = bound;
    Ok((steps, evidence))
}

fn write_schedule(log: &mut std::fs::File, s: &Schedule) -> Result<(), ChaosError> {
    use std::io::Write;
    let faulted: Vec<String> = s.faulted.iter().map(|i| name(*i)).collect();
    writeln!(
        log,
        "seed {} servers {} faulted [{}] keepalive {} ms, {} steps",
        s.seed,
        s.params.servers,
        faulted.join(","),
        s.params.keepalive.as_millis(),
        s.steps.len()
    )?;
    Ok(())
}

fn write_findings(dir: &Path, verdict: &Verdict) -> Result<(), ChaosError> {
    let text: String = verdict.findings.iter().map(|f| format!("{f}\n")).collect();
    std::fs::write(dir.join("findings.txt"), text)?;
    Ok(())
}

/// Counts of each fault class in a schedule.
pub fn class_counts(s: &Schedule) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    for step in &s.steps {
        *counts.entry(step.fault.class()).or_default() += 1;
    }
    counts
}

/// Counts of each finding kind in a verdict.
pub fn finding_counts(v: &Verdict) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for f in &v.findings {
        *counts.entry(f.kind()).or_default() += 1;
    }
    counts
}

/// The one-line summary of a seed.
pub fn summary_line(r: &SeedReport) -> String {
    let classes: Vec<String> = class_counts(&r.schedule)
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    let reforms: Vec<String> = r
        .steps
        .iter()
        .map(|s| s.reform.map_or("-".into(), |d| d.as_millis().to_string()))
        .collect();
    let findings: Vec<String> = finding_counts(&r.verdict)
        .iter()
        .map(|(k, n)| format!("{k}: {n}"))
        .collect();
    let final_reform = match &r.final_reform {
        Ok(d) => format!("{} ms", d.as_millis()),
        Err(_) => "NOT within bound".into(),
    };
    format!(
        "seed {}: {} | {} faults ({}) | {} messages checked | {} violations{} | re-form ms after each heal [{}], final {} | {:.0}s",
        r.seed,
        if r.verdict.findings.is_empty() {
            "pass"
        } else {
            "FAIL"
        },
        r.schedule.steps.len(),
        classes.join(", "),
        r.verdict.messages,
        r.verdict.findings.len(),
        if findings.is_empty() {
            String::new()
        } else {
            format!(" ({})", findings.join(", "))
        },
        reforms.join(","),
        final_reform,
        r.elapsed.as_secs_f64()
    )
}
