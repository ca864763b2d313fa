//! Guarantee 9: a peer that stops answering (SIGSTOP: its sockets stay open,
//! so only keepalives can tell) leaves the view within a bounded time, and
//! comes back when it resumes.

mod common;

use std::time::Instant;

use common::{ProcCluster, read_until, session};
use proto::msgc::v1::{ViewChange, event};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_server_is_dropped_by_keepalives_and_rejoins_when_it_resumes() {
    let cluster = ProcCluster::start(3);
    cluster.wait_view(&["s1", "s2", "s3"]).await;
    let (a, mut a_events) = session(&cluster.addrs[0], "a").await;
    let (c, _c_events) = session(&cluster.addrs[2], "c").await;
    a.join("g", "").await.unwrap();
    c.join("g", "").await.unwrap();
    read_until(&mut a_events, |f| {
        f.events
            .iter()
            .any(|e| matches!(&e.kind, Some(event::Kind::View(v)) if v.members.len() == 2))
    })
    .await;

    cluster.signal(2, "STOP");
    let stopped = Instant::now();
    read_until(&mut a_events, |f| {
        f.events.iter().any(|e| {
            matches!(&e.kind, Some(event::Kind::View(v))
                if v.change == ViewChange::ServerLost as i32 && v.changed == ["#c#s3"])
        })
    })
    .await;
    // Keepalive 400 ms: noticed after 1.5 silent intervals, installed a few round trips later.
    // (Recorded, not asserted: timing belongs in benchmarks.)
    eprintln!("hung server dropped after {:?}", stopped.elapsed());
    cluster.wait_view(&["s1", "s2"]).await;

    cluster.signal(2, "CONT");
    cluster.wait_view(&["s1", "s2", "s3"]).await;
    // The bus works across all three again.
    let (c2, mut c2_events) = session(&cluster.addrs[2], "c2").await;
    c2.join("g", "").await.unwrap();
    read_until(&mut c2_events, |f| {
        f.events.iter().any(|e| {
            matches!(&e.kind, Some(event::Kind::View(v))
                if ["#a#s1", "#c2#s3"].iter().all(|n| v.members.iter().any(|m| m.private_name == *n)))
        })
    })
    .await;
    a.publish("g", &b"after"[..]).await.unwrap();
    read_until(&mut c2_events, |f| {
        f.events.iter().any(
            |e| matches!(&e.kind, Some(event::Kind::Delivery(d)) if &d.payload[..] == b"after"),
        )
    })
    .await;
}
