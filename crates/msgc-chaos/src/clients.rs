//! The run's clients, on the public `msgc.v1.Bus/Session` API only: per
//! server one subscriber (joins [`GROUP`], records everything it delivers)
//! and one publisher (publishes to [`GROUP`] at a steady rate, records what it
//! sent and what was acknowledged). A session that ends is replaced by a new
//! one under a new name as soon as its server answers again; every session
//! keeps its own log.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use msgc_check::{ClientLog, MsgId, PublisherLog};
use msgc_client::{Events, Options, Session};
use proto::msgc::v1::event;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The one group of a run.
pub const GROUP: &str = "chaos";

/// How long opening a session may take (a stopped server accepts TCP but
/// never answers).
const CONNECT: Duration = Duration::from_secs(2);

/// Pause between attempts to open a session.
const RETRY: Duration = Duration::from_millis(100);

/// What one subscriber session delivered.
#[derive(Clone, Debug)]
pub struct SubLog {
    /// Index of its server.
    pub server: usize,
    /// Everything it delivered (`survived` is set when the run is judged).
    pub log: ClientLog,
    /// Why the session ended, `None` if it lasted to the end of the run.
    pub ended: Option<String>,
    /// Deliveries whose payload was not ours.
    pub foreign: usize,
}

/// What one publisher session sent.
#[derive(Clone, Debug)]
pub struct PubLog {
    /// Index of its server.
    pub server: usize,
    /// Sent and acknowledged counters.
    pub log: PublisherLog,
    /// Why the session ended, `None` if it lasted to the end of the run.
    pub ended: Option<String>,
}

async fn open(addr: &str, client_name: String) -> Result<(Session, Events), String> {
    let options = Options {
        client_name,
        ..Options::default()
    };
    match tokio::time::timeout(CONNECT, Session::connect(addr, options)).await {
        Ok(Ok(pair)) => Ok(pair),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("session open timed out".into()),
    }
}

/// Sleeps `d` unless `stop` fires first; true if it fired.
async fn pause(stop: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = stop.cancelled() => true,
        _ = tokio::time::sleep(d) => false,
    }
}

/// Reads frames until the session ends (`Some(why)`) or `stop` fires (`None`).
async fn read_until_end(
    events: &mut Events,
    stop: &CancellationToken,
    mut on_frame: impl FnMut(proto::msgc::v1::ServerFrame),
) -> Option<String> {
    loop {
        let frame = tokio::select! {
            biased;
            _ = stop.cancelled() => return None,
            f = events.next_frame() => f,
        };
        // The run is over once `stop` fires: what a session reads after
        // that comes from the harness ending the other sessions (their
        // leaves reach some subscribers and not others), not from the run.
        if stop.is_cancelled() {
            return None;
        }
        match frame {
            Ok(Some(frame)) => on_frame(frame),
            Ok(None) => return Some("session ended".into()),
            Err(e) => return Some(e.to_string()),
        }
    }
}

/// One server's subscriber slot.
pub struct Subscriber {
    sessions: Arc<Mutex<Vec<Arc<Mutex<SubLog>>>>>,
    current: Arc<Mutex<Option<Arc<Mutex<SubLog>>>>>,
    task: JoinHandle<()>,
}

impl Subscriber {
    /// Starts subscribing on server `server` at `addr` until `stop`.
    pub fn spawn(server: usize, addr: String, stop: CancellationToken) -> Self {
        let sessions = Arc::new(Mutex::new(Vec::new()));
        let current = Arc::new(Mutex::new(None));
        let (s, c) = (sessions.clone(), current.clone());
        let task = tokio::spawn(async move {
            let mut k = 0;
            while !stop.is_cancelled() {
                k += 1;
                let name = format!("sub{}-{k}", server + 1);
                if let Ok((session, mut events)) = open(&addr, name).await
                    && session.join(GROUP, "").await.is_ok()
                {
                    let log = Arc::new(Mutex::new(SubLog {
                        server,
                        log: ClientLog::new(session.private_name(), crate::schedule::name(server)),
                        ended: None,
                        foreign: 0,
                    }));
                    s.lock().unwrap().push(log.clone());
                    *c.lock().unwrap() = Some(log.clone());
                    let l = log.clone();
                    let why = read_until_end(&mut events, &stop, |frame| record(&l, frame)).await;
                    *c.lock().unwrap() = None;
                    log.lock().unwrap().ended = why;
                    drop(session);
                }
                if pause(&stop, RETRY).await {
                    break;
                }
            }
        });
        Self {
            sessions,
            current,
            task,
        }
    }

    /// Runs `f` on the live session's log, if a session is live.
    pub fn with_current<R>(&self, f: impl FnOnce(&SubLog) -> R) -> Option<R> {
        let current = self.current.lock().unwrap();
        current.as_ref().map(|l| f(&l.lock().unwrap()))
    }

    /// Records delivered by all of its sessions so far.
    pub fn records(&self) -> usize {
        let sessions = self.sessions.lock().unwrap();
        sessions
            .iter()
            .map(|l| l.lock().unwrap().log.records.len())
            .sum()
    }

    /// Waits for the task to end (after `stop`) and returns every session's log.
    pub async fn finish(self) -> Vec<SubLog> {
        let _ = self.task.await;
        let sessions = self.sessions.lock().unwrap();
        sessions.iter().map(|l| l.lock().unwrap().clone()).collect()
    }
}

fn record(log: &Mutex<SubLog>, frame: proto::msgc::v1::ServerFrame) {
    let mut log = log.lock().unwrap();
    for e in frame.events {
        match e.kind {
            Some(event::Kind::Delivery(d)) if !log.log.push_delivery(&d) => log.foreign += 1,
            Some(event::Kind::View(v)) => log.log.push_view(&v),
            _ => {}
        }
    }
}

type Live = Option<(Session, Arc<Mutex<PubLog>>)>;

/// One server's publisher slot.
pub struct Publisher {
    sessions: Arc<Mutex<Vec<Arc<Mutex<PubLog>>>>>,
    current: Arc<Mutex<Live>>,
    steady: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
}

/// Publishes the log's next message on `session`; false (and nothing
/// recorded as sent) if it could not be queued within `within`.
async fn publish_next(session: &Session, log: &Mutex<PubLog>, within: Duration) -> Option<MsgId> {
    let (payload, id) = {
        let mut l = log.lock().unwrap();
        let size = 64 + (l.log.sent.len() % 192);
        let payload = l.log.next_payload(size);
        let counter = *l.log.sent.last().expect("just pushed");
        (payload, MsgId::new(l.log.tag.clone(), counter))
    };
    let sent = tokio::time::timeout(within, session.publish(GROUP, payload)).await;
    if matches!(sent, Ok(Ok(()))) {
        Some(id)
    } else {
        // A cancelled or failed send queued nothing.
        log.lock().unwrap().log.sent.pop();
        None
    }
}

impl Publisher {
    /// Starts a publisher on server `server` at `addr`: `rate` messages per
    /// second while steady, at most `max` in all, until `stop`.
    pub fn spawn(
        server: usize,
        addr: String,
        rate: u64,
        max: u64,
        stop: CancellationToken,
    ) -> Self {
        let sessions = Arc::new(Mutex::new(Vec::new()));
        let current: Arc<Mutex<Live>> = Arc::new(Mutex::new(None));
        let steady = Arc::new(AtomicBool::new(false));
        let conn = tokio::spawn(connect_loop(
            server,
            addr,
            sessions.clone(),
            current.clone(),
            stop.clone(),
        ));
        let (cur, on) = (current.clone(), steady.clone());
        let steady_task = tokio::spawn(async move {
            let mut total = 0u64;
            let per_tick = rate.div_ceil(100).max(1);
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            while !stop.is_cancelled() && total < max {
                tick.tick().await;
                if !on.load(Ordering::Relaxed) {
                    continue;
                }
                let live = cur.lock().unwrap().clone();
                let Some((session, log)) = live else { continue };
                for _ in 0..per_tick {
                    if publish_next(&session, &log, Duration::from_millis(50))
                        .await
                        .is_none()
                    {
                        break;
                    }
                    total += 1;
                }
            }
        });
        Self {
            sessions,
            current,
            steady,
            tasks: vec![conn, steady_task],
        }
    }

    /// Turns steady publishing on or off.
    pub fn set_steady(&self, on: bool) {
        self.steady.store(on, Ordering::Relaxed);
    }

    /// Whether a session is open now.
    pub fn connected(&self) -> bool {
        self.current.lock().unwrap().is_some()
    }

    /// Messages sent by all of its sessions so far.
    pub fn sent(&self) -> usize {
        let sessions = self.sessions.lock().unwrap();
        sessions
            .iter()
            .map(|l| l.lock().unwrap().log.sent.len())
            .sum()
    }

    /// True if the live session has every message it sent acknowledged.
    pub fn all_acked(&self) -> bool {
        let current = self.current.lock().unwrap();
        current.as_ref().is_none_or(|(_, l)| {
            let l = l.lock().unwrap();
            l.log.acked == l.log.sent.len() as u64
        })
    }

    /// Publishes `n` more messages on the live session; their ids.
    pub async fn publish_final(&self, n: usize) -> Result<Vec<MsgId>, String> {
        let live = self.current.lock().unwrap().clone();
        let (session, log) = live.ok_or("no live publisher session")?;
        let mut ids = Vec::new();
        for _ in 0..n {
            let id = publish_next(&session, &log, Duration::from_secs(2))
                .await
                .ok_or("final publish could not be queued")?;
            ids.push(id);
        }
        Ok(ids)
    }

    /// Waits for its tasks to end (after `stop`) and returns every session's log.
    pub async fn finish(self) -> Vec<PubLog> {
        for t in self.tasks {
            let _ = t.await;
        }
        let sessions = self.sessions.lock().unwrap();
        sessions.iter().map(|l| l.lock().unwrap().clone()).collect()
    }
}

/// Keeps a publisher session open, reading its acknowledgements.
async fn connect_loop(
    server: usize,
    addr: String,
    sessions: Arc<Mutex<Vec<Arc<Mutex<PubLog>>>>>,
    current: Arc<Mutex<Live>>,
    stop: CancellationToken,
) {
    let mut k = 0;
    while !stop.is_cancelled() {
        k += 1;
        let name = format!("pub{}-{k}", server + 1);
        if let Ok((session, mut events)) = open(&addr, name).await {
            let log = Arc::new(Mutex::new(PubLog {
                server,
                log: PublisherLog::new(format!("p{}.{k}", server + 1), GROUP),
                ended: None,
            }));
            sessions.lock().unwrap().push(log.clone());
            *current.lock().unwrap() = Some((session, log.clone()));
            let l = log.clone();
            let why = read_until_end(&mut events, &stop, |frame| {
                if frame.publishes_acked > 0 {
                    l.lock().unwrap().log.ack(frame.publishes_acked);
                }
            })
            .await;
            *current.lock().unwrap() = None;
            log.lock().unwrap().ended = why;
        }
        if pause(&stop, RETRY).await {
            break;
        }
    }
}
