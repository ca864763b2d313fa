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
//!   its health check and the re-formation before the next.
//!
//! Every heal (a `docker start`, `network connect` or `restart` returning)
//! must be followed, within 10 × `keepalive_interval` of it, by one view of
//! all three servers (`Admin/GetServerView`) and by every node listing every
//! node (`eccluster.v1.Node/Membership`, [`crate::compose_nodes`]); both
//! times are reported per heal. A fault must take effect: after a kill the
//! view id has grown, and during a partition the other servers show a view
//! without the cut-off one. At the end of the run every node still lists
//! every node (no node lost its membership for good). Those are findings
//! like the message checks of [`crate::judge`].
//!
//! Containers and the network are found by their compose labels
//! (`com.docker.compose.project` / `.service`). A server touched by any fault
//! of the run counts as faulted; with `rolling-restart` every server is, so
//! the never-faulted checks of [`crate::judge`] only bite in runs without it.
//! The partition-safe checks (`msgc_check::check_partitioned`: no duplicates,
//! no creation, FIFO, one position per message, agreed order between every
//! two subscribers) hold over every session of every run: the bus delivers
//! an op in doubt at a partition on one side only, at one place in the order
//! (docs/view-change.md, rule 14a).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use msgc_check::Record;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tokio_util::sync::CancellationToken;

use crate::compose_nodes::{self, NodeWatch};
use crate::error::ChaosError;
use crate::judge::{Evidence, Finding, Verdict, judge};
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
    /// Node services (`node1..3`), which are also their node names.
    pub nodes: Vec<String>,
    /// Their published ECCluster_Listener addresses, same order.
    pub node_addrs: Vec<String>,
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

/// How the cluster re-formed after one heal, both measured from the heal.
#[derive(Clone, Debug)]
pub struct Reform {
    /// The heal, as done (`docker start msgc1`, ...).
    pub heal: String,
    /// Time to one view of every server, or their views at the bound.
    pub view: Result<Duration, String>,
    /// Time until every node lists every node, or what they listed at the bound.
    pub nodes: Result<Duration, String>,
}

impl Reform {
    /// `one view X ms, nodes listed Y ms` (or what failed).
    pub fn describe(&self) -> String {
        let ms = |r: &Result<Duration, String>| match r {
            Ok(d) => format!("{} ms", d.as_millis()),
            Err(_) => "NOT in bound".into(),
        };
        format!(
            "one view {}, every node lists all {}",
            ms(&self.view),
            ms(&self.nodes)
        )
    }
}

/// What one fault did.
#[derive(Clone, Debug)]
pub struct StepReport {
    /// The fault, as done.
    pub what: String,
    /// The re-formation after each of its heals (one per server of a
    /// rolling restart).
    pub reforms: Vec<Reform>,
    /// A fault that had to change the views and did not, with why.
    pub no_effect: Option<String>,
}

impl StepReport {
    /// One line: the fault, then its re-formation times.
    pub fn line(&self) -> String {
        let reforms: Vec<String> = self
            .reforms
            .iter()
            .map(|r| format!("{}: {}", r.heal, r.describe()))
            .collect();
        format!("{} | {}", self.what, reforms.join("; "))
    }
}

/// The outcome of one compose seed.
#[derive(Clone, Debug)]
pub struct ComposeReport {
    /// The seed.
    pub seed: u64,
    /// What was done, one report per fault.
    pub steps: Vec<StepReport>,
    /// The verdict.
    pub verdict: Verdict,
    /// Servers never faulted.
    pub never_faulted: Vec<String>,
    /// After the final phase: every node lists every node (time from its
    /// start), or what they listed.
    pub final_nodes: Result<Duration, String>,
    /// The run's directory (removed if it passed and `keep` was off).
    pub dir: PathBuf,
    /// Wall time.
    pub elapsed: Duration,
}

struct Cluster<'a> {
    cfg: &'a ComposeConfig,
    views: Views,
    nodes_watch: NodeWatch,
    servers: Vec<String>,
    nodes: Vec<String>,
    network: String,
}

impl Cluster<'_> {
    /// The coordinator's index and the view id, from the first server that answers.
    async fn coordinator(&self) -> (usize, u64) {
        for s in self.views.snapshot().await.into_iter().flatten() {
            if let Some(i) = self.cfg.servers.iter().position(|n| *n == s.coordinator) {
                return (i, s.view_id);
            }
        }
        (0, 0)
    }

    /// The bound on re-forming after a heal: 10 × keepalive_interval.
    fn bound(&self) -> Duration {
        self.cfg.keepalive * 10
    }

    /// Waits, up to the bound from `healed`, for one view of every server
    /// and then for every node to list every node.
    async fn reform(&self, heal: String, healed: Instant) -> Reform {
        let deadline = healed + self.bound();
        let view = self
            .views
            .wait_one_view(deadline.saturating_duration_since(Instant::now()))
            .await
            .map(|_| healed.elapsed())
            .map_err(|s| describe(&s, &self.cfg.servers));
        let nodes = self
            .nodes_watch
            .wait_all_listed(healed, deadline)
            .await
            .map_err(|s| compose_nodes::describe(&s, &self.cfg.nodes));
        Reform { heal, view, nodes }
    }

    /// Polls the servers other than `victim` until each is in a settled view
    /// without it, at most `within`; the time it took.
    async fn left_out(&self, victim: usize, within: Duration) -> Option<Duration> {
        let start = Instant::now();
        let name = &self.cfg.servers[victim];
        while start.elapsed() < within {
            let snap = self.views.snapshot().await;
            let others = snap.iter().enumerate().filter(|(i, _)| *i != victim);
            let without = others.clone().count() > 0
                && others.clone().all(|(_, s)| {
                    s.as_ref().is_some_and(|s| {
                        !s.view_change_in_progress && !s.members.iter().any(|m| m == name)
                    })
                });
            if without {
                return Some(start.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    /// The view id every server agrees on now (after a re-formation), if any.
    async fn view_id(&self) -> Option<u64> {
        let snap = self.views.snapshot().await;
        let first = snap.first()?.as_ref()?.view_id;
        snap.iter()
            .all(|s| s.as_ref().is_some_and(|s| s.view_id == first))
            .then_some(first)
    }

    /// Applies one fault and heals it, measuring the re-formation after
    /// each heal; the servers it touched and its report.
    async fn apply(&self, p: &Planned) -> Result<(Vec<usize>, StepReport), ChaosError> {
        let ht = self.cfg.health_timeout;
        match p.kind {
            ComposeFault::KillCoordinator => {
                let (c, before) = self.coordinator().await;
                let svc = &self.cfg.servers[c];
                docker(&["kill", &self.servers[c]]).await?;
                tokio::time::sleep(p.hold).await;
                docker(&["start", &self.servers[c]]).await?;
                let healed = Instant::now();
                let (healthy, reform) = tokio::join!(
                    wait_healthy(&self.servers[c], ht),
                    self.reform(format!("docker start {svc}"), healed)
                );
                let healthy = healthy?;
                let after = self.view_id().await;
                let no_effect = (reform.view.is_ok() && after.is_some_and(|a| a <= before))
                    .then(|| {
                        format!(
                            "the view id is still {} (was {before}): the restarted server is a new incarnation, so a new view was due",
                            after.unwrap_or_default()
                        )
                    });
                let what = format!(
                    "docker kill {svc} (coordinator of view {before}), start after {} ms, healthy {} ms after the start",
                    p.hold.as_millis(),
                    healthy.as_millis()
                );
                Ok((
                    vec![c],
                    StepReport {
                        what,
                        reforms: vec![reform],
                        no_effect,
                    },
                ))
            }
            ComposeFault::RestartNode => {
                let (n, svc) = (&self.nodes[p.target], &self.cfg.nodes[p.target]);
                docker(&["restart", n]).await?;
                let healed = Instant::now();
                let (healthy, reform) = tokio::join!(
                    wait_healthy(n, ht),
                    self.reform(format!("docker restart {svc}"), healed)
                );
                let healthy = healthy?;
                let what = format!(
                    "docker restart {svc}, healthy {} ms after the restart returned",
                    healthy.as_millis()
                );
                Ok((
                    Vec::new(),
                    StepReport {
                        what,
                        reforms: vec![reform],
                        no_effect: None,
                    },
                ))
            }
            ComposeFault::Partition => {
                let (s, svc) = (&self.servers[p.target], &self.cfg.servers[p.target]);
                docker(&["network", "disconnect", &self.network, s]).await?;
                let cut = Instant::now();
                let left = self.left_out(p.target, p.hold).await;
                // The rest of the hold (left_out returns once it sees the split).
                tokio::time::sleep(p.hold.saturating_sub(cut.elapsed())).await;
                docker(&["network", "connect", "--alias", svc, &self.network, s]).await?;
                let healed = Instant::now();
                let reform = self
                    .reform(format!("docker network connect {svc}"), healed)
                    .await;
                let no_effect = left.is_none().then(|| {
                    format!(
                        "the other servers never showed a settled view without {svc} in the {} ms it was disconnected",
                        p.hold.as_millis()
                    )
                });
                let what = format!(
                    "docker network disconnect {svc} for {} ms (the others' view without it after {}), connect",
                    p.hold.as_millis(),
                    left.map_or("NEVER".into(), |d| format!("{} ms", d.as_millis()))
                );
                Ok((
                    vec![p.target],
                    StepReport {
                        what,
                        reforms: vec![reform],
                        no_effect,
                    },
                ))
            }
            ComposeFault::RollingRestart => {
                let mut reforms = Vec::new();
                let mut parts = Vec::new();
                for (i, s) in self.servers.iter().enumerate() {
                    let svc = &self.cfg.servers[i];
                    docker(&["restart", s]).await?;
                    let healed = Instant::now();
                    // The next server only once this one is healthy and the
                    // cluster re-formed (or the bound passed).
                    let (healthy, reform) = tokio::join!(
                        wait_healthy(s, ht),
                        self.reform(format!("docker restart {svc}"), healed)
                    );
                    parts.push(format!("{svc} healthy {} ms", healthy?.as_millis()));
                    reforms.push(reform);
                }
                Ok((
                    (0..self.servers.len()).collect(),
                    StepReport {
                        what: format!("rolling restart ({})", parts.join(", ")),
                        reforms,
                        no_effect: None,
                    },
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
        nodes_watch: NodeWatch::new(&cfg.node_addrs, &cfg.nodes),
        servers,
        nodes,
        network: network(&cfg.project).await?,
    };
    let ready = Instant::now();
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
    cluster
        .nodes_watch
        .wait_all_listed(ready, ready + Duration::from_secs(60))
        .await
        .map_err(|s| {
            ChaosError::Setup(format!(
                "not every node lists every node: {}",
                compose_nodes::describe(&s, &cfg.nodes)
            ))
        })?;
    let stop = CancellationToken::new();
    let clients = Clients::start(&cfg.addrs, cfg.rate, cfg.max_per_publisher, &stop);
    let outcome = exercise(&cluster, &clients, seed).await;
    stop.cancel();
    let (subs, pubs) = clients.finish().await;
    let (steps, faulted, mut evidence) = outcome?;
    // No node may lose its membership for good: after the final phase,
    // every node still (or again) lists every node.
    let end = Instant::now();
    let final_nodes = cluster
        .nodes_watch
        .wait_all_listed(end, end + cluster.bound())
        .await
        .map_err(|s| compose_nodes::describe(&s, &cfg.nodes));
    evidence.subs = subs;
    evidence.pubs = pubs;
    evidence.never_faulted = (0..cfg.servers.len())
        .filter(|i| !faulted.contains(i))
        .collect();
    let mut verdict = judge(&evidence);
    verdict
        .findings
        .extend(step_findings(&steps, &final_nodes, cluster.bound()));
    let text: String = verdict.findings.iter().map(|f| format!("{f}\n")).collect();
    std::fs::write(dir.join("findings.txt"), text)?;
    let lines: Vec<String> = steps.iter().map(StepReport::line).collect();
    std::fs::write(dir.join("steps.txt"), lines.join("\n") + "\n")?;
    if verdict.findings.is_empty() && !cfg.keep {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        save_logs(&cluster, &dir).await;
        save_sessions(&evidence, &dir)?;
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
        final_nodes,
        dir,
        elapsed: started.elapsed(),
    })
}

/// The findings of the steps: every heal re-formed in bound (servers and
/// nodes), every fault took effect, and the nodes still list each other at
/// the end.
pub fn step_findings(
    steps: &[StepReport],
    final_nodes: &Result<Duration, String>,
    bound: Duration,
) -> Vec<Finding> {
    let mut found = Vec::new();
    for step in steps {
        for r in &step.reforms {
            for (nodes, res) in [(false, &r.view), (true, &r.nodes)] {
                if let Err(state) = res {
                    found.push(Finding::NotReformed {
                        heal: r.heal.clone(),
                        nodes,
                        bound,
                        state: state.clone(),
                    });
                }
            }
        }
        if let Some(why) = &step.no_effect {
            found.push(Finding::NoEffect {
                fault: step.what.clone(),
                why: why.clone(),
            });
        }
    }
    if let Err(state) = final_nodes {
        found.push(Finding::NotReformed {
            heal: "the end of the run (a node lost its membership for good)".into(),
            nodes: true,
            bound,
            state: state.clone(),
        });
    }
    found
}

type Exercised = (Vec<StepReport>, BTreeSet<usize>, Evidence);

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
    let (mut steps, mut faulted) = (Vec::new(), BTreeSet::new());
    for p in plan(seed, cfg) {
        let (touched, report) = cluster.apply(&p).await?;
        faulted.extend(touched);
        println!("    {}", report.line());
        steps.push(report);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let bound = cluster.bound();
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

/// Every subscriber session's records, one line each (`sessions.txt`), so a
/// finding can be read against what each client delivered.
fn save_sessions(ev: &Evidence, dir: &Path) -> Result<(), ChaosError> {
    use std::fmt::Write as _;
    let mut text = String::new();
    for s in &ev.subs {
        let _ = writeln!(
            text,
            "== {} on {} ({} records, ended: {:?})",
            s.log.client,
            s.log.server,
            s.log.records.len(),
            s.ended
        );
        for (i, r) in s.log.records.iter().enumerate() {
            let _ = match r {
                Record::Delivery { id, position, .. } => {
                    writeln!(text, "{i} {position:?} msg {id}")
                }
                Record::View {
                    gid,
                    change,
                    members,
                    position,
                    ..
                } => writeln!(
                    text,
                    "{i} {position:?} view gid {gid} {change:?} {members:?}"
                ),
            };
        }
    }
    for p in &ev.pubs {
        let _ = writeln!(
            text,
            "== publisher {} on server {}: sent {}, acked {}, ended: {:?}",
            p.log.tag,
            p.server,
            p.log.sent.len(),
            p.log.acked,
            p.ended
        );
    }
    std::fs::write(dir.join("sessions.txt"), text)?;
    Ok(())
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

/// The one-line summary of a compose seed: verdict, faults, messages
/// checked, violations, and the slowest re-formation after a heal (servers
/// in one view, every node listing every node).
pub fn summary_line(r: &ComposeReport) -> String {
    let counts = crate::runner::finding_counts(&r.verdict);
    let findings: Vec<String> = counts.iter().map(|(k, n)| format!("{k}: {n}")).collect();
    let reforms = r.steps.iter().flat_map(|s| &s.reforms);
    let worst = |f: fn(&Reform) -> &Result<Duration, String>| {
        let all: Vec<&Result<Duration, String>> = reforms.clone().map(f).collect();
        if all.iter().any(|x| x.is_err()) {
            "NOT in bound".to_owned()
        } else {
            let max = all.iter().filter_map(|x| x.as_ref().ok()).max();
            max.map_or("-".into(), |d| format!("{} ms", d.as_millis()))
        }
    };
    format!(
        "compose seed {}: {} | {} faults ({}) | never faulted {:?} | {} messages checked | {} violations{} | slowest re-form after a heal: one view {}, nodes {} | {:.0}s",
        r.seed,
        if r.verdict.findings.is_empty() {
            "pass"
        } else {
            "FAIL"
        },
        r.steps.len(),
        r.steps
            .iter()
            .map(|s| s
                .what
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" "))
            .collect::<Vec<_>>()
            .join(", "),
        r.never_faulted,
        r.verdict.messages,
        r.verdict.findings.len(),
        if findings.is_empty() {
            String::new()
        } else {
            format!(" ({})", findings.join(", "))
        },
        worst(|r| &r.view),
        worst(|r| &r.nodes),
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
            node_addrs: vec![],
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

    fn reform(view: bool, nodes: bool) -> Reform {
        let r = |ok: bool| {
            if ok {
                Ok(Duration::from_millis(5))
            } else {
                Err("msgc3: no answer".to_owned())
            }
        };
        Reform {
            heal: "docker start msgc1".into(),
            view: r(view),
            nodes: r(nodes),
        }
    }

    #[test]
    fn every_heal_must_re_form_servers_and_nodes_in_bound() {
        let step = |reforms, no_effect| StepReport {
            what: "docker kill msgc1".into(),
            reforms,
            no_effect,
        };
        let bound = Duration::from_secs(50);
        let fine = vec![step(vec![reform(true, true), reform(true, true)], None)];
        assert!(step_findings(&fine, &Ok(Duration::ZERO), bound).is_empty());
        let bad = vec![
            step(vec![reform(true, true), reform(false, true)], None),
            step(vec![reform(true, false)], Some("view id unchanged".into())),
        ];
        let found = step_findings(&bad, &Err("node2 lists [\"node2\"]".into()), bound);
        let kinds: Vec<String> = found.iter().map(Finding::kind).collect();
        assert_eq!(
            kinds,
            [
                "no single view in bound after a heal",
                "nodes not all listed in bound after a heal",
                "fault without effect",
                "nodes not all listed in bound after a heal",
            ],
            "{found:?}"
        );
        assert!(found[3].to_string().contains("for good"), "{}", found[3]);
        let line = bad[0].line();
        assert!(line.contains("one view NOT in bound"), "{line}");
    }

    #[test]
    fn names_round_trip() {
        for k in ComposeFault::ALL {
            assert_eq!(ComposeFault::parse(k.name()), Some(k));
        }
        assert_eq!(ComposeFault::parse("nope"), None);
    }
}
