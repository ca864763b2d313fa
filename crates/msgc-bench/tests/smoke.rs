//! Keeps the benchmark driver working: `msgc-bench --smoke` against a real
//! 3-server msgc cluster (and against NATS when `nats-server` is installed).
//! Tiny counts, and no timing assertions: only that every run completes.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BENCH: &str = env!("CARGO_BIN_EXE_msgc-bench");

/// The msgc-server binary of the same build (cargo builds it for
/// msgc-server's own integration tests in `cargo test --workspace`).
fn server_bin() -> PathBuf {
    let bin = PathBuf::from(BENCH)
        .parent()
        .expect("bench binary has a directory")
        .join("msgc-server");
    assert!(
        bin.is_file(),
        "{} missing: build it first (cargo build -p msgc-server), or run cargo test --workspace",
        bin.display()
    );
    bin
}

/// Kills the driver if the test panics or times out.
struct Guard(Option<Child>);
impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn run_driver(args: &[&str]) -> Output {
    let child = Command::new(BENCH)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start msgc-bench");
    let mut guard = Guard(Some(child));
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let child = guard.0.as_mut().expect("child");
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "msgc-bench --smoke did not finish in 300 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = guard
        .0
        .take()
        .expect("child")
        .wait_with_output()
        .expect("output");
    println!("{}", String::from_utf8_lossy(&out.stdout));
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    out
}

#[test]
fn smoke_msgc() {
    let bin = server_bin();
    let out = run_driver(&[
        "--smoke",
        "--no-nats",
        "--msgc-server-bin",
        bin.to_str().expect("utf-8 path"),
    ]);
    assert!(out.status.success(), "smoke run failed: {:?}", out.status);
    let stdout = String::from_utf8_lossy(&out.stdout);
    for workload in [
        "fan-out 1→3, 128 B",
        "fan-out 1→3, 16 KiB",
        "contention",
        "latency",
    ] {
        assert!(stdout.contains(workload), "no {workload} row");
    }
    assert!(
        stdout.contains("same order in 1/1 runs"),
        "msgc order check missing"
    );
    assert!(!stdout.contains("FAILED"), "a workload failed");
}

#[test]
fn smoke_nats() {
    let present = Command::new("nats-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !present {
        println!(
            "skipping the NATS smoke run: nats-server is not on PATH (apt-get install -y nats-server)"
        );
        return;
    }
    let out = run_driver(&["--smoke", "--no-msgc"]);
    assert!(
        out.status.success(),
        "NATS smoke run failed: {:?}",
        out.status
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("no cross-publisher order in NATS"));
    assert!(!stdout.contains("FAILED"), "a workload failed");
}
