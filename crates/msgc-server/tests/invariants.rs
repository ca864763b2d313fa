//! Guarantees 1-5 and 7 of msgc-semantics.md, checked by the invariant checker
//! over everything real clients delivered: 3 server processes, 2 clients per
//! server, 3 concurrent publishers per group, with and without a server
//! killed (SIGKILL) mid-stream.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::ProcCluster;
use msgc_check::{ClientLog, PublisherLog, Run, assert_valid};
use msgc_client::{Options, Session};
use proto::msgc::v1::event;

const GROUPS: [&str; 2] = ["g1", "g2"];
const PER_PUBLISHER: u64 = 1500;

struct Client {
    server: usize,
    session: Session,
    log: Arc<Mutex<ClientLog>>,
    publisher: Arc<Mutex<PublisherLog>>,
    reader: tokio::task::JoinHandle<()>,
}

async fn connect(addr: &str, server: usize, index: usize) -> Client {
    let name = format!("c{index}");
    let (session, mut events) = Session::connect(
        addr,
        Options {
            client_name: name.clone(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let log = Arc::new(Mutex::new(ClientLog::new(
        session.private_name(),
        format!("s{}", server + 1),
    )));
    // Each client publishes to one group, so its cumulative acks are that group's.
    let publisher = Arc::new(Mutex::new(PublisherLog::new(name, GROUPS[index % 2])));
    let (l, p) = (log.clone(), publisher.clone());
    let reader = tokio::spawn(async move {
        while let Ok(Some(frame)) = events.next_frame().await {
            if frame.publishes_acked > 0 {
                p.lock().unwrap().ack(frame.publishes_acked);
            }
            let mut log = l.lock().unwrap();
            for e in frame.events {
                match e.kind {
                    Some(event::Kind::Delivery(d)) => {
                        assert!(log.push_delivery(&d), "foreign payload")
                    }
                    Some(event::Kind::View(v)) => log.push_view(&v),
                    _ => {}
                }
            }
        }
    });
    Client {
        server,
        session,
        log,
        publisher,
        reader,
    }
}

fn records(c: &Client) -> usize {
    c.log.lock().unwrap().records.len()
}

/// Waits until no surviving client has delivered anything new for a while.
async fn wait_quiet(clients: &[Client], alive: impl Fn(&Client) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last: Vec<usize> = clients.iter().map(records).collect();
    let mut still_since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now: Vec<usize> = clients.iter().map(records).collect();
        let acked = clients.iter().filter(|c| alive(c)).all(|c| {
            let p = c.publisher.lock().unwrap();
            p.acked == p.sent.len() as u64
        });
        if now != last || !acked {
            still_since = Instant::now();
            last = now;
        } else if still_since.elapsed() > Duration::from_millis(1000) {
            return;
        }
        assert!(Instant::now() < deadline, "bus never went quiet");
    }
}

async fn run(kill: Option<usize>) {
    let mut cluster = ProcCluster::start(3);
    cluster.wait_view(&["s1", "s2", "s3"]).await;
    let mut clients = Vec::new();
    for index in 0..6 {
        let server = index % 3;
        clients.push(connect(&cluster.addrs[server], server, index).await);
    }
    for c in &clients {
        for g in GROUPS {
            c.session.join(g, "").await.unwrap();
        }
    }
    // Every client sees both groups with all six members before publishing.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !clients.iter().all(|c| {
        let log = c.log.lock().unwrap();
        GROUPS.iter().all(|g| {
            log.records.iter().any(|r| matches!(r, msgc_check::Record::View { group, members, .. } if group == g && members.len() == 6))
        })
    }) {
        assert!(Instant::now() < deadline, "joins never settled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // All six publish at once, in bursts; one server may die half-way.
    let mut tasks = Vec::new();
    for c in &clients {
        let session = c.session.clone();
        let publisher = c.publisher.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..PER_PUBLISHER {
                let (group, payload) = {
                    let mut p = publisher.lock().unwrap();
                    (p.group.clone(), p.next_payload(64 + (i as usize % 200)))
                };
                if session.publish(&group, payload).await.is_err() {
                    publisher.lock().unwrap().sent.pop();
                    break;
                }
                if i % 100 == 99 {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    let mut lost = Vec::new();
    if let Some(victim) = kill {
        // Kill once roughly half of the traffic has been delivered somewhere.
        let target = (PER_PUBLISHER as usize * 6) / 2;
        let deadline = Instant::now() + Duration::from_secs(30);
        while records(&clients[(victim + 1) % 3]) < target {
            assert!(Instant::now() < deadline, "traffic never reached half");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        cluster.kill(victim);
        lost.push(format!("s{}", victim + 1));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let alive = |c: &Client| Some(c.server) != kill;
    wait_quiet(&clients, alive).await;
    if let Some(victim) = kill {
        let members: Vec<String> = (0..3)
            .filter(|s| *s != victim)
            .map(|s| format!("s{}", s + 1))
            .collect();
        let members: Vec<&str> = members.iter().map(String::as_str).collect();
        cluster.wait_view(&members).await;
    }

    let mut run = Run {
        lost_servers: lost,
        ..Default::default()
    };
    for c in &clients {
        let mut log = c.log.lock().unwrap().clone();
        log.survived = alive(c);
        run.clients.push(log);
        run.publishers.push(c.publisher.lock().unwrap().clone());
    }
    let summary = assert_valid(&run);
    // The run really exercised the bus: every survivor got every surviving
    // publisher's acknowledged messages in both groups.
    let surviving_acked: u64 = clients
        .iter()
        .filter(|c| alive(c))
        .map(|c| c.publisher.lock().unwrap().acked)
        .sum();
    assert_eq!(
        surviving_acked,
        PER_PUBLISHER * if kill.is_some() { 4 } else { 6 }
    );
    assert!(
        summary.deliveries as u64 >= surviving_acked * 4,
        "{summary:?}"
    );
    if kill.is_some() {
        let server_lost = run.clients.iter().filter(|c| c.survived).all(|c| {
            GROUPS.iter().all(|g| {
                c.records.iter().any(|r| {
                    matches!(r, msgc_check::Record::View { group, change, .. }
                        if group == g && *change == proto::msgc::v1::ViewChange::ServerLost)
                })
            })
        });
        assert!(
            server_lost,
            "every survivor sees SERVER_LOST in both groups"
        );
    }
    for c in clients {
        drop(c.session);
        c.reader.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invariants_hold_with_concurrent_publishers() {
    run(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invariants_hold_when_a_server_is_killed_mid_stream() {
    // s3 does not coordinate; killing it exercises the flush of its in-flight ops.
    run(Some(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invariants_hold_when_the_coordinator_is_killed_mid_stream() {
    run(Some(0)).await;
}
