//! The real `msgc` binary against a real 3-server bus: three `msgc-server`
//! processes on loopback (the binary is built by `cargo build -p
//! msgc-server` into this target directory, or taken from `MSGC_SERVER_BIN`).
//! Covers `view`, `groups`, a pub/sub round trip across servers (with a dead
//! first server to fail over from), stdin publishing, `watch` seeing a
//! server leave, `bench`, `--help` and an unreachable server list.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

const MSGC: &str = env!("CARGO_BIN_EXE_msgc");
/// How long any one condition may take.
const DEADLINE: Duration = Duration::from_secs(60);

/// The msgc-server binary: `MSGC_SERVER_BIN`, else built once into the
/// target directory this test runs from.
fn server_bin() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(path) = std::env::var_os("MSGC_SERVER_BIN") {
            return PathBuf::from(path);
        }
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe
            .parent()
            .and_then(|deps| deps.parent())
            .unwrap()
            .to_owned();
        let target_dir = profile_dir.parent().unwrap();
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .args(["build", "-q", "-p", "msgc-server", "--bin", "msgc-server"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("CARGO_TARGET_DIR", target_dir);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cargo.arg("--release");
        }
        let status = cargo.status().expect("running cargo build -p msgc-server");
        assert!(status.success(), "cargo build -p msgc-server failed");
        profile_dir.join("msgc-server")
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Servers s1..s3 as child processes, killed on drop.
struct Bus {
    addrs: Vec<String>,
    children: Vec<Option<Child>>,
    _dir: tempfile::TempDir,
}

impl Bus {
    fn start(n: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let peers: String = ports
            .iter()
            .enumerate()
            .map(|(i, p)| format!("s{} = \"127.0.0.1:{p}\" ", i + 1))
            .collect();
        let mut children = Vec::new();
        for (i, port) in ports.iter().enumerate() {
            let conf = dir.path().join(format!("s{}.conf", i + 1));
            std::fs::write(
                &conf,
                format!(
                    "msgc_server {{ peers = [ {peers}] keepalive_interval = 200ms reconnect_interval = 200ms }}\n\
                     msgcserver_listener {{ Listen \"127.0.0.1:{port}\" {{ }} }}\n"
                ),
            )
            .unwrap();
            let child = Command::new(server_bin())
                .args([
                    "--config",
                    conf.to_str().unwrap(),
                    "--name",
                    &format!("s{}", i + 1),
                ])
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            children.push(Some(child));
        }
        let bus = Bus {
            addrs: ports.iter().map(|p| format!("127.0.0.1:{p}")).collect(),
            children,
            _dir: dir,
        };
        for addr in &bus.addrs {
            eventually(&format!("{addr} to install a view of {n}"), || {
                let out = msgc(&["--server", addr, "view", "--json"]);
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
                let v: serde_json::Value =
                    serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
                let ready = v["members"].as_array().is_some_and(|m| m.len() == n)
                    && v["view_change_in_progress"] == false;
                if ready { Ok(()) } else { Err(text) }
            });
        }
        bus
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.children[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            self.kill(i);
        }
    }
}

fn eventually<T>(what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        match check() {
            Ok(v) => return v,
            Err(last) => assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last: {last}"
            ),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn msgc(args: &[&str]) -> Output {
    Command::new(MSGC)
        .args(args)
        .env_remove("MSGC_SERVER")
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Starts `msgc args` with its stdout read line by line into a channel.
fn spawn_lines(args: &[&str]) -> (Child, Receiver<String>) {
    let mut child = Command::new(MSGC)
        .args(args)
        .env_remove("MSGC_SERVER")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// The next line that satisfies `want`, within the deadline.
fn line_matching(rx: &Receiver<String>, what: &str, want: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("no line with {what}: {e}"));
        if want(&line) {
            return line;
        }
    }
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    eventually("the child to exit", || {
        child
            .try_wait()
            .unwrap()
            .ok_or_else(|| "running".to_owned())
    })
}

#[test]
fn the_cli_drives_a_three_server_bus() {
    let mut bus = Bus::start(3);
    let dead = format!("127.0.0.1:{}", free_port());
    let (s1, s2, s3) = (
        bus.addrs[0].clone(),
        bus.addrs[1].clone(),
        bus.addrs[2].clone(),
    );

    // view: the installed view and both peer links, as a table.
    let out = msgc(&["--server", &s1, "view"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("server s1") && text.contains("members s1 s2 s3"),
        "{text}"
    );
    assert_eq!(text.matches("CONNECTED").count(), 2, "{text}");
    assert!(text.contains("PEER") && text.contains(&s2), "{text}");

    // sub on s1, reached by failing over from a dead first server.
    let servers = format!("{dead},{s1}");
    let (mut sub, lines) = spawn_lines(&[
        "--server", &servers, "sub", "demo", "--json", "--count", "2", "--name", "watcher",
    ]);
    line_matching(&lines, "watcher's join", |l| {
        l.contains("\"type\":\"view\"") && l.contains("#watcher#s1")
    });

    // groups, asked of another server: the member is there.
    let out = msgc(&["--server", &s3, "groups", "demo"]);
    let text = stdout(&out);
    assert!(
        out.status.success() && text.contains("#watcher#s1") && text.contains("MEMBER"),
        "{text}"
    );
    let out = msgc(&["--server", &s3, "groups"]);
    assert!(
        stdout(&out).lines().any(|l| l.starts_with("demo ")),
        "{}",
        stdout(&out)
    );

    // pub through s2, a message then a stdin line; the subscriber prints both.
    let out = msgc(&["--server", &s2, "pub", "demo", "hello", "--name", "pubber"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut stdin_pub = Command::new(MSGC)
        .args(["--server", &s2, "pub", "demo", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = stdin_pub.stdin.take().unwrap();
        writeln!(stdin, "from stdin").unwrap();
    }
    let published = stdin_pub.wait_with_output().unwrap();
    assert!(
        published.status.success(),
        "{}",
        String::from_utf8_lossy(&published.stderr)
    );
    assert!(String::from_utf8_lossy(&published.stderr).contains("published 1 message"));
    let first = line_matching(&lines, "a delivery", |l| {
        l.contains("\"type\":\"delivery\"")
    });
    let second = line_matching(&lines, "a delivery", |l| {
        l.contains("\"type\":\"delivery\"")
    });
    let first: serde_json::Value = serde_json::from_str(&first).unwrap();
    let second: serde_json::Value = serde_json::from_str(&second).unwrap();
    assert_eq!(
        (first["payload"].as_str(), first["sender"].as_str()),
        (Some("hello"), Some("#pubber#s2"))
    );
    assert_eq!(second["payload"], "from stdin");
    assert!(wait_exit(&mut sub).success());

    // bench over all three servers.
    let all = format!("{s1},{s2},{s3}");
    let out = msgc(&[
        "--server", &all, "bench", "--pub", "1", "--sub", "2", "--msgs", "2000", "--size", "64",
    ]);
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "Pub stats:",
        "Sub stats:",
        "Latency publish→deliver",
        "(2000 msgs via",
    ] {
        assert!(text.contains(want), "{want} missing: {text}");
    }

    // watch: the current view, then s3 leaving it.
    let (mut watch, changes) = spawn_lines(&[
        "--server",
        &s1,
        "watch",
        "--interval",
        "0.1",
        "--count",
        "2",
    ]);
    line_matching(&changes, "the first state", |l| {
        l.contains("members [s1 s2 s3]")
    });
    bus.kill(2);
    eventually("watch to exit after the change", || {
        watch
            .try_wait()
            .unwrap()
            .ok_or_else(|| "running".to_owned())
    });
    let rest: Vec<String> = changes.try_iter().collect();
    assert!(rest.iter().any(|l| l.contains("s3=")), "{rest:?}");
}

#[test]
fn help_has_examples_and_an_unreachable_list_is_one_error() {
    let out = msgc(&["--help"]);
    let text = stdout(&out);
    assert!(
        out.status.success() && text.contains("Examples:") && text.contains("msgc bench"),
        "{text}"
    );
    let dead = format!("127.0.0.1:{},127.0.0.1:{}", free_port(), free_port());
    let out = Command::new(MSGC)
        .args(["view"])
        .env("MSGC_SERVER", &dead)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no msgc server reachable"), "{err}");
    for addr in dead.split(',') {
        assert!(err.contains(addr), "{err}");
    }
}
