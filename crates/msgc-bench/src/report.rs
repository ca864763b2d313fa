//! Medians, the comparison table, and `BENCHMARKS.md`.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use anyhow::Result;

use crate::workload::{Kind, Outcome, Spec};

/// Which system a result belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bus {
    /// The msgc cluster.
    Msgc,
    /// The NATS cluster.
    Nats,
}

impl Bus {
    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            Bus::Msgc => "msgc",
            Bus::Nats => "NATS",
        }
    }
}

/// Every run's result, per workload and bus.
pub struct Results {
    runs: Vec<[Vec<Result<Outcome, String>>; 2]>,
}

impl Results {
    /// Empty results for `specs`.
    pub fn new(specs: &[Spec]) -> Self {
        Results {
            runs: specs.iter().map(|_| [Vec::new(), Vec::new()]).collect(),
        }
    }

    /// Records one run.
    pub fn push(&mut self, workload: usize, bus: Bus, r: Result<Outcome, String>) {
        self.runs[workload][bus as usize].push(r);
    }

    fn get(&self, workload: usize, bus: Bus) -> &[Result<Outcome, String>] {
        &self.runs[workload][bus as usize]
    }

    /// Whether no run failed.
    pub fn all_ok(&self) -> bool {
        self.runs.iter().flatten().flatten().all(Result::is_ok)
    }
}

/// Median of the values (mean of the middle two for an even count).
pub fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// One figure: the median over successful runs, and how many failed.
struct Figure {
    value: Option<f64>,
    min: f64,
    max: f64,
    failed: Vec<String>,
}

fn figure(runs: &[Result<Outcome, String>], f: impl Fn(&Outcome) -> f64) -> Figure {
    let ok: Vec<f64> = runs
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(&f)
        .collect();
    Figure {
        min: ok.iter().copied().fold(f64::INFINITY, f64::min),
        max: ok.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        value: median(ok),
        failed: runs
            .iter()
            .filter_map(|r| r.as_ref().err().cloned())
            .collect(),
    }
}

fn fmt_int(v: f64) -> String {
    let s = format!("{:.0}", v);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn cell(fig: &Figure, unit: impl Fn(f64) -> String, total: usize) -> String {
    let spread = |v: f64| {
        if total > 1 && fig.max > fig.min {
            format!(
                "{} <sub>[{}–{}]</sub>",
                unit(v),
                short(fig.min),
                short(fig.max)
            )
        } else {
            unit(v)
        }
    };
    match fig.value {
        None if total == 0 => "not run".to_owned(),
        None => format!("FAILED ({}/{} runs)", fig.failed.len(), total),
        Some(v) if fig.failed.is_empty() => spread(v),
        Some(v) => format!(
            "{} ({} of {} runs failed)",
            spread(v),
            fig.failed.len(),
            total
        ),
    }
}

/// A compact number for the min–max range: 1234567 → 1.23M, 45678 → 46k.
fn short(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// One row of the table.
struct Row {
    workload: String,
    msgc: String,
    nats: String,
    ratio: String,
}

fn ratio(m: &Figure, n: &Figure) -> String {
    match (m.value, n.value) {
        (Some(m), Some(n)) if n > 0.0 => format!("{:.2}", m / n),
        _ => "–".to_owned(),
    }
}

fn rows(specs: &[Spec], results: &Results) -> Vec<Row> {
    let mut rows = Vec::new();
    for (w, spec) in specs.iter().enumerate() {
        let (m, n) = (results.get(w, Bus::Msgc), results.get(w, Bus::Nats));
        match spec.kind {
            Kind::FanOut | Kind::Contention => {
                let size = spec.size as f64;
                let unit = move |v: f64| {
                    if size >= 1024.0 {
                        format!("{} msg/s ({:.0} MiB/s)", fmt_int(v), v * size / 1048576.0)
                    } else {
                        format!("{} msg/s", fmt_int(v))
                    }
                };
                let fm = figure(m, Outcome::per_subscriber_rate);
                let fn_ = figure(n, Outcome::per_subscriber_rate);
                rows.push(Row {
                    workload: format!("{} — msgs/s per subscriber (higher is better)", spec.name),
                    msgc: cell(&fm, unit, m.len()),
                    nats: cell(&fn_, unit, n.len()),
                    ratio: ratio(&fm, &fn_),
                });
                if spec.kind == Kind::Contention {
                    let agree = |runs: &[Result<Outcome, String>]| {
                        let ok: Vec<&Outcome> =
                            runs.iter().filter_map(|r| r.as_ref().ok()).collect();
                        (ok.iter().filter(|o| o.orders_agree).count(), ok.len())
                    };
                    let (ma, mt) = agree(m);
                    let (na, nt) = agree(n);
                    rows.push(Row {
                        workload: format!(
                            "{} — one order at all 3 subscribers (checked by hash of (publisher, counter))",
                            spec.name
                        ),
                        msgc: format!("same order in {ma}/{mt} runs (guaranteed)"),
                        nats: if n.is_empty() {
                            "not run".to_owned()
                        } else {
                            format!(
                                "no cross-publisher order in NATS; orders happened to match in {na}/{nt} runs"
                            )
                        },
                        ratio: "–".to_owned(),
                    });
                }
            }
            Kind::Latency => {
                for (label, p) in [("p50", 0.50), ("p99", 0.99), ("p99.9", 0.999)] {
                    let fm = figure(m, |o| o.percentile_us(p));
                    let fn_ = figure(n, |o| o.percentile_us(p));
                    let unit = |v: f64| format!("{v:.0} µs");
                    rows.push(Row {
                        workload: format!(
                            "{} — publish→deliver {label} (lower is better)",
                            spec.name
                        ),
                        msgc: cell(&fm, unit, m.len()),
                        nats: cell(&fn_, unit, n.len()),
                        ratio: ratio(&fm, &fn_),
                    });
                }
            }
        }
    }
    rows
}

/// The comparison table (markdown), medians over the repetitions.
pub fn table(specs: &[Spec], results: &Results, _buses: &[Bus]) -> String {
    let mut s =
        String::from("| workload | msgc | NATS | ratio msgc/NATS |\n|---|---:|---:|---:|\n");
    for r in rows(specs, results) {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            r.workload, r.msgc, r.nats, r.ratio
        );
    }
    s
}

/// CPU seconds per million delivered messages, servers and client, medians.
fn cpu_table(specs: &[Spec], results: &Results) -> String {
    let mut s = String::from(
        "| workload | msgc servers (s1, s2, s3) | msgc client | NATS servers (n1, n2, n3) | NATS client |\n|---|---:|---:|---:|---:|\n",
    );
    for (w, spec) in specs.iter().enumerate() {
        let per_m = |o: &Outcome| 1e6 / (o.expected as f64 * o.delivered.len().max(1) as f64);
        let servers = |bus: Bus| {
            let runs = results.get(w, bus);
            let each: Vec<String> = (0..3)
                .map(|i| {
                    figure(runs, |o| {
                        o.server_cpu.get(i).copied().unwrap_or(0.0) * per_m(o)
                    })
                    .value
                    .map_or("–".to_owned(), |v| format!("{v:.1}"))
                })
                .collect();
            let total = figure(runs, |o| o.server_cpu.iter().sum::<f64>() * per_m(o)).value;
            match total {
                Some(t) => format!("{t:.1} ({})", each.join(", ")),
                None => "–".to_owned(),
            }
        };
        let client = |bus: Bus| {
            figure(results.get(w, bus), |o| o.client_cpu * per_m(o))
                .value
                .map_or("–".to_owned(), |v| format!("{v:.1}"))
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            spec.name,
            servers(Bus::Msgc),
            client(Bus::Msgc),
            servers(Bus::Nats),
            client(Bus::Nats)
        );
    }
    s
}

/// A one-line summary of one run, for progress output.
pub fn one_line(spec: &Spec, r: &anyhow::Result<Outcome>) -> String {
    match r {
        Err(e) => format!("FAILED: {e:#}"),
        Ok(o) => match spec.kind {
            Kind::Latency => format!(
                "p50 {:.0} µs  p99 {:.0} µs  p99.9 {:.0} µs",
                o.percentile_us(0.5),
                o.percentile_us(0.99),
                o.percentile_us(0.999)
            ),
            _ => format!(
                "{} msg/s per subscriber in {:.2} s, orders {}",
                fmt_int(o.per_subscriber_rate()),
                o.elapsed.as_secs_f64(),
                if o.orders_agree { "agree" } else { "differ" }
            ),
        },
    }
}

fn cmd(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            let s = String::from_utf8_lossy(&o.stdout).trim().to_owned();
            if s.is_empty() {
                String::from_utf8_lossy(&o.stderr).trim().to_owned()
            } else {
                s
            }
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Says whether the built sources differ from the commit named.
fn dirty_note() -> String {
    let out = Command::new("git")
        .args([
            "status",
            "--porcelain",
            "--",
            "crates",
            "proto",
            "Cargo.toml",
            "Cargo.lock",
        ])
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let files: Vec<String> = String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter_map(|l| l.get(3..).map(str::to_owned))
                .filter(|f| !f.starts_with("crates/msgc-bench"))
                .collect();
            if files.is_empty() {
                String::new()
            } else {
                format!(
                    " (built from a working tree that differs from it in: {})",
                    files.join(", ")
                )
            }
        }
        _ => String::new(),
    }
}

/// `/proc/loadavg`'s first three fields.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn meminfo_total() -> String {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or("unknown".to_owned(), |kb| {
            format!("{:.1} GiB", kb / 1024.0 / 1024.0)
        })
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Everything `BENCHMARKS.md` is made from.
pub struct Context<'a> {
    /// The table (markdown).
    pub table: &'a str,
    /// The workloads.
    pub specs: &'a [Spec],
    /// All runs.
    pub results: &'a Results,
    /// The systems measured.
    pub buses: &'a [Bus],
    /// Repetitions.
    pub reps: usize,
    /// Load average when the run began.
    pub load_before: &'a str,
    /// Load average when the measured runs ended.
    pub load_after: &'a str,
    /// The nats-server binary used.
    pub nats_bin: &'a str,
    /// The profile section, if one was taken.
    pub profile: Option<&'a str>,
    /// Why a system was not run.
    pub skipped: &'a [String],
}

/// The generated part of `BENCHMARKS.md`.
pub fn markdown(c: &Context) -> String {
    let mut s = String::new();
    let command = std::env::var("MSGC_BENCH_COMMAND").unwrap_or_default();
    let argv: Vec<String> = std::env::args().collect();
    let git = cmd("git", &["rev-parse", "HEAD"]);
    let _ = writeln!(s, "# Benchmarks: msgc against NATS\n");
    let _ = writeln!(
        s,
        "Generated by `msgc-bench` (crates/msgc-bench) on {} UTC. Medians of {} repetitions; \
         every run of every workload goes to both systems, alternating which goes first.\n",
        cmd("date", &["-u", "+%Y-%m-%d %H:%M"]),
        c.reps
    );
    let _ = writeln!(s, "## Results\n\n{}", c.table);
    for skip in c.skipped {
        let _ = writeln!(s, "{skip}\n");
    }
    let _ = writeln!(
        s,
        "Each figure is the median; the small range after it is the lowest and highest run. \
         Throughput is messages per second **received by each subscriber**: the messages sent, \
         divided by the time from the first publish to the last delivery at any subscriber \
         (so it includes draining every queue). Ratio > 1 means msgc has the larger figure: \
         better for throughput, worse for latency. Latency is publish→deliver in one process \
         (one clock), over all three subscribers' deliveries. NATS is core NATS (at-most-once, \
         no JetStream), msgc is the totally ordered bus with end-to-end flow control: the \
         same wire pattern, not the same guarantees.\n"
    );
    let failures: Vec<String> = c
        .specs
        .iter()
        .enumerate()
        .flat_map(|(w, spec)| {
            c.buses.iter().flat_map(move |&b| {
                c.results
                    .get(w, b)
                    .iter()
                    .filter_map(move |r| r.as_ref().err())
                    .map(move |e| format!("* {} / {}: {e}", spec.name, b.name()))
            })
        })
        .collect();
    if !failures.is_empty() {
        let _ = writeln!(
            s,
            "Failed runs (not in the medians):\n\n{}\n",
            failures.join("\n")
        );
    }
    let _ = writeln!(
        s,
        "## CPU per delivered message\n\nCPU seconds (user + system, from /proc/<pid>/stat) per \
         million delivered messages (deliveries = messages × 3 subscribers), medians. The \
         client column is the whole driver process (publishers and subscribers).\n\n{}",
        cpu_table(c.specs, c.results)
    );
    let _ = writeln!(s, "## Setup\n");
    let mut lines = vec![
        format!(
            "* Workloads: {}.",
            c.specs
                .iter()
                .map(|sp| format!(
                    "{} ({} msgs × {} publisher{})",
                    sp.name,
                    fmt_int(sp.msgs_per_publisher as f64),
                    sp.publishers.len(),
                    if sp.publishers.len() > 1 { "s" } else { "" }
                ))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        "* msgc: 3 msgc-server processes (release build) s1, s2, s3 in one server view; s1 is \
         the coordinator (lowest name). Fan-out and latency publish on s2 (not the coordinator); \
         subscribers on s1, s2, s3; contention publishes on all three. Server defaults except \
         keepalive_interval = 1, reconnect_interval = 1."
            .to_owned(),
        "* NATS: 3 nats-server processes n1, n2, n3 with cluster routes to each other, default \
         settings. Same layout: fan-out and latency publish on n2, subscribers on n1, n2, n3. \
         Client: async-nats 0.51 (`publish` + a final `flush`, `subscribe` + stream; subscription \
         capacity raised from 65,536 to the run's message count, because with the default the \
         client dropped messages as a slow consumer in the contention run). Before each \
         run every publisher sends probes until every subscriber has seen one (interest has \
         crossed the routes); probes are not counted."
            .to_owned(),
        "* Everything on loopback; the driver runs all clients in one tokio process.".to_owned(),
        format!(
            "* Machine: {} cores (nproc), {} memory, {}; kernel {}.",
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            meminfo_total(),
            cpu_model(),
            cmd("uname", &["-r"])
        ),
        format!(
            "* Load average (1, 5, 15 min) at start: {}; after the measured runs: {}. \
             Other engineers share these 2 cores, so the figures carry that noise.",
            c.load_before, c.load_after
        ),
        format!(
            "* Versions: {}; {}; msgc at git {}{}; async-nats 0.51.",
            cmd(c.nats_bin, &["--version"]),
            cmd("rustc", &["--version"]),
            git,
            dirty_note()
        ),
        format!(
            "* Command: `{}`{}",
            if command.is_empty() {
                argv.join(" ")
            } else {
                command.clone()
            },
            if command.is_empty() {
                String::new()
            } else {
                format!(" (driver: `{}`)", argv.join(" "))
            }
        ),
    ];
    lines.push(String::new());
    s.push_str(&lines.join("\n"));
    if let Some(p) = c.profile {
        let _ = writeln!(s, "\n{p}");
    }
    s
}

/// Marker after which `BENCHMARKS.md` holds hand-written notes kept across runs.
pub const NOTES_MARKER: &str = "<!-- notes below are kept when msgc-bench rewrites this file -->";

/// Writes `generated`, keeping the notes section of an existing file.
pub fn write_preserving_notes(path: &Path, generated: &str) -> Result<()> {
    let notes = std::fs::read_to_string(path)
        .ok()
        .and_then(|old| old.find(NOTES_MARKER).map(|i| old[i..].to_owned()))
        .unwrap_or_else(|| format!("{NOTES_MARKER}\n"));
    std::fs::write(path, format!("{}\n{notes}", generated.trim_end()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_numbers() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
        assert_eq!(fmt_int(1234567.0), "1,234,567");
        assert_eq!(fmt_int(999.0), "999");
        assert_eq!(short(1_234_567.0), "1.23M");
        assert_eq!(short(45_678.0), "46k");
        assert_eq!(short(4_567.0), "4.6k");
    }

    #[test]
    fn notes_survive_a_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("B.md");
        write_preserving_notes(&p, "first").unwrap();
        let with_notes = std::fs::read_to_string(&p).unwrap() + "my notes\n";
        std::fs::write(&p, with_notes).unwrap();
        write_preserving_notes(&p, "second").unwrap();
        let s = std::fs::read_to_string(&p).unwrap();
        assert!(s.starts_with("second\n"));
        assert!(s.ends_with("my notes\n"));
    }
}
