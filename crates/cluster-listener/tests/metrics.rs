//! The node's Prometheus metrics: an in-process node with its admin
//! listener on loopback pulls a log and takes moves (one twice), and
//! `GET /metrics` must count exactly that, under the names the README
//! documents.

mod common;

use std::collections::BTreeMap;

use cluster_listener::mover::{self, Retry};
use common::{InProcNode, free_port};
use proto::eccluster::v1::logs_client::LogsClient;
use proto::eccluster::v1::{Envelope, PullRequest};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn scrape(addr: &str) -> (String, BTreeMap<String, f64>) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let samples = body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_owned(), v.parse().unwrap())
        })
        .collect();
    (body.to_owned(), samples)
}

fn envelope(id: &str) -> Envelope {
    Envelope {
        id: id.to_owned(),
        sender: "s@example.com".to_owned(),
        recipients: vec!["r@example.net".to_owned()],
        binding: "default".to_owned(),
        size: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_metrics_count_pulls_and_moves() {
    let admin = format!("127.0.0.1:{}", free_port());
    let admin_addr = admin.parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("logs/mainlog");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    let lines: String = (0..100).map(|i| format!("record {i:04}\n")).collect();
    std::fs::write(&log, &lines).unwrap();
    let log_path = log.to_str().unwrap().to_owned();
    let node = InProcNode::start_in("m1", dir, move |cfg| {
        cfg.logs.insert("mainlog".to_owned(), log_path);
        cfg.admin_listen = Some(admin_addr);
    })
    .await;
    let channel = mover::data_channel(&node.addr, None).unwrap();

    // A pull of the whole log, and one of a log that does not exist.
    let mut logs = LogsClient::new(channel.clone());
    let mut stream = logs
        .pull(PullRequest {
            log: "mainlog".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut records = 0;
    while let Some(batch) = stream.message().await.unwrap() {
        records += batch.records.len();
    }
    assert_eq!(records, 100);
    let refused = logs
        .pull(PullRequest {
            log: "nolog".to_owned(),
            ..Default::default()
        })
        .await;
    assert!(refused.is_err());

    // Two messages moved in, the first one twice (a duplicate).
    let source = tempfile::tempdir().unwrap();
    let sizes = [1000usize, 300_000];
    for (i, size) in sizes.iter().enumerate() {
        let path = source.path().join(format!("m{i}"));
        std::fs::write(&path, vec![b'x'; *size]).unwrap();
        mover::move_file(
            &channel,
            &envelope(&format!("m{i}")),
            &path,
            Retry::default(),
        )
        .await
        .unwrap();
    }
    let again = source.path().join("m0");
    let (reply, _) = mover::move_file(&channel, &envelope("m0"), &again, Retry::default())
        .await
        .unwrap();
    assert!(reply.duplicate);

    let (body, m) = scrape(&admin).await;
    let get = |k: &str| *m.get(k).unwrap_or_else(|| panic!("no {k} in\n{body}"));
    assert_eq!(get("eccluster_log_pulls_total"), 1.0);
    assert_eq!(get("eccluster_log_records_total"), 100.0);
    assert!(get("eccluster_log_bytes_total") >= lines.len() as f64);
    assert_eq!(get("eccluster_log_pull_errors_total"), 1.0);
    assert_eq!(get("eccluster_moves_received_total"), 2.0);
    assert_eq!(
        get("eccluster_move_bytes_received_total"),
        sizes.iter().sum::<usize>() as f64
    );
    assert_eq!(get("eccluster_move_duplicates_total"), 1.0);
    assert_eq!(get("eccluster_move_errors_total"), 0.0);

    // Every eccluster_ name the README documents is served.
    let readme = include_str!("../../../README.md");
    let start = readme.find("\n## Metrics").expect("a Metrics section") + 1;
    let section = &readme[start..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let documented: Vec<&str> = section
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|w| w.starts_with("eccluster_"))
        .collect();
    assert!(documented.len() >= 12, "{documented:?}");
    for name in documented {
        assert!(
            m.contains_key(name),
            "README names {name}, /metrics has not:\n{body}"
        );
    }
    node.stop().await;
}
