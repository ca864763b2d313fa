//! Fan-out throughput and latency of a 3-server bus of real processes:
//! 1 publisher (on a server that does not coordinate), 3 subscribers (one per
//! server), 128-byte messages.
//!
//! `cargo bench -p msgc-server --bench throughput` (env: `MSGS` messages per
//! run, default 500000; `SIZE` payload bytes, default 128; `RATE` msgs/s for
//! the paced latency run, default 20000; `BACKLOG` max_backlog, default 5000).

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use msgc_client::{Options, Session};
use proto::msgc::v1::event;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct RunResult {
    per_sub_rate: Vec<f64>,
    latencies_us: Vec<u64>,
}

/// Publishes `msgs` messages (paced at `rate` per second if non-zero) and
/// measures what each subscriber receives.
async fn run(addrs: &[String], group: &str, msgs: u64, size: usize, rate: u64) -> RunResult {
    let epoch = Arc::new(Instant::now());
    let mut subs = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        let (s, mut e) = Session::connect(
            addr,
            Options {
                client_name: format!("sub{i}-{group}"),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        s.join(group, "").await.unwrap();
        // Wait for own join view.
        loop {
            let f = e.next_frame().await.unwrap().unwrap();
            if f.events
                .iter()
                .any(|e| matches!(&e.kind, Some(event::Kind::View(_))))
            {
                break;
            }
        }
        let epoch = epoch.clone();
        subs.push(tokio::spawn(async move {
            let _keep = s;
            let mut got = 0u64;
            let mut first = None;
            let mut lat = Vec::with_capacity(msgs as usize);
            while got < msgs {
                let Ok(Some(frame)) = e.next_frame().await else {
                    break;
                };
                let now = epoch.elapsed().as_nanos() as u64;
                for ev in frame.events {
                    if let Some(event::Kind::Delivery(d)) = ev.kind {
                        first.get_or_insert_with(Instant::now);
                        let sent = u64::from_le_bytes(d.payload[..8].try_into().unwrap());
                        lat.push((now.saturating_sub(sent)) / 1000);
                        got += 1;
                    }
                }
            }
            let elapsed = first.map_or(Duration::ZERO, |f| f.elapsed());
            (got, elapsed, lat)
        }));
    }
    // Let the joins settle everywhere.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (publisher, mut pub_events) = Session::connect(
        &addrs[1],
        Options {
            client_name: format!("pub-{group}"),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let acks =
        tokio::spawn(async move { while let Ok(Some(_)) = pub_events.next_frame().await {} });
    let start = Instant::now();
    let mut payload = vec![0u8; size.max(8)];
    for i in 0..msgs {
        if rate > 0 {
            let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                tokio::time::sleep(wait).await;
            }
        }
        let now = epoch.elapsed().as_nanos() as u64;
        payload[..8].copy_from_slice(&now.to_le_bytes());
        publisher.publish(group, payload.clone()).await.unwrap();
    }
    let mut per_sub_rate = Vec::new();
    let mut latencies_us = Vec::new();
    for sub in subs {
        let (got, elapsed, lat) = tokio::time::timeout(Duration::from_secs(120), sub)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, msgs, "a subscriber lost messages");
        per_sub_rate.push(got as f64 / elapsed.as_secs_f64().max(1e-9));
        latencies_us.extend(lat);
    }
    drop(publisher);
    acks.abort();
    latencies_us.sort_unstable();
    RunResult {
        per_sub_rate,
        latencies_us,
    }
}

fn pct(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("throughput: bench");
        return;
    }
    let msgs = env_or("MSGS", 500_000);
    let size = env_or("SIZE", 128) as usize;
    let rate = env_or("RATE", 20_000);
    let backlog = env_or("BACKLOG", 5000);
    let options = format!("keepalive_interval = 1 reconnect_interval = 1 max_backlog = {backlog}");
    let cluster = common::ProcCluster::start_with(3, &options);
    cluster.wait_view(&["s1", "s2", "s3"]).await;
    let addrs = cluster.addrs.clone();

    // Warm-up.
    run(&addrs, "warmup", msgs.min(20_000), size, 0).await;

    let full = run(&addrs, "full", msgs, size, 0).await;
    let rates: Vec<String> = full
        .per_sub_rate
        .iter()
        .map(|r| format!("{r:.0}"))
        .collect();
    println!(
        "saturated: {msgs} x {size} B, max_backlog {backlog}: per-subscriber msgs/s [{}], latency p50 {} us, p99 {} us",
        rates.join(", "),
        pct(&full.latencies_us, 0.50),
        pct(&full.latencies_us, 0.99)
    );
    let paced_msgs = (rate * 3).min(msgs);
    let paced = run(&addrs, "paced", paced_msgs, size, rate).await;
    println!(
        "paced at {rate} msgs/s: latency p50 {} us, p99 {} us, p99.9 {} us",
        pct(&paced.latencies_us, 0.50),
        pct(&paced.latencies_us, 0.99),
        pct(&paced.latencies_us, 0.999)
    );
}
