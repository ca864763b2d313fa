//! Runs a workload against the NATS cluster with `async-nats` (core NATS
//! publish/subscribe; no JetStream).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use futures::StreamExt;
use tokio::time::{Instant as TokioInstant, timeout_at};

use crate::msgc_bus::IDLE;
use crate::workload::{
    HEADER, KIND_DATA, KIND_PROBE, Kind, Outcome, Spec, Tally, now_ns, pace, write_header,
};

/// async-nats' default subscription capacity.
const SUBSCRIPTION_CAPACITY: usize = 65_536;

async fn connect(
    addr: &str,
    drops: &Arc<AtomicU64>,
    capacity: usize,
) -> Result<async_nats::Client> {
    let drops = drops.clone();
    async_nats::ConnectOptions::new()
        .subscription_capacity(capacity)
        .event_callback(move |ev| {
            let drops = drops.clone();
            async move {
                if matches!(ev, async_nats::Event::SlowConsumer(_)) {
                    drops.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
        .connect(addr)
        .await
        .with_context(|| format!("nats connect {addr}"))
}

/// Runs `spec` once; `tag` makes the subject unique per run.
pub async fn run(spec: &Spec, addrs: &[String], tag: &str) -> Result<Outcome> {
    let deadline = TokioInstant::now() + spec.timeout;
    let subject = format!("bench.{tag}");
    let keep_lat = spec.kind == Kind::Latency;
    let expected = spec.expected_per_subscriber();
    let drops = Arc::new(AtomicU64::new(0));
    let probes: Arc<Vec<AtomicU64>> =
        Arc::new(spec.subscribers.iter().map(|_| AtomicU64::new(0)).collect());
    // async-nats drops a subscription's messages once its channel is full
    // (default 65,536): with one driver process on 2 shared cores the
    // subscribers can fall behind the publishers, so let them buffer a run.
    let capacity = (expected as usize + 1024).max(SUBSCRIPTION_CAPACITY);
    let mut subs = Vec::new();
    for (i, &server) in spec.subscribers.iter().enumerate() {
        let client = connect(&addrs[server], &drops, capacity).await?;
        let mut sub = client.subscribe(subject.clone()).await?;
        client.flush().await?;
        let publishers = spec.publishers.len();
        let probes = probes.clone();
        subs.push(tokio::spawn(async move {
            let _keep = client;
            let mut tally = Tally::new(publishers, expected, keep_lat);
            while !tally.done() {
                let idle = TokioInstant::now() + IDLE;
                let msg = match timeout_at(deadline.min(idle), sub.next()).await {
                    Ok(Some(msg)) => msg,
                    Ok(None) => {
                        tally.stop_reason = Some("the subscription ended".to_owned());
                        break;
                    }
                    Err(_) => {
                        tally.stop_reason = Some(crate::msgc_bus::stop_reason(deadline));
                        break;
                    }
                };
                tally.on_payload(&msg.payload, now_ns(), keep_lat);
                probes[i].store(tally.probes_seen, Ordering::Relaxed);
            }
            tally
        }));
    }
    let mut pubs = Vec::new();
    for &server in &spec.publishers {
        pubs.push(connect(&addrs[server], &drops, SUBSCRIPTION_CAPACITY).await?);
    }
    // Interest crosses routes asynchronously: each publisher sends probes
    // until every subscriber has seen one of them.
    let all: u64 = (1u64 << spec.publishers.len()) - 1;
    let mut probe = vec![0u8; HEADER];
    let mut n = 0u64;
    while !probes.iter().all(|p| p.load(Ordering::Relaxed) == all) {
        if TokioInstant::now() > deadline {
            bail!("NATS interest did not reach every server (routes not up?)");
        }
        for (p, client) in pubs.iter().enumerate() {
            write_header(&mut probe, KIND_PROBE, p as u8, n, 0);
            client
                .publish(subject.clone(), Bytes::copy_from_slice(&probe))
                .await?;
            client.flush().await?;
        }
        n += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let t0 = now_ns();
    let start = Instant::now();
    let mut senders = Vec::new();
    for (p, client) in pubs.iter().enumerate() {
        let client = client.clone();
        let subject = subject.clone();
        let (n, size, rate) = (spec.msgs_per_publisher, spec.size, spec.rate);
        senders.push(tokio::spawn(async move {
            let mut buf = vec![0u8; size];
            for i in 0..n {
                pace(start, i, rate).await;
                write_header(&mut buf, KIND_DATA, p as u8, i, now_ns());
                client
                    .publish(subject.clone(), Bytes::copy_from_slice(&buf))
                    .await
                    .map_err(|e| anyhow!("publisher {p}: {e}"))?;
            }
            client.flush().await.map_err(|e| anyhow!("flush: {e}"))?;
            Ok::<(), anyhow::Error>(())
        }));
    }
    let tallies = crate::workload::collect(senders, subs, deadline, spec.timeout).await?;
    let mut outcome = Outcome::from_tallies(tallies, t0);
    outcome.drop_notices = drops.load(Ordering::Relaxed);
    Ok(outcome)
}
