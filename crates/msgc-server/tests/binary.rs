//! The real binary as a child process: start-up, health, reflection (both
//! versions grpcurl may use), refusals, and graceful shutdown on SIGTERM.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use service_kit::grpc::{Health, check_health, reflection_files_v1, reflection_services};

const BIN: &str = env!("CARGO_BIN_EXE_msgc-server");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn write_conf(dir: &tempfile::TempDir, port: u16) -> std::path::PathBuf {
    let path = dir.path().join("msgc_server.conf");
    let mut f = std::fs::File::create(&path).unwrap();
    write!(
        f,
        "msgc_server {{\n  peers = [ solo = \"127.0.0.1:{port}\" ]\n  keepalive_interval = 1\n  reconnect_interval = 1\n}}\n\
         msgcserver_listener {{ Listen \"127.0.0.1:{port}\" {{ }} }}\n"
    )
    .unwrap();
    path
}

async fn wait_serving(addr: &str, service: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Health::Serving) = check_health(addr, service, Duration::from_secs(1)).await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{addr} never SERVING {service:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn binary_serves_health_and_reflection_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = write_conf(&dir, port);
    let child = Command::new(BIN)
        .args(["--config", conf.to_str().unwrap(), "--name", "solo"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = Server(child);
    let addr = format!("127.0.0.1:{port}");
    wait_serving(&addr, "").await;
    wait_serving(&addr, "msgc.v1.Bus").await;
    let unknown = check_health(&addr, "no.such.Service", Duration::from_secs(2)).await;
    assert!(
        unknown.is_err(),
        "unknown service must be an error: {unknown:?}"
    );

    // Reflection, as grpcurl 1.8.6 asks (v1alpha) and as newer tools ask (v1).
    let channel = msgc_client::channel(&addr, Duration::from_secs(2))
        .await
        .unwrap();
    let names = reflection_services(&addr, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(
        !names.iter().any(|n| n.starts_with("eccluster.")),
        "reflection lists only what this server serves: {names:?}"
    );
    for want in [
        "msgc.v1.Bus",
        "msgc.v1.Admin",
        "msgc.v1.Mesh",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
    let files = reflection_files_v1(&addr, "msgc.v1.Bus", Duration::from_secs(2))
        .await
        .unwrap();
    assert!(files > 0, "reflection v1 describes {}", "msgc.v1.Bus");

    // One-shot publish works against the real binary.
    let mut bus = proto::msgc::v1::bus_client::BusClient::new(channel);
    let reply = bus
        .publish(proto::msgc::v1::PublishRequest {
            group: "g".into(),
            payload: b"x".to_vec().into(),
            client_name: "once".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.sender, "#once#solo");
    assert!(reply.position.unwrap().seq >= 1);
    let bad = bus
        .publish(proto::msgc::v1::PublishRequest {
            group: "bad group".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(bad.message().contains("bad group"), "{}", bad.message());

    // SIGTERM: exits by itself, cleanly, within the shutdown bound.
    let pid = server.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(Instant::now() < deadline, "did not exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn refuses_bad_configs_with_one_clear_line_and_exit_64() {
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/conf-examples");
    let run = |args: &[&str]| Command::new(BIN).args(args).output().unwrap();
    let out = run(&[
        "--check",
        "-c",
        &format!("{examples}/tricky/bad-uppercase-peer.conf"),
        "--name",
        "node2",
    ]);
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("\"Node1\" is not lower-case"), "{err}");
    assert!(err.contains("bad-uppercase-peer.conf:2:"), "{err}");

    let out = run(&[
        "--check",
        "-c",
        &format!("{examples}/msgc_server.conf"),
        "--name",
        "stranger",
    ]);
    assert_eq!(out.status.code(), Some(64));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("\"stranger\" is not in msgc_server peers")
    );

    let out = run(&[
        "--check",
        "-c",
        &format!("{examples}/msgc_server.conf"),
        "--name",
        "manager",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Configuration valid"));

    let out = run(&[
        "--check",
        "-c",
        &format!("{examples}/tricky/include-dir.conf"),
        "--name",
        "solo",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = run(&[
        "--check",
        "-c",
        &format!("{examples}/tricky/bad-unterminated.conf"),
    ]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad-unterminated.conf:3:"));
}

#[test]
fn a_port_in_use_is_one_line_naming_the_address() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let conf = write_conf(&dir, port);
    let out = Command::new(BIN)
        .args(["--config", conf.to_str().unwrap(), "--name", "solo"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.to_lowercase().contains("in use"),
        "{err}"
    );
}
