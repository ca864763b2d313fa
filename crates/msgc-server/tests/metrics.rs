//! Prometheus metrics end to end: two servers in process, the first with its
//! admin listener on loopback; a publisher and three subscribers on it; then
//! `GET /metrics` must show the counters moved by exactly what was sent, and
//! carry every metric name the README's "Metrics" section documents.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Cluster, read_until, session};
use proto::msgc::v1::event;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MESSAGES: u64 = 20;
const PAYLOAD: &[u8] = b"metrics!";
const SUBSCRIBERS: u64 = 3;

/// A port nobody listens on now (bound and released).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// `GET path` over HTTP/1.1: (status line, body).
async fn http_get(addr: &str, path: &str) -> (String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

/// Samples of the exposition: `name{labels}` -> value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (key, value) = l.rsplit_once(' ').unwrap();
            (key.to_owned(), value.parse().unwrap())
        })
        .collect()
}

/// The metric names the README documents (backticked `msgc_...` in its
/// "## Metrics" section, bus part).
fn documented() -> Vec<String> {
    let readme = include_str!("../../../README.md");
    let start = readme
        .find("\n## Metrics")
        .expect("README has a Metrics section");
    let section = &readme[start + 1..];
    let section = &section[..section[1..].find("\n## ").map_or(section.len(), |i| i + 1)];
    let mut names: Vec<String> = section
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|w| {
            w.starts_with("msgc_") && w[5..].chars().all(|c| c.is_ascii_lowercase() || c == '_')
        })
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_the_bus_carried() {
    let admin = format!("127.0.0.1:{}", free_port());
    let admin_addr: std::net::SocketAddr = admin.parse().unwrap();
    let cluster = Cluster::start_with(2, |mut cfg| {
        if cfg.name == "s1" {
            cfg.admin_listen = Some(admin_addr);
        }
        cfg
    })
    .await;
    cluster.wait_view(&["s1", "s2"]).await;

    let mut subscribers = Vec::new();
    for i in 0..SUBSCRIBERS {
        let (s, mut e) = session(cluster.addr(0), &format!("sub{i}")).await;
        s.join("m", "").await.unwrap();
        read_until(&mut e, |f| {
            f.events.iter().any(|e| matches!(&e.kind, Some(event::Kind::View(v)) if v.members.len() == (i + 1) as usize))
        })
        .await;
        subscribers.push((s, e));
    }
    let (publisher, mut acks) = session(cluster.addr(0), "pub").await;
    for _ in 0..MESSAGES {
        publisher.publish("m", PAYLOAD).await.unwrap();
    }
    read_until(&mut acks, |f| f.publishes_acked >= MESSAGES).await;
    for (_, events) in subscribers.iter_mut() {
        let mut got = 0;
        read_until(events, |f| {
            got += f
                .events
                .iter()
                .filter(|e| matches!(e.kind, Some(event::Kind::Delivery(_))))
                .count() as u64;
            got >= MESSAGES
        })
        .await;
    }
    // A refused session: a client name with a space (invalid_argument).
    assert!(session_refused(cluster.addr(0)).await);

    let (status, body) = http_get(&admin, "/metrics").await;
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    let m = samples(&body);
    let get = |k: &str| {
        *m.get(k)
            .unwrap_or_else(|| panic!("no sample {k} in\n{body}"))
    };
    let n = MESSAGES as f64;
    let len = PAYLOAD.len() as f64;
    assert_eq!(get("msgc_publishes_total"), n);
    assert_eq!(get("msgc_publish_bytes_total"), n * len);
    // Published = delivered ÷ subscribers.
    assert_eq!(get("msgc_deliveries_total") / SUBSCRIBERS as f64, n);
    assert_eq!(
        get("msgc_delivered_bytes_total"),
        n * len * SUBSCRIBERS as f64
    );
    assert_eq!(get("msgc_publishes_acked_total"), n);
    assert_eq!(get("msgc_publish_ack_seconds_count"), n);
    assert_eq!(get("msgc_publish_ack_seconds_bucket{le=\"+Inf\"}"), n);
    assert_eq!(get("msgc_sessions"), (SUBSCRIBERS + 1) as f64);
    assert_eq!(get("msgc_groups"), 1.0);
    assert_eq!(get("msgc_view_members"), 2.0);
    assert_eq!(get("msgc_link_up{peer=\"s2\"}"), 1.0);
    assert!(get("msgc_link_ups_total{peer=\"s2\"}") >= 1.0);
    assert!(get("msgc_views_started_total") >= 1.0);
    assert!(get("msgc_peer_messages_out_total{peer=\"s2\"}") >= n);
    assert!(get("msgc_peer_bytes_out_total{peer=\"s2\"}") >= n * len);
    assert!(get("msgc_peer_messages_in_total{peer=\"s2\"}") > 0.0);
    assert!(get("msgc_peer_queue_messages{peer=\"s2\"}") >= 0.0);
    assert!(get("msgc_link_rtt_seconds{peer=\"s2\"}") >= 0.0);
    assert_eq!(get("msgc_refusals_total{code=\"invalid_argument\"}"), 1.0);

    // Every documented name is served.
    let names = documented();
    assert!(names.len() >= 20, "README lists too few names: {names:?}");
    for name in names {
        let family = name.strip_suffix("_total").unwrap_or(&name);
        let typed = body.contains(&format!("# TYPE {family} "));
        assert!(
            typed,
            "README names {name} but /metrics has no {family}:\n{body}"
        );
    }
    let (status, _) = http_get(&admin, "/").await;
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    drop(publisher);
}

async fn session_refused(addr: &str) -> bool {
    let options = msgc_client::Options {
        client_name: "bad name".to_owned(),
        ..Default::default()
    };
    match msgc_client::Session::connect(addr, options).await {
        Ok((_, mut events)) => tokio::time::timeout(Duration::from_secs(5), events.next_frame())
            .await
            .is_ok_and(|r| r.is_err()),
        Err(_) => true,
    }
}

#[test]
fn admin_listen_is_off_by_default_and_a_bad_one_is_refused_with_its_line() {
    use msgc_server::config::{Source, load};
    let embedded = load(&Source {
        name: Some("solo".into()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(embedded.admin_listen, None);

    let dir = tempfile::tempdir().unwrap();
    let conf = |admin: &str| {
        let path = dir.path().join("msgc_server.conf");
        let text = format!(
            "msgc_server {{\n  peers = [ a = \"127.0.0.1:4809\" ]\n}}\nmsgcserver_listener {{\n  admin_listen = \"{admin}\"\n  Listen \":4809\" {{ }}\n}}\n"
        );
        std::fs::write(&path, text).unwrap();
        load(&Source {
            file: Some(path),
            name: Some("a".into()),
            env: Vec::new(),
        })
    };
    assert_eq!(
        conf("127.0.0.1:9809").unwrap().admin_listen,
        Some("127.0.0.1:9809".parse().unwrap())
    );
    let err = conf("metrics.local:9809").unwrap_err().to_string();
    assert!(err.contains("msgc_server.conf:5"), "{err}");
    assert!(err.contains("admin_listen"), "{err}");
}

/// Every `msgc_`/`eccluster_` name the Grafana dashboard queries is one the
/// README documents (histogram series by their base name).
#[test]
fn the_dashboard_queries_documented_names() {
    let readme = include_str!("../../../README.md");
    let dashboard = include_str!("../../../deploy/grafana/msgc-rs.json");
    let words = dashboard.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
    for word in words.filter(|w| w.starts_with("msgc_") || w.starts_with("eccluster_")) {
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| word.strip_suffix(s))
            .unwrap_or(word);
        assert!(
            readme.contains(&format!("`{base}`")),
            "the dashboard queries {word}, which the README does not document"
        );
    }
}
