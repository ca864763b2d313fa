//! `compose` mode: the same clients and checks against a running
//! docker-compose cluster (`docker-compose.yml`: msgc servers `msgc1..3`
//! and cluster-listener nodes `node1..3`), through the ports it publishes on
//! 127.0.0.1. Faults are container operations:
//!
//! * `kill-coordinator`: `docker kill` of the container of the view's
//!   coordinator, then `docker start`;
//! * `restart-node`: `docker restart` of a node container (a client of the bus);
//! * `partition`: `docker network disconnect` of a server from the project's
//!   network, then `docker network connect` (with its service name as alias);
//! * `rolling-restart`: `docker restart` of each server in turn, waiting for
//!   its health check and one view before the next.
//!
//! Containers and the network are found by their compose labels
//! (`com.docker.compose.project` / `.service`). A server touched by any fault
//! of the run counts as faulted; with `rolling-restart` every server is, so
//! the never-faulted checks of [`crate::judge`] only bite in runs without it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tokio_util::sync::CancellationToken;

use crate::error::ChaosError;
use crate::judge::{Evidence, Verdict, judge};
use crate::phases::{self, Clients};
use crate::views::{Views, describe};

/// A container fault of compose mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ComposeFault {
    /// `docker kill` of the coordinator's container, then `docker start`.
    KillCoordinator,
    /// `docker restart` of a node container.
    RestartNode,
    /// `docker network disconnect` / `connect` of a server.
    Partition,
    /// `docker restart` of every server, one at a time, waiting for health.
    RollingRestart,
}

impl ComposeFault {
    /// Every kind, in command-line order.
    pub const ALL: [ComposeFault; 4] = [
        ComposeFault::KillCoordinator,
        ComposeFault::RestartNode,
        ComposeFault::Partition,
        ComposeFault::RollingRestart,
    ];

    /// Its command-line name.
    pub fn name(self) -> &'static str {
        match self {
            ComposeFault::KillCoordinator => "kill-coordinator",
            ComposeFault::RestartNode => "restart-node",
            ComposeFault::Partition => "partition",
            ComposeFault::RollingRestart => "rolling-restart",
        }
    }

    /// Parses a command-line name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == s)
    }
}

/// Everything a compose run is made from, besides the seed.
#[derive(Clone, Debug)]
pub struct ComposeConfig {
    /// The compose project name.
    pub project: String,
    /// Server services, in peer-name order (`msgc1..3`).
    pub servers: Vec<String>,
    /// Their published client addresses, same order.
    pub addrs: Vec<String>,
    /// Node services (`node1..3`).
    pub nodes: Vec<String>,
    /// The servers' `keepalive_interval` (deploy/conf: 5 s).
    pub keepalive: Duration,
    /// Fault kinds to draw from.
    pub kinds: Vec<ComposeFault>,
    /// Faults per run (each kind at least once if there are enough).
    pub faults: usize,
    /// Messages per second per publisher.
    pub rate: u64,
    /// Most messages one publisher sends in a run.
    pub max_per_publisher: u64,
    /// Messages each publisher sends after the last fault.
    pub final_per_server: usize,
    /// How long a restarted container may take to be healthy.
    pub health_timeout: Duration,
    /// Where each seed's directory goes.
    pub out_dir: PathBuf,
    /// Keep the directories of passing seeds too.
    pub keep: bool,
}

/// One planned fault: its kind, a target index (server or node; unused for
/// the coordinator kill and the rolling restart) and a duration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planned {
    /// The kind.
    pub kind: ComposeFault,
    /// The server or node index it hits.
    pub target: usize,
    /// Down time (kill) or partition time.
    pub hold: Duration,
}

/// The seeded plan of a run: every kind once (shuffled), then random kinds.
pub fn plan(seed: u64, cfg: &ComposeConfig) -> Vec<Planned> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut kinds = cfg.kinds.clone();
    kinds.shuffle(&mut rng);
    while kinds.len() < cfg.faults && !cfg.kinds.is_empty() {
        kinds.push(cfg.kinds[rng.random_range(0..cfg.kinds.len())]);
    }
    kinds.truncate(cfg.faults);
    let timeout = cfg.keepalive * 3;
    kinds
        .into_iter()
        .map(|kind| {
            let (target, hold) = match kind {
                ComposeFault::RestartNode => {
                    (rng.random_range(0..cfg.nodes.len().max(1)), Duration::ZERO)
                }
                ComposeFault::Partition => (
                    rng.random_range(0..cfg.servers.len()),
                    timeout.mul_f64(rng.random_range(1.2..=2.0)),
                ),
                ComposeFault::KillCoordinator => {
                    (0, Duration::from_millis(rng.random_range(500..=3000)))
                }
                ComposeFault::RollingRestart => (0, Duration::ZERO),
            };
            Planned { kind, target, hold }
        })
        .collect()
}

/// Runs `docker ARGS`; its trimmed stdout.
async fn docker(args: &[&str]) -> Result<String, ChaosError> {
    let out = tokio::process::Command::new("docker")
        .args(args)
        .output()
        .await
        .map_err(|e| ChaosError::Docker(format!("cannot run docker: {e}")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(ChaosError::Docker(format!(
            "docker {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// The container of `service` in `project` (running or not).
pub async fn container(project: &str, service: &str) -> Result<String, ChaosError> {
    let p = format!("label=com.docker.compose.project={project}");
    let s = format!("label=com.docker.compose.service={service}");
    let ids = docker(&["ps", "-aq", "--filter", &p, "--filter", &s]).await?;
    ids.lines().next().map(str::to_owned).ok_or_else(|| {
        ChaosError::Docker(format!(
            "no container of service {service} in compose project {project} (is it up?)"
        ))
    })
}

/// The project's network (`<project>_default` if there are several).
pub async fn network(project: &str) -> Result<String, ChaosError> {
    let p = format!("label=com.docker.compose.project={project}");
    let names = docker(&["network", "ls", "--format", "{{.Name}}", "--filter", &p]).await?;
    let names: Vec<&str> = names.lines().collect();
    let default = format!("{project}_default");
    names
        .iter()
        .find(|n| **n == default)
        .or(names.first())
        .map(|n| (*n).to_owned())
        .ok_or_else(|| ChaosError::Docker(format!("no network of compose project {project}")))
}

/// Waits until `container`'s health check says healthy.
async fn wait_healthy(container: &str, within: Duration) -> Result<Duration, ChaosError> {
    let start = Instant::now();
    let format = "{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}";
    loop {
        let state = docker(&["inspect", "-f", format, container]).await?;
        if state == "healthy" {
            return Ok(start.elapsed());
        }
        if start.elapsed() >= within {
            return Err(ChaosError::Docker(format!(
                "{container} not healthy after {}s (state {state})",
                within.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The outcome of one compose seed.
#[derive(Clone, Debug)]
pub struct ComposeReport {
    /// The seed.
    pub seed: u64,
    /// What was done, one line per fault, with the time to one view after it.
    pub steps: Vec<String>,
    /// The verdict.
    pub verdict: Verdict,
    /// Servers never faulted.
    pub never_faulted: Vec<String>,
    /// The run's directory (removed if it passed and `keep` was off).
    pub dir: PathBuf,
    /// Wall time.
    pub elapsed: Duration,
}

struct Cluster<'a> {
    cfg: &'a ComposeConfig,
    views: Views,
    servers: Vec<String>,
    nodes: Vec<String>,
    network: String,
}

impl Cluster<'_> {
    /// The coordinator's index, from the first server that answers.
    async fn coordinator(&self) -> usize {
        for s in self.views.snapshot().await.into_iter().flatten() {
            if let Some(i) = self.cfg.servers.iter().position(|n| *n == s.coordinator) {
                return i;
            }
        }
        0
    }

    /// Applies one fault and heals it; the servers it touched and a description.
    async fn apply(&self, p: &Planned) -> Result<(Vec<usize>, String), ChaosError> {
        let ht = self.cfg.health_timeout;
        match p.kind {
            ComposeFault::KillCoordinator => {
                let c = self.coordinator().await;
                docker(&["kill", &self.servers[c]]).await?;
                tokio::time::sleep(p.hold).await;
                docker(&["start", &self.servers[c]]).await?;
                let healthy = wait_healthy(&self.servers[c], ht).await?;
                let what = format!(
                    "docker kill {} (coordinator), start after {} ms, healthy after {} ms",
                    self.cfg.servers[c],
                    p.hold.as_millis(),
                    healthy.as_millis()
                );
                Ok((vec![c], what))
            }
            ComposeFault::RestartNode => {
                let n = &self.nodes[p.target];
                docker(&["restart", n]).await?;
                let healthy = wait_healthy(n, ht).await?;
                let what = format!(
                    "docker restart {}, healthy after {} ms",
                    self.cfg.nodes[p.target],
                    healthy.as_millis()
                );
                Ok((Vec::new(), what))
            }
            ComposeFault::Partition => {
                let (s, svc) = (&self.servers[p.target], &self.cfg.servers[p.target]);
                docker(&["network", "disconnect", &self.network, s]).await?;
                tokio::time::sleep(p.hold).await;
                docker(&["network", "connect", "--alias", svc, &self.network, s]).await?;
                let what = format!(
                    "network disconnect {svc} for {} ms, connect",
                    p.hold.as_millis()
                );
                Ok((vec![p.target], what))
            }
            ComposeFault::RollingRestart => {
                let mut parts = Vec::new();
                for (i, s) in self.servers.iter().enumerate() {
                    docker(&["restart", s]).await?;
                    let healthy = wait_healthy(s, ht).await?;
                    let view = self.views.wait_one_view(self.cfg.keepalive * 10).await;
                    parts.push(format!(
                        "{} healthy {} ms, one view {}",
                        self.cfg.servers[i],
                        healthy.as_millis(),
                        view.map_or("NOT in bound".into(), |d| format!("{} ms", d.as_millis()))
                    ));
                }
                Ok((
                    (0..self.servers.len()).collect(),
                    format!("rolling restart: {}", parts.join("; ")),
                ))
            }
        }
    }
}

/// Runs one seed against the compose cluster and judges it.
pub async fn run_seed(cfg: &ComposeConfig, seed: u64) -> Result<ComposeReport, ChaosError> {
    let started = Instant::now();
    let dir = cfg.out_dir.join(format!("compose-seed-{seed}"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    let mut servers = Vec::new();
    for s in &cfg.servers {
        servers.push(container(&cfg.project, s).await?);
    }
    let mut nodes = Vec::new();
    for n in &cfg.nodes {
        nodes.push(container(&cfg.project, n).await?);
    }
    let cluster = Cluster {
        cfg,
        views: Views::new(&cfg.addrs, &cfg.servers),
        servers,
        nodes,
        network: network(&cfg.project).await?,
    };
    cluster
        .views
        .wait_one_view(Duration::from_secs(60))
        .await
        .map_err(|s| {
            ChaosError::Setup(format!(
                "cluster not in one view: {}",
                describe(&s, &cfg.servers)
            ))
        })?;
    let stop = CancellationToken::new();
    let clients = Clients::start(&cfg.addrs, cfg.rate, cfg.max_per_publisher, &stop);
    let outcome = exercise(&cluster, &clients, seed).await;
    stop.cancel();
    let (subs, pubs) = clients.finish().await;
    let (steps, faulted, mut evidence) = outcome?;
    evidence.subs = subs;
    evidence.pubs = pubs;
    evidence.never_faulted = (0..cfg.servers.len())
        .filter(|i| !faulted.contains(i))
        .collect();
    let verdict = judge(&evidence);
    let text: String = verdict.findings.iter().map(|f| format!("{f}\n")).collect();
    std::fs::write(dir.join("findings.txt"), text)?;
    std::fs::write(dir.join("steps.txt"), steps.join("\n") + "\n")?;
    if verdict.findings.is_empty() && !cfg.keep {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        save_logs(&cluster, &dir).await;
    }
    Ok(ComposeReport {
        seed,
        steps,
        never_faulted: evidence
            .never_faulted
            .iter()
            .map(|i| cfg.servers[*i].clone())
            .collect(),
        verdict,
        dir,
        elapsed: started.elapsed(),
    })
}

type Exercised = (Vec<String>, BTreeSet<usize>, Evidence);

async fn exercise(
    cluster: &Cluster<'_>,
    clients: &Clients,
    seed: u64,
) -> Result<Exercised, ChaosError> {
    let cfg = cluster.cfg;
    clients
        .wait_settled(Duration::from_secs(30))
        .await
        .map_err(ChaosError::Setup)?;
    clients.steady(true);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let bound = cfg.keepalive * 10;
    let (mut steps, mut faulted) = (Vec::new(), BTreeSet::new());
    for p in plan(seed, cfg) {
        let (touched, what) = cluster.apply(&p).await?;
        faulted.extend(touched);
        let view = cluster.views.wait_one_view(bound).await;
        steps.push(format!(
            "{what}; one view after {}",
            view.map_or("NOT within bound".into(), |d| format!(
                "{} ms",
                d.as_millis()
            ))
        ));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let one_view = cluster
        .views
        .wait_one_view(bound)
        .await
        .map_err(|s| describe(&s, &cfg.servers));
    let mut evidence = phases::final_phase(clients, cfg.final_per_server).await;
    evidence.one_view = one_view;
    evidence.one_view_bound = bound;
    Ok((steps, faulted, evidence))
}

async fn save_logs(cluster: &Cluster<'_>, dir: &Path) {
    let all = cluster.cfg.servers.iter().zip(&cluster.servers);
    let nodes = cluster.cfg.nodes.iter().zip(&cluster.nodes);
    for (name, id) in all.chain(nodes) {
        let out = tokio::process::Command::new("docker")
            .args(["logs", "--timestamps", id])
            .output()
            .await;
        if let Ok(out) = out {
            let mut text = out.stdout;
            text.extend(out.stderr);
            let _ = std::fs::write(dir.join(format!("{name}.log")), text);
        }
    }
}

/// The one-line summary of a compose seed.
pub fn summary_line(r: &ComposeReport) -> String {
    let counts = crate::runner::finding_counts(&r.verdict);
    let findings: Vec<String> = counts.iter().map(|(k, n)| format!("{k}: {n}")).collect();
    format!(
        "compose seed {}: {} | {} faults | never faulted {:?} | {} messages checked | {} violations{} | {:.0}s",
        r.seed,
        if r.verdict.findings.is_empty() {
            "pass"
        } else {
            "FAIL"
        },
        r.steps.len(),
        r.never_faulted,
        r.verdict.messages,
        r.verdict.findings.len(),
        if findings.is_empty() {
            String::new()
        } else {
            format!(" ({})", findings.join(", "))
        },
        r.elapsed.as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(faults: usize) -> ComposeConfig {
        ComposeConfig {
            project: "p".into(),
            servers: vec!["msgc1".into(), "msgc2".into(), "msgc3".into()],
            addrs: vec![],
            nodes: vec!["node1".into(), "node2".into(), "node3".into()],
            keepalive: Duration::from_secs(5),
            kinds: ComposeFault::ALL.to_vec(),
            faults,
            rate: 1,
            max_per_publisher: 1,
            final_per_server: 1,
            health_timeout: Duration::from_secs(1),
            out_dir: PathBuf::new(),
            keep: false,
        }
    }

    #[test]
    fn plans_are_seeded_and_cover_every_kind() {
        assert_eq!(plan(3, &cfg(6)), plan(3, &cfg(6)));
        let p = plan(3, &cfg(6));
        assert_eq!(p.len(), 6);
        let kinds: BTreeSet<ComposeFault> = p[..4].iter().map(|p| p.kind).collect();
        assert_eq!(kinds.len(), 4);
        assert_eq!(plan(3, &cfg(2)).len(), 2);
        for p in plan(9, &cfg(8)) {
            if p.kind == ComposeFault::Partition {
                assert!(p.target < 3 && p.hold >= Duration::from_secs(15));
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for k in ComposeFault::ALL {
            assert_eq!(ComposeFault::parse(k.name()), Some(k));
        }
        assert_eq!(ComposeFault::parse("nope"), None);
    }
}
