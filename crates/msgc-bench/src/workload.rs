//! What a run is (workload spec), the payload layout, and the per-subscriber
//! tally every bus adapter feeds: counts, latencies, delivery-order hash and a
//! per-publisher FIFO check.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// One process, one clock: every timestamp is nanoseconds since this instant.
static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds since the process-wide epoch.
pub fn now_ns() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Bytes of header at the front of every payload.
pub const HEADER: usize = 24;
/// Header kind: a readiness probe (NATS interest propagation), not counted.
pub const KIND_PROBE: u8 = 0;
/// Header kind: a measured message.
pub const KIND_DATA: u8 = 1;

/// Writes the header: kind, publisher index, per-publisher counter, send time.
pub fn write_header(buf: &mut [u8], kind: u8, publisher: u8, counter: u64, sent_ns: u64) {
    buf[0] = kind;
    buf[1] = publisher;
    buf[8..16].copy_from_slice(&counter.to_le_bytes());
    buf[16..24].copy_from_slice(&sent_ns.to_le_bytes());
}

/// The header of a received payload, if it has one.
pub fn read_header(buf: &[u8]) -> Option<(u8, u8, u64, u64)> {
    if buf.len() < HEADER {
        return None;
    }
    let counter = u64::from_le_bytes(buf[8..16].try_into().ok()?);
    let sent = u64::from_le_bytes(buf[16..24].try_into().ok()?);
    Some((buf[0], buf[1], counter, sent))
}

/// The workloads of the issue, in table order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 1 publisher, 3 subscribers (one per server), as fast as possible.
    FanOut,
    /// 3 publishers (one per server), 3 subscribers, as fast as possible.
    Contention,
    /// 1 publisher, 3 subscribers, paced; publish-to-deliver latency.
    Latency,
}

/// One workload: who publishes where, how much, how fast.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Label used in the table.
    pub name: String,
    /// What is measured.
    pub kind: Kind,
    /// Server index of each publisher.
    pub publishers: Vec<usize>,
    /// Server index of each subscriber.
    pub subscribers: Vec<usize>,
    /// Messages each publisher sends.
    pub msgs_per_publisher: u64,
    /// Payload bytes (header included).
    pub size: usize,
    /// Messages per second per publisher; 0 = unpaced.
    pub rate: u64,
    /// Bound on the whole run (publish + deliver everything).
    pub timeout: Duration,
}

impl Spec {
    /// Data messages each subscriber must receive.
    pub fn expected_per_subscriber(&self) -> u64 {
        self.msgs_per_publisher * self.publishers.len() as u64
    }
}

/// What one subscriber saw.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Data messages expected.
    pub expected: u64,
    /// Data messages received.
    pub got: u64,
    /// Time (ns since epoch) of the last data message.
    pub last_ns: u64,
    /// Publish-to-deliver latency of each data message, ns.
    pub latencies_ns: Vec<u64>,
    /// Rolling hash over (publisher, counter) in delivery order.
    pub order_hash: u64,
    /// Next counter expected from each publisher.
    next: Vec<u64>,
    /// Messages that broke per-publisher FIFO order (or were duplicated).
    pub fifo_violations: u64,
    /// Bit `p` set once a probe from publisher `p` arrived.
    pub probes_seen: u64,
    /// Why the subscriber stopped before receiving everything.
    pub stop_reason: Option<String>,
}

impl Tally {
    /// A tally for `publishers` publishers and `expected` data messages.
    pub fn new(publishers: usize, expected: u64, keep_latencies: bool) -> Self {
        Tally {
            expected,
            latencies_ns: if keep_latencies {
                Vec::with_capacity(expected as usize)
            } else {
                Vec::new()
            },
            order_hash: 0xcbf2_9ce4_8422_2325,
            next: vec![0; publishers],
            ..Default::default()
        }
    }

    /// Whether every expected message arrived.
    pub fn done(&self) -> bool {
        self.got >= self.expected
    }

    /// Accounts one received payload at local time `now`.
    pub fn on_payload(&mut self, payload: &[u8], now: u64, keep_latency: bool) {
        let Some((kind, publisher, counter, sent)) = read_header(payload) else {
            self.fifo_violations += 1;
            return;
        };
        if kind == KIND_PROBE {
            self.probes_seen |= 1 << (publisher & 63);
            return;
        }
        self.got += 1;
        self.last_ns = now;
        if keep_latency {
            self.latencies_ns.push(now.saturating_sub(sent));
        }
        let v = (u64::from(publisher) << 56) ^ counter;
        self.order_hash = (self.order_hash ^ v).wrapping_mul(0x0000_0100_0000_01b3);
        match self.next.get_mut(publisher as usize) {
            Some(next) if *next == counter => *next += 1,
            Some(next) => {
                self.fifo_violations += 1;
                *next = counter + 1;
            }
            None => self.fifo_violations += 1,
        }
    }
}

/// The result of one run of one workload against one bus.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Data messages each subscriber received.
    pub delivered: Vec<u64>,
    /// Data messages each subscriber should have received.
    pub expected: u64,
    /// First publish to the last delivery at any subscriber.
    pub elapsed: Duration,
    /// All subscribers' latencies, sorted, ns.
    pub latencies_ns: Vec<u64>,
    /// Whether every subscriber saw the same order (same rolling hash).
    pub orders_agree: bool,
    /// Per-publisher FIFO breaks summed over subscribers.
    pub fifo_violations: u64,
    /// CPU seconds used during the run by each server process.
    pub server_cpu: Vec<f64>,
    /// CPU seconds used during the run by this driver (all clients).
    pub client_cpu: f64,
    /// Slow-consumer or similar drop notices from the client library.
    pub drop_notices: u64,
    /// Why subscribers stopped early, one entry per subscriber that did.
    pub stop_reasons: Vec<String>,
}

impl Outcome {
    /// Builds an outcome from the subscribers' tallies.
    pub fn from_tallies(tallies: Vec<Tally>, t0_ns: u64) -> Outcome {
        let expected = tallies.first().map_or(0, |t| t.expected);
        let last = tallies.iter().map(|t| t.last_ns).max().unwrap_or(t0_ns);
        let orders_agree = tallies
            .windows(2)
            .all(|w| w[0].order_hash == w[1].order_hash);
        let mut latencies_ns: Vec<u64> = tallies
            .iter()
            .flat_map(|t| t.latencies_ns.iter().copied())
            .collect();
        latencies_ns.sort_unstable();
        Outcome {
            delivered: tallies.iter().map(|t| t.got).collect(),
            expected,
            elapsed: Duration::from_nanos(last.saturating_sub(t0_ns)),
            latencies_ns,
            orders_agree,
            fifo_violations: tallies.iter().map(|t| t.fifo_violations).sum(),
            stop_reasons: tallies
                .iter()
                .enumerate()
                .filter_map(|(i, t)| {
                    t.stop_reason
                        .as_ref()
                        .map(|r| format!("subscriber {i}: {r}"))
                })
                .collect(),
            ..Default::default()
        }
    }

    /// Whether every subscriber got every message.
    pub fn complete(&self) -> bool {
        self.delivered.iter().all(|&d| d == self.expected)
    }

    /// Messages delivered per second at each subscriber (the fan-out rate).
    pub fn per_subscriber_rate(&self) -> f64 {
        self.expected as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Latency percentile in microseconds.
    pub fn percentile_us(&self, p: f64) -> f64 {
        percentile(&self.latencies_ns, p) as f64 / 1000.0
    }
}

/// Nearest-rank percentile of a sorted slice.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Sleeps until message `i` of a paced stream is due (no-op when unpaced).
pub async fn pace(start: Instant, i: u64, rate: u64) {
    if rate == 0 {
        return;
    }
    let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
    if let Some(wait) = due.checked_duration_since(Instant::now()) {
        // Timers are coarse: only sleep when at least 200 us behind schedule,
        // otherwise publish now (messages that are due go out together).
        if wait > Duration::from_micros(200) {
            tokio::time::sleep(wait).await;
        }
    }
}

/// Waits for a run's publisher tasks (until `deadline`) and then its
/// subscriber tasks (one second more), returning the subscribers' tallies.
/// Shared by both buses so they are timed and failed the same way.
pub async fn collect(
    senders: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
    subs: Vec<tokio::task::JoinHandle<Tally>>,
    deadline: tokio::time::Instant,
    limit: Duration,
) -> anyhow::Result<Vec<Tally>> {
    use tokio::time::timeout_at;
    for s in senders {
        match timeout_at(deadline, s).await {
            Ok(r) => r??,
            Err(_) => anyhow::bail!("publishers did not finish within {limit:?}"),
        }
    }
    let mut tallies = Vec::new();
    for s in subs {
        tallies.push(
            timeout_at(deadline + Duration::from_secs(1), s)
                .await
                .map_err(|_| anyhow::anyhow!("subscriber task stuck"))??,
        );
    }
    Ok(tallies)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_tally() {
        let mut buf = vec![0u8; 128];
        let mut t = Tally::new(2, 3, true);
        for (p, c) in [(0u8, 0u64), (1, 0), (0, 1)] {
            write_header(&mut buf, KIND_DATA, p, c, 5);
            t.on_payload(&buf, 10, true);
        }
        write_header(&mut buf, KIND_PROBE, 1, 0, 0);
        t.on_payload(&buf, 11, true);
        assert!(t.done());
        assert_eq!(t.fifo_violations, 0);
        assert_eq!(t.probes_seen, 0b10);
        assert_eq!(t.latencies_ns, vec![5, 5, 5]);
        let mut u = Tally::new(2, 3, false);
        for (p, c) in [(1u8, 0u64), (0, 0), (0, 1)] {
            write_header(&mut buf, KIND_DATA, p, c, 5);
            u.on_payload(&buf, 10, false);
        }
        assert_ne!(t.order_hash, u.order_hash);
        write_header(&mut buf, KIND_DATA, 0, 5, 5);
        u.on_payload(&buf, 10, false);
        assert_eq!(u.fifo_violations, 1);
    }

    #[test]
    fn percentiles() {
        let v: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile(&v, 0.5), 500);
        assert_eq!(percentile(&v, 0.99), 990);
        assert_eq!(percentile(&v, 0.999), 999);
        assert_eq!(percentile(&[], 0.5), 0);
    }
}
