//! The bus end to end, in process: real servers on loopback, real clients.

mod common;

use common::{Cluster, read_until, session};
use proto::msgc::v1::{ViewChange, event};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_form_one_view_and_deliver_across_it() {
    let cluster = Cluster::start(3).await;
    cluster.wait_view(&["s1", "s2", "s3"]).await;

    let mut clients = Vec::new();
    for i in 0..3 {
        let (s, e) = session(cluster.addr(i), &format!("c{i}")).await;
        assert_eq!(s.private_name(), format!("#c{i}#s{}", i + 1));
        s.join("g", "").await.unwrap();
        clients.push((s, e));
    }
    // Wait until each client sees a view with all three members.
    for (_, events) in clients.iter_mut() {
        read_until(events, |f| {
            f.events
                .iter()
                .any(|e| matches!(&e.kind, Some(event::Kind::View(v)) if v.members.len() == 3))
        })
        .await;
    }
    clients[1].0.publish("g", &b"hello"[..]).await.unwrap();
    for (_, events) in clients.iter_mut() {
        let mut got = None;
        read_until(events, |f| {
            for e in &f.events {
                if let Some(event::Kind::Delivery(d)) = &e.kind {
                    got = Some(d.clone());
                    return true;
                }
            }
            false
        })
        .await;
        let d = got.unwrap();
        assert_eq!(&d.payload[..], b"hello");
        assert_eq!(d.sender, "#c1#s2");
        assert_eq!(d.group, "g");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_a_server_announces_server_lost_to_its_groups() {
    let mut cluster = Cluster::start(3).await;
    cluster.wait_view(&["s1", "s2", "s3"]).await;
    let (a, mut a_events) = session(cluster.addr(0), "a").await;
    let (c, _c_events) = session(cluster.addr(2), "c").await;
    a.join("g", "").await.unwrap();
    c.join("g", "").await.unwrap();
    read_until(&mut a_events, |f| {
        f.events
            .iter()
            .any(|e| matches!(&e.kind, Some(event::Kind::View(v)) if v.members.len() == 2))
    })
    .await;
    cluster.kill(2).await;
    let mut lost = None;
    read_until(&mut a_events, |f| {
        for e in &f.events {
            if let Some(event::Kind::View(v)) = &e.kind
                && v.change == ViewChange::ServerLost as i32
            {
                lost = Some(v.clone());
                return true;
            }
        }
        false
    })
    .await;
    let lost = lost.unwrap();
    assert_eq!(lost.members.len(), 1);
    assert_eq!(lost.members[0].private_name, "#a#s1");
    assert_eq!(lost.changed, vec!["#c#s3".to_owned()]);
    cluster.wait_view(&["s1", "s2"]).await;
}
