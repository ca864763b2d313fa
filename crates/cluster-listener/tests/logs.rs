//! Log pulling (`eccluster.v1.Logs`) from an in-process node on loopback:
//! a puller crashing between receive and save and between save and commit,
//! rotation while following (with a crash in the middle), and the refusals.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cluster_listener::puller::Puller;
use common::{InProcNode, Rng, eventually};
use proto::eccluster::v1::logs_client::LogsClient;
use proto::eccluster::v1::{CommitRequest, ListLogsRequest, PullRequest, SubscribeRequest};
use tonic::Code;
use tonic::transport::Channel;

fn append(path: &Path, lines: std::ops::Range<usize>) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let mut text = String::new();
    for i in lines {
        text.push_str(&format!("record {i:06} {}\n", "x".repeat(i % 37)));
    }
    f.write_all(text.as_bytes()).unwrap();
}

fn expected(lines: std::ops::Range<usize>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x");
    append(&path, lines);
    std::fs::read_to_string(path).unwrap()
}

async fn node_with_log() -> (InProcNode, PathBuf, LogsClient<Channel>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs/mainlog");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let p = path.to_str().unwrap().to_owned();
    let node = InProcNode::start_in("n1", dir, move |cfg| {
        cfg.logs.insert("mainlog".to_owned(), p);
    })
    .await;
    let channel = cluster_listener::mover::data_channel(&node.addr, None).unwrap();
    (node, path, LogsClient::new(channel))
}

fn lines_in(path: &Path) -> usize {
    std::fs::read(path)
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_puller_crashing_before_save_or_before_commit_stores_every_record_once() {
    let (node, log, mut client) = node_with_log().await;
    append(&log, 0..1000);
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("mainlog/n1");
    let pull = |max| PullRequest {
        log: "mainlog".to_owned(),
        subscriber: String::new(),
        follow: false,
        max_batch_bytes: max,
    };

    // Crash 1: records received and written, never saved nor committed.
    let mut puller = Puller::open(&out).unwrap();
    let mut stream = client.pull(pull(4096)).await.unwrap().into_inner();
    for _ in 0..3 {
        let batch = stream.message().await.unwrap().unwrap();
        puller.write_batch(&batch).unwrap();
    }
    drop((stream, puller));
    assert!(lines_in(&out) > 0);

    // Crash 2: written and saved, but the commit never reached the node.
    let mut puller = Puller::open(&out).unwrap();
    assert_eq!(lines_in(&out), 0, "unsaved output is dropped on open");
    let mut stream = client.pull(pull(4096)).await.unwrap().into_inner();
    for _ in 0..5 {
        let batch = stream.message().await.unwrap().unwrap();
        puller.write_batch(&batch).unwrap();
    }
    assert!(puller.save().unwrap());
    let saved = puller.saved();
    drop((stream, puller));
    let list = client.list(ListLogsRequest {}).await.unwrap().into_inner();
    assert_eq!(
        list.logs[0].subscribers[0].checkpoint, None,
        "not committed yet"
    );

    // The next pull finishes the commit first, then resumes after it.
    append(&log, 1000..1500);
    let mut puller = Puller::open(&out).unwrap();
    assert_eq!(puller.saved(), saved);
    let stats = puller
        .pull(&mut client, "mainlog", "", false)
        .await
        .unwrap();
    assert!(!stats.reset);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), expected(0..1500));
    let list = client.list(ListLogsRequest {}).await.unwrap().into_inner();
    assert_eq!(
        list.logs[0].subscribers[0].checkpoint,
        puller.saved().position
    );

    // Nothing new: nothing written. Growth: only the new records.
    let stats = puller
        .pull(&mut client, "mainlog", "", false)
        .await
        .unwrap();
    assert_eq!(stats.records, 0);
    append(&log, 1500..1600);
    let stats = puller
        .pull(&mut client, "mainlog", "master", false)
        .await
        .unwrap();
    assert_eq!(stats.records, 100);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), expected(0..1600));
    drop(node);
}

#[tokio::test]
async fn unknown_logs_and_subscribers_are_not_found_and_subscribe_creates_one() {
    let (_node, log, mut client) = node_with_log().await;
    append(&log, 0..10);
    let status = client
        .pull(PullRequest {
            log: "nolog".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(
        status.message().contains("\"nolog\""),
        "{}",
        status.message()
    );
    let status = client
        .pull(PullRequest {
            log: "mainlog".to_owned(),
            subscriber: "archive".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = client
        .commit(CommitRequest {
            log: "mainlog".to_owned(),
            subscriber: "archive".to_owned(),
            position: Some(Default::default()),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = client
        .subscribe(SubscribeRequest {
            log: "mainlog".to_owned(),
            subscriber: "../x".to_owned(),
            from_end: false,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);

    // A subscriber created at the end sees only what comes after.
    let created = client
        .subscribe(SubscribeRequest {
            log: "mainlog".to_owned(),
            subscriber: "archive".to_owned(),
            from_end: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!created.existed);
    append(&log, 10..15);
    let out = tempfile::tempdir().unwrap();
    let mut puller = Puller::open(&out.path().join("archive")).unwrap();
    let stats = puller
        .pull(&mut client, "mainlog", "archive", false)
        .await
        .unwrap();
    assert_eq!(stats.records, 5);
    let list = client.list(ListLogsRequest {}).await.unwrap().into_inner();
    let names: Vec<_> = list.logs[0]
        .subscribers
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(names, ["master", "archive"]);
}

/// Rotates like logrotate: `.k` -> `.k+1`, then the log -> `.1`; the writer
/// carries on in a new file.
fn rotate(log: &Path) {
    let name = log.file_name().unwrap().to_str().unwrap();
    let dir = log.parent().unwrap();
    let mut k = 1;
    while dir.join(format!("{name}.{k}")).exists() {
        k += 1;
    }
    while k > 1 {
        std::fs::rename(
            dir.join(format!("{name}.{}", k - 1)),
            dir.join(format!("{name}.{k}")),
        )
        .unwrap();
        k -= 1;
    }
    std::fs::rename(log, dir.join(format!("{name}.1"))).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_while_following_and_a_crash_lose_nothing_and_repeat_nothing() {
    const TOTAL: usize = 6000;
    let mut rng = Rng::from_env("rotation_while_following");
    let (_node, log, client) = node_with_log().await;
    append(&log, 0..100);
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("mainlog/n1");

    // The writer: bursts of lines, a rotation every 1000, and after some
    // rotations more lines land in the renamed file (a late writer).
    let writer_log = log.clone();
    let rotate_points: Vec<usize> = (1..6)
        .map(|k| k * 1000 + rng.range(0, 200) as usize)
        .collect();
    let writer = std::thread::spawn(move || {
        let mut next = 100;
        while next < TOTAL {
            let end = (next + 50).min(TOTAL);
            append(&writer_log, next..end);
            next = end;
            if rotate_points.iter().any(|&p| p >= next - 50 && p < next) {
                rotate(&writer_log);
                if next % 2 == 0 && next < TOTAL {
                    // Late lines into the old file, before the new one exists.
                    let old = writer_log.with_file_name("mainlog.1");
                    let end = (next + 20).min(TOTAL);
                    append(&old, next..end);
                    next = end;
                }
            }
            std::thread::sleep(Duration::from_millis(4));
        }
    });

    // A follower, crashed (task aborted at any await) once it has some of
    // the records, then started again.
    let follow = |out: PathBuf, mut client: LogsClient<Channel>| {
        tokio::spawn(async move {
            let mut puller = Puller::open(&out).unwrap();
            puller.pull(&mut client, "mainlog", "master", true).await
        })
    };
    // What the output and the log files hold, for a wait that times out.
    let progress = |n: usize, writer_done: bool| {
        let files: Vec<(String, usize)> = std::fs::read_dir(log.parent().unwrap())
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path();
                (p.display().to_string(), lines_in(&p))
            })
            .collect();
        format!("{n} lines; writer done: {writer_done}; log files {files:?}")
    };
    let first = follow(out.clone(), client.clone());
    let crash_at = rng.range(1000, 3000) as usize;
    eventually("the follower to store some records", || async {
        let n = lines_in(&out);
        if n >= crash_at {
            Ok(())
        } else {
            Err(progress(n, writer.is_finished()))
        }
    })
    .await;
    first.abort();
    let _ = first.await;
    eprintln!(
        "crashed the follower at {} lines (saved {:?})",
        lines_in(&out),
        Puller::open(&out).unwrap().saved()
    );
    let second = follow(out.clone(), client.clone());
    eventually("the follower to store every record", || async {
        assert!(!second.is_finished(), "the follower stopped: {:?}", second);
        let n = lines_in(&out);
        if n >= TOTAL {
            Ok(())
        } else {
            Err(progress(n, writer.is_finished()))
        }
    })
    .await;
    writer.join().unwrap();
    second.abort();
    let _ = second.await;

    // Whatever the follower had not saved is dropped and pulled again.
    let mut client = client;
    let mut puller = Puller::open(&out).unwrap();
    let stats = puller
        .pull(&mut client, "mainlog", "master", false)
        .await
        .unwrap();
    assert!(!stats.reset);
    let got = std::fs::read_to_string(&out).unwrap();
    let want = expected(0..TOTAL);
    if got != want {
        let got: Vec<&str> = got.lines().collect();
        let want: Vec<&str> = want.lines().collect();
        let first_diff = got.iter().zip(&want).position(|(a, b)| a != b);
        panic!(
            "output differs: {} lines vs {} expected; first difference at line {first_diff:?}: {:?}",
            got.len(),
            want.len(),
            first_diff.map(|i| (got[i], want[i]))
        );
    }
}

#[tokio::test]
async fn a_following_pull_ends_cleanly_when_the_node_shuts_down() {
    let (node, log, mut client) = node_with_log().await;
    append(&log, 0..3);
    let mut stream = client
        .pull(PullRequest {
            log: "mainlog".to_owned(),
            follow: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut records = 0;
    while records < 3 {
        records += stream.message().await.unwrap().unwrap().records.len();
    }
    let stopping = tokio::spawn(node.stop());
    let end = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                other => return other.map(|_| ()),
            }
        }
    })
    .await
    .expect("the following stream to end");
    assert!(end.is_ok(), "{end:?}");
    stopping.await.unwrap();
}
