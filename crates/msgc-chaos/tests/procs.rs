//! Two short randomized fault schedules against real msgc-server processes
//! (5 servers, 3 faulted, 2 faults each at least: kills, pauses, cascades,
//! nft link cuts and splits), judged by msgc-check and the run-level checks.
//!
//! Needs root (nft rules, per-server cgroups) and nft; fails saying so
//! otherwise, unless MSGC_CHAOS_SKIP is set. The server binary is
//! MSGC_SERVER_BIN, else the release msgc-server of this target directory
//! (built here with `cargo build --release` if it is not up to date).

use std::path::PathBuf;
use std::time::Duration;

use msgc_chaos::netcut;
use msgc_chaos::runner::{ProcsConfig, run_seed, summary_line};
use msgc_chaos::schedule::Params;

/// The seeds CI runs.
const SEEDS: [u64; 2] = [101, 102];

fn server_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("MSGC_SERVER_BIN") {
        return PathBuf::from(bin);
    }
    // The release build, always: a debug server on a loaded 2-core machine
    // is slow enough for keepalives to suspect never-faulted peers, which
    // is a test of the machine, not of the bus. (CI builds it anyway for
    // the compose image.) target/<profile>/deps/procs-<hash> -> target/release.
    let exe = std::env::current_exe().expect("test executable path");
    let target = exe
        .parent()
        .and_then(|deps| deps.parent())
        .and_then(|profile| profile.parent())
        .expect("target/<profile>/deps");
    let bin = target.join("release").join("msgc-server");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args([
            "build",
            "--release",
            "-p",
            "msgc-server",
            "--bin",
            "msgc-server",
        ])
        .status()
        .expect("running cargo build --release -p msgc-server");
    assert!(
        status.success(),
        "cargo build --release -p msgc-server failed"
    );
    assert!(bin.is_file(), "no {}", bin.display());
    bin
}

/// The README's test command needs nothing installed by hand: without nft,
/// scripts/chaos-deps installs it (it says what it cannot fix, e.g. no root).
fn install_deps_if_missing() {
    let has_nft = std::process::Command::new("nft")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if has_nft {
        return;
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/chaos-deps");
    let status = std::process::Command::new("bash").arg(&script).status();
    eprintln!("{} -> {status:?}", script.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "not yet green (issue 12): under load, a peer's late suspicion can still leave a never-faulted server out of a view for a while; run with `cargo test -p msgc-chaos --test procs -- --ignored` (root)"]
async fn short_randomized_schedules_hold_on_real_processes() {
    if std::env::var_os("MSGC_CHAOS_SKIP").is_some() {
        eprintln!("MSGC_CHAOS_SKIP is set: not running the real-process fault schedules");
        return;
    }
    install_deps_if_missing();
    let root = match netcut::preflight() {
        Ok(root) => root,
        Err(e) => panic!("{e}\n(set MSGC_CHAOS_SKIP=1 to skip this test)"),
    };
    netcut::sweep_stale(&root);
    let cfg = ProcsConfig {
        binary: server_binary(),
        params: Params {
            servers: 5,
            faulted: 3,
            faults_per_server: 2,
            keepalive: Duration::from_millis(250),
            classes: Vec::new(),
        },
        rate: 200,
        max_per_publisher: 20_000,
        final_per_server: 10,
        out_dir: std::env::temp_dir().join("msgc-chaos-test"),
        keep: false,
        warmup: Duration::from_millis(500),
    };
    let mut failures = Vec::new();
    for seed in SEEDS {
        let report = run_seed(&cfg, &root, seed)
            .await
            .unwrap_or_else(|e| panic!("seed {seed} could not run: {e}"));
        println!("{}", summary_line(&report));
        if !report.verdict.findings.is_empty() {
            let first: Vec<String> = report
                .verdict
                .findings
                .iter()
                .take(5)
                .map(|f| format!("  - {f}"))
                .collect();
            failures.push(format!(
                "{}\n{}\n  replay: cargo run --release -p msgc-chaos -- procs --seed {seed} --count 1 --faults-per-server 2\n  logs in {}",
                summary_line(&report),
                first.join("\n"),
                report.dir.display()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "fault schedules failed:\n{}",
        failures.join("\n")
    );
}
