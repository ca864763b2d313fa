//! Guarantee 8: each side of a partition forms its own view and keeps
//! working; when the sides meet again they form one view, the groups announce
//! the rejoined members, and nothing sent on one side is replayed to the other.

mod common;

use common::{proxied_cluster, read_until, session};
use msgc_client::Events;
use proto::msgc::v1::{ServerFrame, ViewChange, event};

fn view_with(f: &ServerFrame, change: ViewChange, members: usize) -> bool {
    f.events.iter().any(|e| {
        matches!(&e.kind, Some(event::Kind::View(v)) if v.change == change as i32 && v.members.len() == members)
    })
}

/// Reads until `payload` arrives, returning every payload delivered on the way.
async fn payloads_until(events: &mut Events, payload: &[u8]) -> Vec<Vec<u8>> {
    let mut seen = Vec::new();
    read_until(events, |f| {
        let mut done = false;
        for e in &f.events {
            if let Some(event::Kind::Delivery(d)) = &e.kind {
                seen.push(d.payload.to_vec());
                done |= &d.payload[..] == payload;
            }
        }
        done
    })
    .await;
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_sides_keep_working_and_merge_without_replay() {
    let (cluster, proxies) = proxied_cluster(3).await;
    cluster.wait_view(&["s1", "s2", "s3"]).await;
    let (a, mut a_events) = session(cluster.addr(0), "a").await;
    let (c, mut c_events) = session(cluster.addr(2), "c").await;
    a.join("g", "").await.unwrap();
    c.join("g", "").await.unwrap();
    read_until(&mut a_events, |f| view_with(f, ViewChange::Join, 2)).await;
    read_until(&mut c_events, |f| view_with(f, ViewChange::Join, 2)).await;

    // s3 is cut off from s1 and s2 (both dial it through its proxy).
    proxies[2].cut();
    read_until(&mut a_events, |f| view_with(f, ViewChange::ServerLost, 1)).await;
    read_until(&mut c_events, |f| view_with(f, ViewChange::ServerLost, 1)).await;
    cluster.wait_view(&["s1", "s2"]).await;
    cluster.wait_view(&["s3"]).await;

    // Each side works on its own.
    a.publish("g", &b"left"[..]).await.unwrap();
    c.publish("g", &b"right"[..]).await.unwrap();
    assert_eq!(
        payloads_until(&mut a_events, b"left").await,
        vec![b"left".to_vec()]
    );
    assert_eq!(
        payloads_until(&mut c_events, b"right").await,
        vec![b"right".to_vec()]
    );

    // Heal: one view again, the group announces the rejoined member.
    proxies[2].heal();
    read_until(&mut a_events, |f| {
        view_with(f, ViewChange::PartitionMerge, 2)
    })
    .await;
    read_until(&mut c_events, |f| {
        view_with(f, ViewChange::PartitionMerge, 2)
    })
    .await;
    cluster.wait_view(&["s1", "s2", "s3"]).await;

    // Nothing from the other side is replayed; new traffic reaches both.
    a.publish("g", &b"healed"[..]).await.unwrap();
    assert_eq!(
        payloads_until(&mut a_events, b"healed").await,
        vec![b"healed".to_vec()]
    );
    assert_eq!(
        payloads_until(&mut c_events, b"healed").await,
        vec![b"healed".to_vec()]
    );
}
