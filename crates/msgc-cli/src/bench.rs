//! `msgc bench`: publishers and subscribers as sessions spread over the
//! servers, like `nats bench`. Each payload carries the time it was sent
//! (from one clock in this process) and a sequence number, so subscribers
//! measure publish→deliver latency. The publish rate counts until the last
//! message is acknowledged (stable: held by every server of the view).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::{BufMut, Bytes, BytesMut};
use msgc_client::{Events, Options, Session};
use proto::msgc::v1::event;
use tokio::task::JoinSet;

use crate::args::BenchArgs;
use crate::connect::Servers;

/// Smallest payload: 8 bytes of send time, 8 of sequence.
pub const MIN_SIZE: usize = 16;

/// What one subscriber saw.
#[derive(Debug, Default)]
struct SubResult {
    server: String,
    received: u64,
    elapsed: Duration,
    latencies_us: Vec<u64>,
}

/// What one publisher did.
#[derive(Debug)]
struct PubResult {
    server: String,
    sent: u64,
    elapsed: Duration,
}

/// Runs the benchmark and prints its report.
pub async fn run(servers: &Servers, args: BenchArgs) -> anyhow::Result<ExitCode> {
    if args.size < MIN_SIZE {
        bail!("--size must be at least {MIN_SIZE} bytes");
    }
    if args.publishers == 0 {
        bail!("--pub must be at least 1");
    }
    let clock = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.timeout.max(1));
    let expected = args.msgs * args.publishers as u64;
    let mut subs = JoinSet::new();
    for i in 0..args.subscribers {
        let (server, session, mut events) = open(servers, i, &format!("bench-sub-{i}")).await?;
        session.join(&args.group, Vec::new()).await?;
        wait_joined(&mut events, &args.group, session.private_name(), deadline).await?;
        subs.spawn(subscriber(
            server, session, events, expected, clock, deadline,
        ));
    }
    let mut pubs = JoinSet::new();
    for i in 0..args.publishers {
        let (server, session, events) = open(servers, i, &format!("bench-pub-{i}")).await?;
        let (group, msgs, size) = (args.group.clone(), args.msgs, args.size);
        pubs.spawn(publisher(
            server, session, events, group, msgs, size, clock, deadline,
        ));
    }
    let mut pub_results = Vec::new();
    while let Some(result) = pubs.join_next().await {
        pub_results.push(result.context("publisher task")??);
    }
    let mut sub_results = Vec::new();
    while let Some(result) = subs.join_next().await {
        sub_results.push(result.context("subscriber task")?);
    }
    print!(
        "{}",
        report(&args, servers.len(), &pub_results, &sub_results)
    );
    let complete = sub_results.iter().all(|s| s.received == expected);
    Ok(if complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn open(
    servers: &Servers,
    i: usize,
    name: &str,
) -> anyhow::Result<(String, Session, Events)> {
    let options = Options {
        client_name: format!("{name}-{}", std::process::id()),
        queue: 8192,
        ..Options::default()
    };
    Ok(servers
        .session_from(i % servers.len().max(1), &options)
        .await?)
}

/// Waits for this session's own join to show in a view of `group`.
async fn wait_joined(
    events: &mut Events,
    group: &str,
    me: &str,
    deadline: tokio::time::Instant,
) -> anyhow::Result<()> {
    loop {
        let frame = tokio::time::timeout_at(deadline, events.next_frame())
            .await
            .context("timed out joining the bench group")??
            .context("session ended while joining")?;
        for e in frame.events {
            if let Some(event::Kind::View(v)) = e.kind
                && v.group == group
                && v.members.iter().any(|m| m.private_name == me)
            {
                return Ok(());
            }
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[allow(clippy::too_many_arguments)]
async fn publisher(
    server: String,
    session: Session,
    mut events: Events,
    group: String,
    msgs: u64,
    size: usize,
    clock: Instant,
    deadline: tokio::time::Instant,
) -> anyhow::Result<PubResult> {
    let start = Instant::now();
    let reader = tokio::spawn(async move {
        while events.acked() < msgs {
            match tokio::time::timeout_at(deadline, events.next_frame()).await {
                Ok(Ok(Some(_))) => {}
                _ => break,
            }
        }
        events.acked()
    });
    for seq in 0..msgs {
        let mut payload = BytesMut::with_capacity(size);
        payload.put_u64(micros(clock.elapsed()));
        payload.put_u64(seq);
        payload.resize(size, b'x');
        session.publish(&group, Bytes::from(payload)).await?;
    }
    let acked = reader.await.context("ack reader")?;
    if acked < msgs {
        bail!("publisher on {server}: only {acked} of {msgs} acknowledged before the deadline");
    }
    Ok(PubResult {
        server,
        sent: msgs,
        elapsed: start.elapsed(),
    })
}

async fn subscriber(
    server: String,
    _session: Session,
    mut events: Events,
    expected: u64,
    clock: Instant,
    deadline: tokio::time::Instant,
) -> SubResult {
    let mut result = SubResult {
        server,
        latencies_us: Vec::with_capacity(usize::try_from(expected).unwrap_or(0)),
        ..SubResult::default()
    };
    let mut first: Option<Instant> = None;
    while result.received < expected {
        let Ok(Ok(Some(frame))) = tokio::time::timeout_at(deadline, events.next_frame()).await
        else {
            break;
        };
        let now = micros(clock.elapsed());
        for e in frame.events {
            if let Some(event::Kind::Delivery(d)) = e.kind
                && d.payload.len() >= MIN_SIZE
            {
                first.get_or_insert_with(Instant::now);
                let sent = u64::from_be_bytes(d.payload[..8].try_into().unwrap_or_default());
                result.latencies_us.push(now.saturating_sub(sent));
                result.received += 1;
            }
        }
    }
    result.elapsed = first.map_or(Duration::ZERO, |f| f.elapsed());
    result
}

fn rate(n: u64, d: Duration) -> f64 {
    if d.is_zero() {
        0.0
    } else {
        n as f64 / d.as_secs_f64()
    }
}

fn human(n: f64) -> String {
    let whole = n.round() as u64;
    let digits = whole.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let at = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[at.min(sorted.len() - 1)] as f64 / 1000.0
}

fn report(args: &BenchArgs, servers: usize, pubs: &[PubResult], subs: &[SubResult]) -> String {
    let mb = |msgs_per_sec: f64| msgs_per_sec * args.size as f64 / (1024.0 * 1024.0);
    let mut out = format!(
        "msgc bench: {} publisher(s) x {} msgs, {} subscriber(s), {} B payloads, group {}, over {servers} server(s)\n",
        args.publishers, args.msgs, args.subscribers, args.size, args.group
    );
    let total_sent: u64 = pubs.iter().map(|p| p.sent).sum();
    let pub_time = pubs.iter().map(|p| p.elapsed).max().unwrap_or_default();
    let pr = rate(total_sent, pub_time);
    out.push_str(&format!(
        "Pub stats: {} msgs/sec ~ {:.2} MB/sec (until acknowledged)\n",
        human(pr),
        mb(pr)
    ));
    for (i, p) in pubs.iter().enumerate() {
        let r = rate(p.sent, p.elapsed);
        out.push_str(&format!(
            " [{}] {} msgs/sec ~ {:.2} MB/sec ({} msgs via {})\n",
            i + 1,
            human(r),
            mb(r),
            p.sent,
            p.server
        ));
    }
    if subs.is_empty() {
        return out;
    }
    let total: u64 = subs.iter().map(|s| s.received).sum();
    let sub_time = subs.iter().map(|s| s.elapsed).max().unwrap_or_default();
    let sr = rate(total, sub_time);
    out.push_str(&format!(
        "Sub stats: {} msgs/sec ~ {:.2} MB/sec (aggregate)\n",
        human(sr),
        mb(sr)
    ));
    let mut all: Vec<u64> = Vec::new();
    for (i, s) in subs.iter().enumerate() {
        let r = rate(s.received, s.elapsed);
        out.push_str(&format!(
            " [{}] {} msgs/sec ~ {:.2} MB/sec ({} msgs via {})\n",
            i + 1,
            human(r),
            mb(r),
            s.received,
            s.server
        ));
        all.extend_from_slice(&s.latencies_us);
    }
    all.sort_unstable();
    out.push_str(&format!(
        "Latency publish→deliver (ms): p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}  ({} samples)\n",
        percentile(&all, 0.50),
        percentile(&all, 0.90),
        percentile(&all, 0.99),
        percentile(&all, 1.0),
        all.len()
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_like_nats_bench() {
        assert_eq!(human(1_234_567.4), "1,234,567");
        assert_eq!(human(999.0), "999");
        assert_eq!(percentile(&[1000, 2000, 3000], 0.5), 2.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
        assert_eq!(rate(10, Duration::from_secs(2)), 5.0);
    }
}
