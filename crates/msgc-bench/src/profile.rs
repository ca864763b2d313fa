//! A flat `perf` profile of one msgc run: `perf record` attached to the three
//! servers and to this driver while the workload runs, then per-process
//! shares and the hottest symbols of each process.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::process::Command;

use crate::msgc_bus;
use crate::procs::Cluster;
use crate::workload::Spec;

async fn output(args: &[&str]) -> Result<String> {
    let child = Command::new("perf")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let out = tokio::time::timeout(Duration::from_secs(180), child.wait_with_output())
        .await
        .context("perf report took too long")??;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The non-comment lines of a `perf report --stdio` listing, at most `n`.
fn top_lines(report: &str, n: usize) -> Vec<String> {
    report
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .take(n)
        .map(|l| l.trim_end().to_owned())
        .collect()
}

/// Profiles `spec` against the msgc cluster; returns a markdown section.
pub async fn perf_profile(spec: &Spec, cluster: &mut Cluster, dir: &Path) -> Result<String> {
    let pids = cluster.procs.pids();
    let me = std::process::id();
    let labels = [
        ("s1 (coordinator)", pids[0]),
        ("s2 (the publisher's server)", pids[1]),
        ("s3", pids[2]),
        ("the driver (msgc_client: publisher + 3 subscribers)", me),
    ];
    // One recorder per process, so each report is that process's profile.
    let mut recorders = Vec::new();
    for (i, (_, pid)) in labels.iter().enumerate() {
        let data = dir
            .join(format!("perf{i}.data"))
            .to_string_lossy()
            .into_owned();
        let child = Command::new("perf")
            .args(["record", "-F", "999", "-o", &data, "-p", &pid.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("perf not available (apt-get install linux-perf)")?;
        recorders.push((child, data));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ticks = crate::procs::clock_ticks();
    let cpu_before: Vec<f64> = labels
        .iter()
        .map(|(_, p)| crate::procs::cpu_seconds(*p, ticks))
        .collect();
    let run = msgc_bus::run(spec, &cluster.addrs, "profile").await;
    let cpu: Vec<f64> = labels
        .iter()
        .zip(&cpu_before)
        .map(|((_, p), b)| crate::procs::cpu_seconds(*p, ticks) - b)
        .collect();
    for (child, _) in &recorders {
        if let Some(id) = child.id() {
            let _ = Command::new("kill")
                .args(["-INT", &id.to_string()])
                .status()
                .await;
        }
    }
    for (child, _) in &mut recorders {
        let status = tokio::time::timeout(Duration::from_secs(60), child.wait()).await;
        if !matches!(status, Ok(Ok(_))) {
            bail!("perf record did not stop");
        }
    }
    let outcome = run?;
    let mut md = format!(
        "## Profile (perf, flat)\n\n`perf record -F 999 -p <pid>` on each process during one extra, \
         unmeasured msgc run of {} ({} msgs; {:.0} msg/s per subscriber while profiled). CPU \
         seconds of each process during that run: {}.\n",
        spec.name,
        spec.msgs_per_publisher,
        outcome.per_subscriber_rate(),
        labels
            .iter()
            .zip(&cpu)
            .map(|((l, _), c)| format!("{l} {c:.2} s"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for ((label, _), (_, data)) in labels.iter().zip(&recorders) {
        let rep = output(&[
            "report",
            "-i",
            data,
            "--stdio",
            "--no-children",
            "--sort",
            "dso,sym",
            "--percent-limit",
            "1",
        ])
        .await?;
        md.push_str(&format!(
            "\nHottest symbols of {label} (percent of its samples):\n\n```\n"
        ));
        for l in top_lines(&rep, 22) {
            md.push_str(&l);
            md.push('\n');
        }
        md.push_str("```\n");
    }
    Ok(md)
}
