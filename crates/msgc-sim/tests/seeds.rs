//! A fixed slice of random seeds across every fault class (CI runs it;
//! well under 2 minutes in debug on 2 cores).

use msgc_sim::{FaultClass, SimConfig, run_seed};

#[test]
fn a_slice_of_seeds_keeps_every_promise() {
    let seeds: Vec<(u64, usize)> = (0..150)
        .map(|s| (s, 3))
        .chain((1000..1030).map(|s| (s, 5)))
        .chain((2000..2010).map(|s| (s, 7)))
        .collect();
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for part in seeds.chunks(seeds.len().div_ceil(2)) {
            let failures = &failures;
            scope.spawn(move || {
                for &(seed, servers) in part {
                    let mut cfg = SimConfig::new(seed, FaultClass::for_seed(seed), Some(servers));
                    cfg.monotonic_incarnations = true;
                    let out = run_seed(cfg);
                    if !out.passed() {
                        let line = format!("{}\n{}", out.replay_command(), out.report(3));
                        failures.lock().expect("lock").push(line);
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().expect("lock");
    assert!(
        failures.is_empty(),
        "{} of {} seeds failed:\n{}",
        failures.len(),
        seeds.len(),
        failures.join("\n")
    );
}
