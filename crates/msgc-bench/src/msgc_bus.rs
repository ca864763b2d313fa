//! Runs a workload against the msgc cluster with `msgc_client` sessions.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use msgc_client::{Options, Session};
use proto::msgc::v1::event;
use tokio::time::{Instant as TokioInstant, timeout_at};

use crate::workload::{KIND_DATA, Kind, Outcome, Spec, Tally, now_ns, pace, write_header};

/// A subscriber that hears nothing for this long gives up (messages lost).
pub const IDLE: Duration = Duration::from_secs(10);

/// Why a receive timed out: the run's deadline or an idle subscriber.
pub fn stop_reason(deadline: TokioInstant) -> String {
    if TokioInstant::now() >= deadline {
        "the run's time bound passed".to_owned()
    } else {
        format!("nothing received for {} s", IDLE.as_secs())
    }
}

/// Runs `spec` once; `tag` makes group and client names unique per run.
pub async fn run(spec: &Spec, addrs: &[String], tag: &str) -> Result<Outcome> {
    let deadline = TokioInstant::now() + spec.timeout;
    let group = format!("bench.{tag}");
    let keep_lat = spec.kind == Kind::Latency;
    let expected = spec.expected_per_subscriber();
    let mut subs = Vec::new();
    for (i, &server) in spec.subscribers.iter().enumerate() {
        let (session, mut events) = Session::connect(
            &addrs[server],
            Options {
                client_name: format!("sub{i}.{tag}"),
                ..Default::default()
            },
        )
        .await
        .with_context(|| format!("subscriber {i} connect"))?;
        session.join(&group, "").await?;
        // Our own join is sequenced once we see a group view: every publish
        // sent after this point is ordered after the join.
        loop {
            let frame = timeout_at(deadline, events.next_frame())
                .await
                .map_err(|_| anyhow!("subscriber {i}: no group view before the deadline"))??
                .ok_or_else(|| anyhow!("subscriber {i}: session closed before its view"))?;
            if frame
                .events
                .iter()
                .any(|e| matches!(e.kind, Some(event::Kind::View(_))))
            {
                break;
            }
        }
        let publishers = spec.publishers.len();
        subs.push(tokio::spawn(async move {
            let _keep = session;
            let mut tally = Tally::new(publishers, expected, keep_lat);
            while !tally.done() {
                let idle = TokioInstant::now() + IDLE;
                let frame = match timeout_at(deadline.min(idle), events.next_frame()).await {
                    Ok(Ok(Some(frame))) => frame,
                    Ok(Ok(None)) => {
                        tally.stop_reason = Some("the server ended the session".to_owned());
                        break;
                    }
                    Ok(Err(e)) => {
                        tally.stop_reason = Some(format!("session error: {e}"));
                        break;
                    }
                    Err(_) => {
                        tally.stop_reason = Some(stop_reason(deadline));
                        break;
                    }
                };
                let now = now_ns();
                for ev in frame.events {
                    if let Some(event::Kind::Delivery(d)) = ev.kind {
                        tally.on_payload(&d.payload, now, keep_lat);
                    }
                }
            }
            tally
        }));
    }
    let mut pubs = Vec::new();
    for (p, &server) in spec.publishers.iter().enumerate() {
        let (session, mut events) = Session::connect(
            &addrs[server],
            Options {
                client_name: format!("pub{p}.{tag}"),
                no_self_delivery: true,
                ..Default::default()
            },
        )
        .await
        .with_context(|| format!("publisher {p} connect"))?;
        // Drain acknowledgements so the session never stalls on them.
        let drain = tokio::spawn(async move {
            while let Ok(Ok(Some(_))) = timeout_at(deadline, events.next_frame()).await {}
        });
        pubs.push((session, drain));
    }
    let t0 = now_ns();
    let start = Instant::now();
    let mut senders = Vec::new();
    for (p, (session, _)) in pubs.iter().enumerate() {
        let session = session.clone();
        let group = group.clone();
        let (n, size, rate) = (spec.msgs_per_publisher, spec.size, spec.rate);
        senders.push(tokio::spawn(async move {
            let mut buf = vec![0u8; size];
            for i in 0..n {
                pace(start, i, rate).await;
                write_header(&mut buf, KIND_DATA, p as u8, i, now_ns());
                session
                    .publish(&group, Bytes::copy_from_slice(&buf))
                    .await
                    .map_err(|e| anyhow!("publisher {p}: {e}"))?;
            }
            Ok::<(), anyhow::Error>(())
        }));
    }
    let tallies = crate::workload::collect(senders, subs, deadline, spec.timeout).await?;
    for (session, drain) in pubs {
        drop(session);
        drain.abort();
    }
    Ok(Outcome::from_tallies(tallies, t0))
}
