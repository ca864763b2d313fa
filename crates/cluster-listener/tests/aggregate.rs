//! The data paths between nodes found by name through the membership: the
//! `aggregate` subcommand (once, and on an interval, killed midway), the
//! `move` subcommand and `Mover/MoveTo`, over an in-process bus and two
//! in-process nodes.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{BIN, Bus, InProcNode, eventually, node_client};
use proto::eccluster::v1::MembershipRequest;
use proto::eccluster::v1::MoveToRequest;
use proto::eccluster::v1::mover_client::MoverClient;
use tonic::Code;

fn append(path: &Path, tag: &str, lines: std::ops::Range<usize>) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for i in lines {
        writeln!(f, "{tag} {i:05}").unwrap();
    }
}

async fn member(bus: &Bus, name: &str, logs: &[&str]) -> InProcNode {
    let dir = tempfile::tempdir().unwrap();
    let mut offered = Vec::new();
    for log in logs {
        let path = dir.path().join(format!("logs/{log}"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        offered.push(((*log).to_owned(), path.to_str().unwrap().to_owned()));
    }
    let servers = bus.addrs.clone();
    InProcNode::start_in(name, dir, move |cfg| {
        cfg.enabled = true;
        cfg.msgc.servers = servers;
        cfg.msgc.reconnect_interval = Duration::from_millis(200);
        cfg.msgc.keepalive_interval = Duration::from_secs(1);
        cfg.msgc.connect_timeout = Duration::from_secs(2);
        cfg.logs = offered.into_iter().collect();
    })
    .await
}

fn log_path(node: &InProcNode, log: &str) -> std::path::PathBuf {
    node.dir.path().join(format!("logs/{log}"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregate_and_move_reach_nodes_by_name_through_the_membership() {
    let bus = Bus::start(1).await;
    let n1 = member(&bus, "n1", &["mainlog", "rejectlog"]).await;
    let n2 = member(&bus, "n2", &["mainlog"]).await;
    let mut client = node_client(&n1.addr).await;
    eventually("n1 to see both nodes", || {
        let mut client = client.clone();
        async move {
            let m = client
                .membership(MembershipRequest {})
                .await
                .map_err(|e| e.to_string())?
                .into_inner();
            if m.nodes.len() == 2 {
                Ok(())
            } else {
                Err(format!("{m:?}"))
            }
        }
    })
    .await;
    let _ = &mut client;

    append(&log_path(&n1, "mainlog"), "n1-main", 0..500);
    append(&log_path(&n1, "rejectlog"), "n1-reject", 0..20);
    append(&log_path(&n2, "mainlog"), "n2-main", 0..300);

    // The aggregator's configuration names n1's listener: it asks n1.
    let work = tempfile::tempdir().unwrap();
    let conf = work.path().join("agg.conf");
    std::fs::write(
        &conf,
        format!(
            "ECCluster_Listener {{ Listen \"{}\" {{ }} }}\ncluster {{ nodename = agg enabled = false }}\n",
            n1.addr
        ),
    )
    .unwrap();
    let out = work.path().join("aggregated");
    let once = {
        let (conf, out) = (conf.clone(), out.clone());
        move || {
            Command::new(BIN)
                .args([
                    "aggregate",
                    "--config",
                    conf.to_str().unwrap(),
                    "--dir",
                    out.to_str().unwrap(),
                    "--once",
                ])
                .env("RUST_LOG", "cluster_listener=info")
                .env("LOG_FORMAT", "json")
                .output()
                .unwrap()
        }
    };
    let run = tokio::task::spawn_blocking(once.clone()).await.unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(
        stderr.contains("pulled") && stderr.contains("\"records\":500"),
        "{stderr}"
    );
    for (node, log) in [(&n1, "mainlog"), (&n1, "rejectlog"), (&n2, "mainlog")] {
        let name = if std::ptr::eq(node, &n1) { "n1" } else { "n2" };
        assert_eq!(
            read(&out.join(log).join(name)),
            read(&log_path(node, log)),
            "{log}/{name}"
        );
    }

    // On an interval, killed midway through, then once more: every line once.
    let mut interval = Command::new(BIN)
        .args([
            "aggregate",
            "--config",
            conf.to_str().unwrap(),
            "--dir",
            out.to_str().unwrap(),
            "--interval",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    append(&log_path(&n2, "mainlog"), "n2-main", 300..20_000);
    let target = out.join("mainlog/n2");
    eventually("the interval aggregator to pull n2's new lines", || async {
        let n = read(&target).lines().count();
        if n > 300 {
            Ok(())
        } else {
            Err(format!("{n} lines"))
        }
    })
    .await;
    interval.kill().unwrap();
    interval.wait().unwrap();
    append(&log_path(&n2, "mainlog"), "n2-main", 20_000..20_100);
    let run = tokio::task::spawn_blocking(once).await.unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(read(&target), read(&log_path(&n2, "mainlog")));
    assert_eq!(
        read(&out.join("mainlog/n1")),
        read(&log_path(&n1, "mainlog"))
    );

    // move: files to n2 by name, then again (duplicates).
    let files: Vec<_> = (0..3)
        .map(|i| {
            let path = work.path().join(format!("msg{i}.eml"));
            std::fs::write(
                &path,
                format!("Subject: {i}\r\n\r\nbody {}\r\n", "z".repeat(i * 1000)),
            )
            .unwrap();
            path
        })
        .collect();
    let move_files = |files: Vec<std::path::PathBuf>| {
        let conf = conf.clone();
        tokio::task::spawn_blocking(move || {
            let mut cmd = Command::new(BIN);
            cmd.args([
                "move",
                "--config",
                conf.to_str().unwrap(),
                "--to",
                "n2",
                "--recipient",
                "a@b.c",
            ]);
            cmd.args(&files);
            cmd.output().unwrap()
        })
    };
    let moved = move_files(files.clone()).await.unwrap();
    let stdout = String::from_utf8_lossy(&moved.stdout);
    assert!(
        moved.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&moved.stderr)
    );
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    for file in &files {
        let name = file.file_name().unwrap();
        assert_eq!(
            std::fs::read(n2.spool().join("incoming").join(name)).unwrap(),
            std::fs::read(file).unwrap()
        );
    }
    let again = move_files(files.clone()).await.unwrap();
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(
        again.status.success() && stdout.matches("duplicate").count() == 3,
        "{stdout}"
    );

    // Mover/MoveTo: n1 sends one of its files to n2 by name.
    let channel = cluster_listener::mover::data_channel(&n1.addr, None).unwrap();
    let mut mover = MoverClient::new(channel);
    let extra = n1.outgoing().join("extra.eml");
    std::fs::write(&extra, b"moved by MoveTo").unwrap();
    let reply = mover
        .move_to(MoveToRequest {
            node: "n2".to_owned(),
            path: extra.to_str().unwrap().to_owned(),
            id: "extra-1".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.reply.unwrap().node, "n2");
    assert_eq!(reply.address, n2.addr);
    assert_eq!(
        std::fs::read(n2.spool().join("incoming/extra-1")).unwrap(),
        b"moved by MoveTo"
    );
    let status = mover
        .move_to(MoveToRequest {
            node: "n9".to_owned(),
            path: extra.to_str().unwrap().to_owned(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = mover
        .move_to(MoveToRequest {
            node: "n2".to_owned(),
            path: "missing".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    move_to_reads_only_the_outgoing_directory(&mut mover, &n1, work.path()).await;
    assert!(!n2.spool().join("incoming/stolen").exists());
    assert_eq!(
        std::fs::read(n2.spool().join("incoming/inside.eml")).unwrap(),
        b"inside"
    );
}

/// The MoveTo of issue 10 (`/etc/passwd`), a `..` and a symlink out of the
/// outgoing directory are refused with PERMISSION_DENIED naming the rule,
/// and nothing arrives; a relative name inside still works.
async fn move_to_reads_only_the_outgoing_directory(
    mover: &mut MoverClient<tonic::transport::Channel>,
    n1: &InProcNode,
    work: &Path,
) {
    let outgoing = n1.outgoing();
    std::fs::write(work.join("secret"), b"not for moving").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", outgoing.join("passwd")).unwrap();
    std::os::unix::fs::symlink(work.join("secret"), outgoing.join("secret.eml")).unwrap();
    let dotdot = format!("{}/../../secret", outgoing.display());
    for (path, says) in [
        ("/etc/passwd", "outside the outgoing directory"),
        (dotdot.as_str(), "contains `..`"),
        ("../secret", "contains `..`"),
        ("passwd", "resolves through a symlink"),
        ("secret.eml", "resolves through a symlink"),
    ] {
        let status = mover
            .move_to(MoveToRequest {
                node: "n2".to_owned(),
                path: path.to_owned(),
                id: "stolen".to_owned(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{path}: {status:?}");
        assert!(
            status.message().contains(says) && status.message().contains("outgoing_dir"),
            "{path}: {}",
            status.message()
        );
    }
    std::fs::write(outgoing.join("inside.eml"), b"inside").unwrap();
    let reply = mover
        .move_to(MoveToRequest {
            node: "n2".to_owned(),
            path: "inside.eml".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.reply.unwrap().id, "inside.eml");
}
