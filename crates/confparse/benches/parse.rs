//! Parse throughput on a large generated configuration (~24 MB).
//!
//! Run: `cargo bench -p confparse --bench parse`. Criterion reports the throughput in
//! bytes per second (see BENCH.md for the figures on the project machine).

use std::fmt::Write as _;
use std::hint::black_box;

use confparse::Loader;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// A Momentum-shaped configuration of at least `target` bytes: many scopes with
/// options, dictionaries, lists, named sub-scopes, quoted strings and both comment kinds.
fn generate(target: usize) -> String {
    let mut s = String::with_capacity(target + 4096);
    s.push_str("# generated benchmark configuration\n");
    let mut i = 0usize;
    while s.len() < target {
        let _ = write!(
            s,
            "msgc_server_{i} {{\n\
             \x20 peers = [\n\
             \x20   node1 = \"10.10.{a}.11\"\n\
             \x20   node2.example.com = \"10.10.{a}.12\"\n\
             \x20   manager = 10.10.{a}.10\n\
             \x20 ]\n\
             \x20 port = 4809   # the msgc port\n\
             \x20 keepalive_interval = 5\n\
             \x20 /* block comment\n\
             \x20    over two lines */\n\
             \x20 server = ( \"127.0.0.1:4809\" host-{i}.example.com:4809 'literal text' )\n\
             \x20 log_path = /var/log/ecelerity/mainlog.{i}\n\
             \x20 Listen \"*:{p}\" {{ enable = true listen_backlog = 500 file_mode = 0660 }}\n\
             \x20 Topology 10.{a}.0.0/16 {{ cidrmask = \"32\" interface = eth1 }}\n\
             }}\n",
            a = i % 250,
            p = 1024 + i % 60000,
        );
        i += 1;
    }
    s
}

fn bench_parse(c: &mut Criterion) {
    let text = generate(24 * 1024 * 1024);
    let loader = Loader::with_search_path(Vec::new());
    // Sanity: the generated text is valid.
    if let Err(e) = loader.load_str("bench.conf", &text, None) {
        panic!("generated config does not parse:\n{e}");
    }
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.sample_size(10);
    g.bench_function("load_str_24MB", |b| {
        b.iter(|| {
            let cfg = loader.load_str("bench.conf", black_box(&text), None);
            black_box(cfg.is_ok())
        })
    });
    // The same, without the time spent freeing the tree (dropped outside the timing).
    g.bench_function("load_str_24MB_excluding_drop", |b| {
        b.iter_with_large_drop(|| loader.load_str("bench.conf", black_box(&text), None))
    });
    g.finish();
}

criterion_group!(benches, bench_parse);
criterion_main!(benches);
