//! The real binary as a child process: start-up, health, reflection (both
//! versions grpcurl may use), the node service, readiness following the msgc
//! session, config refusals, and graceful shutdown on SIGTERM.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{BIN, Bus, NodeProc, eventually, free_port, wait_serving};
use proto::eccluster::v1::{InfoRequest, PingRequest};
use service_kit::grpc::{Health, check_health, reflection_files_v1, reflection_services};

const NODE: &str = "eccluster.v1.Node";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_serves_health_reflection_and_the_node_service_and_stops_on_sigterm() {
    let bus = Bus::start(1).await;
    let port = free_port();
    let mut node = NodeProc::simple("solo", port, &[&bus.addrs[0]]);
    let addr = node.addr.clone();
    wait_serving(&addr, "").await;
    wait_serving(&addr, NODE).await;
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
        !names.iter().any(|n| n.starts_with("msgc.")),
        "reflection lists only what this node serves: {names:?}"
    );
    for want in [
        NODE,
        "eccluster.v1.Logs",
        "eccluster.v1.Mover",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
    let files = reflection_files_v1(&addr, NODE, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(files > 0, "reflection v1 describes {}", NODE);

    // Info: who this node is and how it is linked to the bus.
    let mut client = proto::eccluster::v1::node_client::NodeClient::new(channel);
    let info = client.info(InfoRequest {}).await.unwrap().into_inner();
    assert_eq!(info.node_name, "solo");
    assert_eq!(info.address, addr);
    assert_eq!(info.listen_addresses, vec![addr.clone()]);
    assert!(info.msgc_connected, "{info:?}");
    assert_eq!(info.msgc_server, bus.addrs[0]);
    assert_eq!(info.msgc_server_name, "s1");
    assert_eq!(info.msgc_private_name, "#solo#s1");
    assert_eq!(info.cluster_leader, "solo");
    assert_eq!(info.subcluster, "default");
    assert_eq!(
        info.groups,
        vec!["ec_cluster", "ec_console", "ec_sc_default"]
    );
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));

    // Ping: itself by name works; refusals carry their status codes.
    let pong = client
        .ping(PingRequest {
            node: "solo".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (pong.node.as_str(), pong.address.as_str()),
        ("solo", addr.as_str())
    );
    let missing = client
        .ping(PingRequest {
            node: "nobody".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound, "{missing:?}");
    assert!(
        missing.message().contains("\"nobody\""),
        "{}",
        missing.message()
    );
    let empty = client
        .ping(PingRequest {
            node: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(empty.code(), tonic::Code::InvalidArgument);

    // SIGTERM: exits by itself, cleanly, within the shutdown bound.
    let pid = node.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = node.child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}: {}", node.stderr());
            break;
        }
        assert!(Instant::now() < deadline, "did not exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_msgc_session_and_the_node_rejoins_after_a_bus_restart() {
    let mut bus = Bus::start(1).await;
    let dead = format!("127.0.0.1:{}", free_port());
    // The first server address is dead: the node tries the next in turn.
    let node = NodeProc::simple("n1", free_port(), &[&dead, &bus.addrs[0]]);
    wait_serving(&node.addr, NODE).await;

    bus.stop(0).await;
    eventually("readiness to drop with the bus", || async {
        match check_health(&node.addr, NODE, Duration::from_secs(1)).await {
            Ok(Health::NotServing) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let mut client = node.client().await;
    let info = client.info(InfoRequest {}).await.unwrap().into_inner();
    assert!(
        !info.msgc_connected && !info.msgc_last_error.is_empty(),
        "{info:?}"
    );
    assert_eq!(info.cluster_leader, "");

    bus.restart_single(0, "s1");
    wait_serving(&node.addr, NODE).await;
    let membership = node.membership().await.unwrap();
    let names: Vec<&str> = membership
        .nodes
        .iter()
        .map(|n| n.node_name.as_str())
        .collect();
    assert_eq!(names, ["n1"]);
    assert_eq!(membership.leader, "n1");
}

#[test]
fn check_accepts_the_sample_and_refuses_mistakes_with_file_and_line() {
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/conf-examples");
    let run = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .env_remove("EC_CONF_SEARCH_PATH")
            .output()
            .unwrap()
    };

    let out = run(&[
        "--check",
        "--config",
        &format!("{examples}/ecelerity-cluster.conf"),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Configuration valid: node node1 at 10.10.0.11"),
        "{stdout}"
    );
    assert!(stdout.contains("msgc servers 127.0.0.1:4809"), "{stdout}");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.conf");
    std::fs::write(&bad, "ECCluster_Listener {\n  Listen \"*:4802\" {\n    listen_backlogg = 5\n  }\n}\ncluster {\n  cluster_grop = x\n}\n")
        .unwrap();
    let out = run(&["--check", "--config", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.conf:3:") && err.contains("listen_backlogg"),
        "{err}"
    );
    assert!(
        err.contains("bad.conf:7:") && err.contains("cluster_grop"),
        "{err}"
    );
    assert!(err.contains("did you mean `cluster_group`"), "{err}");

    let bad_listen = dir.path().join("bad-listen.conf");
    std::fs::write(
        &bad_listen,
        "ECCluster_Listener {\n  Listen \"host:4802\" { }\n}\n",
    )
    .unwrap();
    let out = run(&["--check", "--config", bad_listen.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad-listen.conf:2:") && err.contains("host:4802"),
        "{err}"
    );

    // With no file: the embedded default, named by --name.
    let out = run(&["--check", "--name", "laptop"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("node laptop at 127.0.0.1, listening on 0.0.0.0:4802"),
        "{stdout}"
    );
}

#[test]
fn a_port_in_use_is_one_line_naming_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let free = free_port();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("ecelerity-cluster.conf");
    std::fs::write(
        &conf,
        format!(
            "ECCluster_Listener {{\n  Listen \"127.0.0.1:{free}\" {{ }}\n  Listen \"127.0.0.1:{port}\" {{ }}\n}}\ncluster {{ nodename = n }}\n"
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["--config", conf.to_str().unwrap()])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].contains(&format!("127.0.0.1:{port}"))
            && lines[0].to_lowercase().contains("in use"),
        "{err}"
    );
}
