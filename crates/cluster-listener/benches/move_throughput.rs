//! Bulk move throughput over loopback against a plain TCP copy of the same
//! bytes, in one run.
//!
//! `cargo bench -p cluster-listener --bench move_throughput`
//! (`BENCH_SIZE_MIB`, default 1024; `BENCH_DIR`, default the system temp
//! dir; `BENCH_ROUNDS`, default 5 — the best round of each counts;
//! `BENCH_CHUNK_KIB`, default 1024).
//!
//! * `tcp file->file`: a thread reads the source file in 1 MiB blocks and
//!   writes them to a loopback TCP socket; the receiving thread writes what
//!   it reads through a 1 MiB buffered file and fsyncs it: the same disk work
//!   a move does, without gRPC.
//! * `move`: `mover::send_file` (1 MiB chunks) to an in-process node, which
//!   writes `tmp/`, fsyncs, renames into `incoming/` and acknowledges.
//! * `tcp mem->null`: the socket alone, for reference.
//!
//! The ratio printed is move / tcp file->file. Every run starts after a
//! `sync`, so none pays for another's writeback.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cluster_listener::mover;
use proto::eccluster::v1::Envelope;
use service_kit::listen::BoundListener;
use tokio_util::sync::CancellationToken;

const BLOCK: usize = 1 << 20;

fn make_source(path: &Path, size: u64) {
    let mut out = BufWriter::with_capacity(BLOCK, File::create(path).unwrap());
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut block = vec![0u8; BLOCK];
    let mut left = size;
    while left > 0 {
        for word in block.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = left.min(BLOCK as u64) as usize;
        out.write_all(&block[..n]).unwrap();
        left -= n as u64;
    }
    out.into_inner().unwrap().sync_all().unwrap();
}

/// The source read into a socket, the socket written to an fsynced file.
fn tcp_file_to_file(source: &Path, target: &Path) -> Duration {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let target = target.to_owned();
    let start = Instant::now();
    let receiver = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut out = BufWriter::with_capacity(BLOCK, File::create(&target).unwrap());
        let mut buf = vec![0u8; BLOCK];
        loop {
            let n = conn.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n]).unwrap();
        }
        out.into_inner().unwrap().sync_all().unwrap();
        conn.write_all(b"k").unwrap();
    });
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_nodelay(true).unwrap();
    let mut file = File::open(source).unwrap();
    let mut buf = vec![0u8; BLOCK];
    loop {
        let n = file.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        conn.write_all(&buf[..n]).unwrap();
    }
    conn.shutdown(std::net::Shutdown::Write).unwrap();
    let mut ack = [0u8; 1];
    conn.read_exact(&mut ack).unwrap();
    receiver.join().unwrap();
    start.elapsed()
}

/// Memory to a socket to nowhere.
fn tcp_mem_to_null(size: u64) -> Duration {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let start = Instant::now();
    let receiver = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; BLOCK];
        while conn.read(&mut buf).unwrap() > 0 {}
    });
    let mut conn = TcpStream::connect(addr).unwrap();
    let buf = vec![7u8; BLOCK];
    let mut left = size;
    while left > 0 {
        let n = left.min(BLOCK as u64) as usize;
        conn.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
    drop(conn);
    receiver.join().unwrap();
    start.elapsed()
}

/// Flushes every dirty page, so that no run pays for an earlier one's
/// writeback.
fn settle() {
    let _ = std::process::Command::new("sync").status();
}

fn mib_s(size: u64, d: Duration) -> f64 {
    size as f64 / (1 << 20) as f64 / d.as_secs_f64()
}

fn main() {
    let size_mib: u64 = std::env::var("BENCH_SIZE_MIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1024);
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5)
        .max(1);
    let chunk: usize = std::env::var("BENCH_CHUNK_KIB")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .map_or(mover::CHUNK_SIZE, |k| k << 10);
    let size = size_mib << 20;
    let base: PathBuf =
        std::env::var_os("BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let dir = tempfile::tempdir_in(base).unwrap();
    let source = dir.path().join("source");
    println!(
        "move_throughput: {size_mib} MiB in {}, {} KiB chunks",
        dir.path().display(),
        chunk >> 10
    );
    make_source(&source, size);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let spool = dir.path().join("spool");
    let stop = CancellationToken::new();
    let addr = runtime.block_on(async {
        let mut cfg = cluster_listener::NodeConfig::new("bench", vec![]);
        cfg.enabled = false;
        cfg.spool_dir = spool.clone();
        cfg.state_dir = dir.path().join("state");
        cfg.max_message_size = size + 1;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let token = stop.clone();
        tokio::spawn(async move {
            cluster_listener::serve(cfg, vec![BoundListener::from_tcp(listener)], token)
                .await
                .unwrap();
        });
        addr
    });

    let mut best_tcp = Duration::MAX;
    let mut best_move = Duration::MAX;
    let mut best_null = Duration::MAX;
    for round in 0..rounds {
        settle();
        let target = dir.path().join("tcp-copy");
        let tcp = tcp_file_to_file(&source, &target);
        std::fs::remove_file(&target).unwrap();
        best_tcp = best_tcp.min(tcp);

        settle();
        let id = format!("bench-{round}");
        let moved = runtime.block_on(async {
            let channel = mover::data_endpoint(&addr, None)
                .unwrap()
                .connect()
                .await
                .unwrap();
            let mut client = mover::mover_client(channel);
            let envelope = Envelope {
                id: id.clone(),
                ..Default::default()
            };
            let start = Instant::now();
            let reply = mover::send_file(&mut client, envelope, &source, chunk)
                .await
                .unwrap();
            assert_eq!(reply.size, size);
            start.elapsed()
        });
        std::fs::remove_file(spool.join("incoming").join(&id)).unwrap();
        best_move = best_move.min(moved);

        let null = tcp_mem_to_null(size);
        best_null = best_null.min(null);
        println!(
            "round {round}: tcp file->file {:.0} MiB/s, move {:.0} MiB/s, tcp mem->null {:.0} MiB/s",
            mib_s(size, tcp),
            mib_s(size, moved),
            mib_s(size, null)
        );
    }
    stop.cancel();
    let ratio = best_tcp.as_secs_f64() / best_move.as_secs_f64();
    println!(
        "best: tcp file->file {:.0} MiB/s ({:.2} s), move {:.0} MiB/s ({:.2} s), tcp mem->null {:.0} MiB/s",
        mib_s(size, best_tcp),
        best_tcp.as_secs_f64(),
        mib_s(size, best_move),
        best_move.as_secs_f64(),
        mib_s(size, best_null)
    );
    println!("move / tcp file->file = {:.0}%", ratio * 100.0);
}
