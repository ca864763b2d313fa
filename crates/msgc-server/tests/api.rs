//! The client and peer APIs' refusals and edges, in process: statuses that
//! name the problem, slow clients cut, strangers refused, a restarted server
//! welcomed back, and the grpcurl-friendly calls.

mod common;

use std::time::{Duration, Instant};

use common::{Cluster, read_until, session};
use msgc_client::{ClientError, Options, Session};
use proto::msgc::v1::admin_client::AdminClient;
use proto::msgc::v1::bus_client::BusClient;
use proto::msgc::v1::mesh_client::MeshClient;
use proto::msgc::v1::{
    LinkState, ListGroupsRequest, PeerFrame, PeerHello, PeerMessage, SubscribeRequest, ViewChange,
    event, peer_message,
};
use tonic::Code;

async fn final_status(events: &mut msgc_client::Events) -> tonic::Status {
    let deadline = Duration::from_secs(20);
    tokio::time::timeout(deadline, async {
        loop {
            match events.next_frame().await {
                Ok(Some(_)) => {}
                Ok(None) => panic!("session ended without a status"),
                Err(ClientError::Status(status)) => return status,
                Err(other) => panic!("{other}"),
            }
        }
    })
    .await
    .expect("session never ended")
}

#[tokio::test]
async fn bad_commands_end_the_session_with_a_status_naming_them() {
    let cluster = Cluster::start(1).await;
    let addr = cluster.addr(0);

    let (s, mut e) = session(addr, "big").await;
    let max = s.welcome().max_payload as usize;
    s.publish("g", vec![0u8; max + 1]).await.unwrap();
    let status = final_status(&mut e).await;
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(
        status.message().contains(&format!("{}", max + 1)),
        "{}",
        status.message()
    );

    let (s, mut e) = session(addr, "twice").await;
    s.join("g", "").await.unwrap();
    s.join("g", "").await.unwrap();
    let status = final_status(&mut e).await;
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains("already a member of group \"g\""),
        "{}",
        status.message()
    );

    let (s, mut e) = session(addr, "badname").await;
    s.join("has space", "").await.unwrap();
    let status = final_status(&mut e).await;
    assert_eq!(status.code(), Code::InvalidArgument);

    // A client name in use on the server is refused at hello.
    let (_keep, _keep_events) = session(addr, "dup").await;
    let err = Session::connect(
        addr,
        Options {
            client_name: "dup".into(),
            ..Default::default()
        },
    )
    .await;
    match err {
        Err(ClientError::Status(status)) => assert_eq!(status.code(), Code::AlreadyExists),
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("duplicate client name accepted"),
    }
    let err = Session::connect(
        addr,
        Options {
            client_name: "bad#name".into(),
            ..Default::default()
        },
    )
    .await;
    assert!(matches!(err, Err(ClientError::Status(ref s)) if s.code() == Code::InvalidArgument));
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_and_its_group_moves_on() {
    let cluster = Cluster::start_with(1, |mut c| {
        c.max_backlog = 64;
        c
    })
    .await;
    let addr = cluster.addr(0);
    let (watcher, mut watcher_events) = session(addr, "watcher").await;
    watcher.join("g", "").await.unwrap();
    // The slow client joins and then never reads its events again.
    let (slow, slow_events) = session(addr, "slow").await;
    slow.join("g", "").await.unwrap();
    let (publisher, mut publisher_events) = session(addr, "pub").await;
    tokio::spawn(async move { while let Ok(Some(_)) = publisher_events.next_frame().await {} });
    let payload = vec![7u8; 16 * 1024];
    let mut cut = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    // Keep publishing until the watcher sees the slow client leave.
    while cut.is_none() {
        assert!(Instant::now() < deadline, "slow client was never cut");
        for _ in 0..32 {
            publisher.publish("g", payload.clone()).await.unwrap();
        }
        while let Ok(Ok(Some(frame))) =
            tokio::time::timeout(Duration::from_millis(20), watcher_events.next_frame()).await
        {
            for e in frame.events {
                if let Some(event::Kind::View(v)) = e.kind
                    && v.change == ViewChange::Disconnect as i32
                {
                    cut = Some(v);
                }
            }
        }
    }
    let view = cut.unwrap();
    assert_eq!(view.changed, vec!["#slow#s1".to_owned()]);
    assert!(view.members.iter().all(|m| m.private_name != "#slow#s1"));
    drop((slow, slow_events));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_slows_the_publisher_down_instead_of_being_cut() {
    let cluster = Cluster::start_with(2, |mut c| {
        c.max_backlog = 200;
        c
    })
    .await;
    cluster.wait_view(&["s1", "s2"]).await;
    let (reader, mut reader_events) = session(cluster.addr(1), "reader").await;
    reader.join("g", "").await.unwrap();
    read_until(&mut reader_events, |f| {
        f.events
            .iter()
            .any(|e| matches!(&e.kind, Some(event::Kind::View(_))))
    })
    .await;
    let (publisher, mut publisher_events) = session(cluster.addr(0), "pub").await;
    tokio::spawn(async move { while let Ok(Some(_)) = publisher_events.next_frame().await {} });
    const N: usize = 3000;
    let sending = tokio::spawn(async move {
        for i in 0..N {
            // 4 KiB each: enough to fill the HTTP/2 windows, so the queue
            // that grows is the server's.
            let mut payload = vec![0u8; 4096];
            payload[..4].copy_from_slice(&(i as u32).to_be_bytes());
            publisher.publish("g", payload).await.unwrap();
        }
        publisher
    });
    // The reader takes a nap between frames: far slower than the publisher,
    // but never gone for three keepalive intervals.
    let mut got = 0;
    tokio::time::timeout(Duration::from_secs(60), async {
        while got < N {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let frame = reader_events
                .next_frame()
                .await
                .expect("reader was cut")
                .expect("session ended");
            for e in frame.events {
                if let Some(event::Kind::Delivery(d)) = e.kind {
                    assert_eq!(
                        d.payload[..4],
                        (got as u32).to_be_bytes(),
                        "in order, none lost"
                    );
                    got += 1;
                }
            }
        }
    })
    .await
    .expect("slow reader never caught up");
    let _publisher = sending.await.unwrap();
    assert_eq!(got, N);
}

#[tokio::test]
async fn a_stranger_or_a_different_cluster_is_refused_on_the_mesh() {
    let cluster = Cluster::start(2).await;
    cluster.wait_view(&["s1", "s2"]).await;
    let channel = msgc_client::channel(cluster.addr(0), Duration::from_secs(2))
        .await
        .unwrap();
    let hello = |name: &str, digest: &str| PeerFrame {
        messages: vec![PeerMessage {
            kind: Some(peer_message::Kind::Hello(PeerHello {
                name: name.into(),
                cluster_digest: digest.into(),
                incarnation: 1,
            })),
        }],
    };
    let mut mesh = MeshClient::new(channel);
    let status = mesh
        .link(tokio_stream::iter([hello("mallory", "x")]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(
        status
            .message()
            .contains("\"mallory\" is not in this server's peers"),
        "{}",
        status.message()
    );
    let status = mesh
        .link(tokio_stream::iter([hello("s2", "0000")]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status
            .message()
            .contains("different msgc_server peers list"),
        "{}",
        status.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_rejoins_and_its_new_clients_see_the_old_members() {
    let mut cluster = Cluster::start(3).await;
    cluster.wait_view(&["s1", "s2", "s3"]).await;
    let (a, mut a_events) = session(cluster.addr(0), "a").await;
    a.join("g", "").await.unwrap();
    read_until(&mut a_events, |f| {
        f.events
            .iter()
            .any(|e| matches!(&e.kind, Some(event::Kind::View(_))))
    })
    .await;

    // Stop s1 (the coordinator) and start a fresh s1 on the same port.
    let addr = cluster.addr(0).to_owned();
    cluster.kill(0).await;
    cluster.wait_view(&["s2", "s3"]).await;
    cluster.restart(0).await;
    cluster.wait_view(&["s1", "s2", "s3"]).await;

    let (b, mut b_events) = session(cluster.addr(1), "b").await;
    b.join("g", "").await.unwrap();
    let (c, mut c_events) = session(&addr, "c").await;
    c.join("g", "").await.unwrap();
    read_until(&mut b_events, |f| {
        f.events
            .iter()
            .any(|e| matches!(&e.kind, Some(event::Kind::View(v)) if v.members.len() == 2))
    })
    .await;
    c.publish("g", &b"back"[..]).await.unwrap();
    read_until(&mut b_events, |f| {
        f.events
            .iter()
            .any(|e| matches!(&e.kind, Some(event::Kind::Delivery(d)) if &d.payload[..] == b"back"))
    })
    .await;
    read_until(&mut c_events, |f| {
        f.events
            .iter()
            .any(|e| matches!(&e.kind, Some(event::Kind::Delivery(d)) if &d.payload[..] == b"back"))
    })
    .await;
    drop((a, b, c));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_and_admin_calls_show_groups_leaders_and_links() {
    let cluster = Cluster::start(2).await;
    cluster.wait_view(&["s1", "s2"]).await;
    let channel = msgc_client::channel(cluster.addr(1), Duration::from_secs(2))
        .await
        .unwrap();
    let mut bus = BusClient::new(channel.clone());
    let mut stream = bus
        .subscribe(SubscribeRequest {
            groups: vec!["news".into()],
            client_name: "reader".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // Welcome first, then our own join view.
    let first = stream.message().await.unwrap().unwrap();
    assert!(matches!(
        first.events[0].kind,
        Some(event::Kind::Welcome(_))
    ));
    let (later, _later_events) = session(cluster.addr(0), "later").await;
    later.join("news", "").await.unwrap();

    let mut admin = AdminClient::new(channel);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let groups = admin
            .list_groups(ListGroupsRequest {
                group: "news".into(),
            })
            .await
            .unwrap()
            .into_inner();
        if let Some(g) = groups.groups.first()
            && g.members.len() == 2
        {
            assert_eq!(g.leader, "#reader#s2", "the longest-standing member leads");
            break;
        }
        assert!(Instant::now() < deadline, "group never showed both members");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let bad = admin
        .list_groups(ListGroupsRequest {
            group: "no good".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);

    let view = admin
        .get_server_view(proto::msgc::v1::GetServerViewRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(view.server, "s2");
    assert_eq!(view.coordinator, "s1");
    assert_eq!(view.members, vec!["s1", "s2"]);
    assert_eq!(view.links.len(), 1);
    assert_eq!(view.links[0].name, "s1");
    assert_eq!(view.links[0].state, LinkState::Connected as i32);

    later.publish("news", &b"extra"[..]).await.unwrap();
    let deadline = Duration::from_secs(10);
    let got = tokio::time::timeout(deadline, async {
        loop {
            let frame = stream.message().await.unwrap().unwrap();
            for e in frame.events {
                if let Some(event::Kind::Delivery(d)) = e.kind {
                    return d;
                }
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(&got.payload[..], b"extra");
    assert_eq!(got.sender, "#later#s1");
}
