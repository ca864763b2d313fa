//! Message moves (`eccluster.v1.Mover`) between in-process nodes on loopback:
//! a thousand messages through a proxy that cuts connections at random
//! points, the refusals, and a transfer abandoned midway.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use cluster_listener::mover::{self, Retry};
use common::{CuttingProxy, InProcNode, Rng, digest, eventually};
use futures::StreamExt;
use proto::eccluster::v1::{Envelope, MoveChunk};
use tonic::Code;

fn envelope(id: &str) -> Envelope {
    Envelope {
        id: id.to_owned(),
        sender: "sender@example.com".to_owned(),
        recipients: vec!["rcpt@example.net".to_owned()],
        binding: "default".to_owned(),
        size: 0,
    }
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

/// Message sizes: most small, some up to 1 MiB, a few up to 4 MiB.
fn random_size(rng: &mut Rng) -> usize {
    (match rng.range(0, 99) {
        0..=1 => rng.range(1 << 20, 4 << 20),
        2..=9 => rng.range(64 << 10, 1 << 20),
        _ => rng.range(0, 16 << 10),
    }) as usize
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_messages_through_cut_connections_land_exactly_once_and_intact() {
    let mut rng = Rng::from_env("a_thousand_messages");
    let receiver = InProcNode::start("receiver", |_| {}).await;
    let proxy = CuttingProxy::start(receiver.addr.clone(), rng.next(), 12 << 20, 48 << 10).await;
    let source = tempfile::tempdir().unwrap();
    let mut expected = BTreeMap::new();
    let mut total = 0;
    for i in 0..1000 {
        let id = format!("msg-{i:04}.{:x}", rng.next() & 0xffff);
        let mut body = vec![0u8; random_size(&mut rng)];
        rng.fill(&mut body);
        total += body.len();
        std::fs::write(source.path().join(&id), &body).unwrap();
        expected.insert(id, (digest(&body), body.len()));
    }
    eprintln!("sending {} messages, {} MiB", expected.len(), total >> 20);

    let channel = mover::data_channel(&proxy.addr, None).unwrap();
    let retry = Retry {
        attempts: 100,
        backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(200),
    };
    let results: Vec<_> = futures::stream::iter(expected.keys().cloned())
        .map(|id| {
            let channel = channel.clone();
            let path = source.path().join(&id);
            async move {
                let result = mover::move_file(&channel, &envelope(&id), &path, retry).await;
                (id, result)
            }
        })
        .buffer_unordered(4)
        .collect()
        .await;
    let mut retried = 0;
    let mut duplicates = 0;
    for (id, result) in results {
        let (reply, attempts) = result.unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(reply.id, id);
        assert_eq!(reply.node, "receiver");
        retried += u64::from(attempts > 1);
        duplicates += u64::from(reply.duplicate);
    }
    let cuts = proxy.cuts.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("cuts {cuts}, messages retried {retried}, answered as duplicates {duplicates}");
    assert!(cuts > 0, "the proxy never cut a connection");

    let incoming = receiver.spool().join("incoming");
    let landed = files_in(&incoming);
    assert_eq!(
        landed.len(),
        expected.len(),
        "one file per message in incoming"
    );
    for path in landed {
        let id = path.file_name().unwrap().to_str().unwrap().to_owned();
        let body = std::fs::read(&path).unwrap();
        assert_eq!(
            expected.get(&id),
            Some(&(digest(&body), body.len())),
            "{id} differs from what was sent"
        );
        let envelope =
            std::fs::read_to_string(receiver.spool().join(format!("envelopes/{id}.json"))).unwrap();
        assert!(envelope.contains("rcpt@example.net"), "{envelope}");
    }
    // Cut transfers the receiver noticed late are cleaned up too.
    let tmp = receiver.spool().join("tmp");
    eventually("tmp/ to be empty", || async {
        let left = files_in(&tmp);
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("{left:?}"))
        }
    })
    .await;
}

#[tokio::test]
async fn refusals_duplicates_and_an_abandoned_transfer_leave_incoming_clean() {
    let node = InProcNode::start("n1", |cfg| cfg.max_message_size = 100_000).await;
    let channel = mover::data_channel(&node.addr, None).unwrap();
    let mut client = mover::mover_client(channel.clone());
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small");
    std::fs::write(&small, b"hello").unwrap();
    let big = dir.path().join("big");
    std::fs::write(&big, vec![7u8; 100_001]).unwrap();

    // A first move, then the same id again: one copy, the second a duplicate.
    let reply = mover::send_file(&mut client, envelope("m1"), &small, 2)
        .await
        .unwrap();
    assert!(!reply.duplicate);
    assert_eq!(reply.size, 5);
    let reply = mover::send_file(&mut client, envelope("m1"), &small, 2)
        .await
        .unwrap();
    assert!(reply.duplicate);
    assert_eq!(
        std::fs::read(node.spool().join("incoming/m1")).unwrap(),
        b"hello"
    );

    // Over the limit: declared (the sender sets size) and undeclared.
    let err = mover::send_file(&mut client, envelope("big"), &big, 4096)
        .await
        .unwrap_err();
    let mover::SendError::Status(status) = err else {
        panic!("{err}")
    };
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(
        status.message().contains("max_message_size (100000 bytes)"),
        "{}",
        status.message()
    );
    let chunks = futures::stream::iter((0..30).map(|i| MoveChunk {
        envelope: (i == 0).then(|| envelope("big2")),
        data: Bytes::from(vec![1u8; 4096]),
    }));
    let status = client.r#move(chunks).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");

    // Ids that could escape the spool, and a missing envelope.
    for id in ["../etc/passwd", "a/b", "..", ".x", ""] {
        let err = mover::send_file(&mut client, envelope(id), &small, 1024)
            .await
            .unwrap_err();
        let mover::SendError::Status(status) = err else {
            panic!("{err}")
        };
        assert_eq!(status.code(), Code::InvalidArgument, "{id:?}: {status:?}");
    }
    let status = client
        .r#move(futures::stream::iter([MoveChunk {
            envelope: None,
            data: Bytes::from_static(b"x"),
        }]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);

    // A transfer abandoned midway: the client sends part of a body, then
    // drops the call. Nothing reaches incoming and tmp is cleaned.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut declared = envelope("half");
    declared.size = 50_000;
    tx.send(MoveChunk {
        envelope: Some(declared),
        data: Bytes::from(vec![3u8; 20_000]),
    })
    .await
    .unwrap();
    let stream =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    let mut call_client = client.clone();
    let call = tokio::spawn(async move { call_client.r#move(stream).await });
    let tmp = node.spool().join("tmp");
    eventually("the half transfer's tmp file", || async {
        if files_in(&tmp).is_empty() {
            Err("none yet".to_owned())
        } else {
            Ok(())
        }
    })
    .await;
    call.abort();
    drop(tx);
    eventually("tmp/ to be empty after the abandoned call", || async {
        let left = files_in(&tmp);
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("{left:?}"))
        }
    })
    .await;
    let incoming: Vec<_> = files_in(&node.spool().join("incoming"));
    assert_eq!(incoming, vec![node.spool().join("incoming/m1")]);

    // A spool the node cannot write: INTERNAL, naming what failed.
    let broken = InProcNode::start("n2", |cfg| cfg.spool_dir = "/dev/null/spool".into()).await;
    let mut broken_client = mover::mover_client(mover::data_channel(&broken.addr, None).unwrap());
    let err = mover::send_file(&mut broken_client, envelope("m9"), &small, 1024)
        .await
        .unwrap_err();
    let mover::SendError::Status(status) = err else {
        panic!("{err}")
    };
    assert_eq!(status.code(), Code::Internal);
    assert!(
        status.message().contains("spool I/O error") && status.message().contains("\"m9\""),
        "{}",
        status.message()
    );

    // A node restart removes anything left in tmp.
    std::fs::write(tmp.join("left.1-2-3"), b"partial").unwrap();
    let dir = node.stop().await;
    let node = InProcNode::start_in("n1", dir, |_| {}).await;
    assert!(files_in(&node.spool().join("tmp")).is_empty());
    assert!(node.spool().join("incoming/m1").exists());
}
