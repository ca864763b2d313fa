//! The phases both modes share: every server's subscriber and publisher,
//! waiting for the group to settle, and the final phase after the last
//! fault (messages from every server must reach every subscriber).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use msgc_check::{MsgId, Record};
use tokio_util::sync::CancellationToken;

use crate::clients::{GROUP, PubLog, Publisher, SubLog, Subscriber};
use crate::judge::Evidence;

/// One subscriber and one publisher per server.
pub struct Clients {
    subs: Vec<Subscriber>,
    pubs: Vec<Publisher>,
}

/// The members of the last view of [`GROUP`] in `log`.
fn last_members(log: &SubLog) -> Option<&[String]> {
    log.log.records.iter().rev().find_map(|r| match r {
        Record::View { group, members, .. } if group == GROUP => Some(members.as_slice()),
        _ => None,
    })
}

impl Clients {
    /// Starts them (publishers idle until [`Clients::steady`]).
    pub fn start(addrs: &[String], rate: u64, max: u64, stop: &CancellationToken) -> Self {
        let subs = addrs
            .iter()
            .enumerate()
            .map(|(i, a)| Subscriber::spawn(i, a.clone(), stop.clone()))
            .collect();
        let pubs = addrs
            .iter()
            .enumerate()
            .map(|(i, a)| Publisher::spawn(i, a.clone(), rate, max, stop.clone()))
            .collect();
        Self { subs, pubs }
    }

    /// Turns steady publishing on or off everywhere.
    pub fn steady(&self, on: bool) {
        for p in &self.pubs {
            p.set_steady(on);
        }
    }

    /// The live subscribers' private names (`None` where none is live).
    pub fn current_subs(&self) -> Vec<Option<String>> {
        self.subs
            .iter()
            .map(|s| s.with_current(|l| l.log.client.clone()))
            .collect()
    }

    /// Why the clients are not settled: not every server has a live
    /// subscriber and publisher, or some live subscriber's last group view
    /// does not list every live subscriber. `None` once settled.
    pub fn unsettled(&self) -> Option<String> {
        let names = self.current_subs();
        if let Some(i) = names.iter().position(Option::is_none) {
            return Some(format!("no live subscriber on s{}", i + 1));
        }
        if let Some(i) = self.pubs.iter().position(|p| !p.connected()) {
            return Some(format!("no live publisher on s{}", i + 1));
        }
        let names: Vec<String> = names.into_iter().flatten().collect();
        for (i, s) in self.subs.iter().enumerate() {
            let full = s
                .with_current(|l| {
                    last_members(l).is_some_and(|m| names.iter().all(|n| m.contains(n)))
                })
                .unwrap_or(false);
            if !full {
                return Some(format!(
                    "the subscriber on s{} does not see all of {names:?} in its last view",
                    i + 1
                ));
            }
        }
        None
    }

    /// Waits until [`Clients::unsettled`] is `None`, at most `within`.
    pub async fn wait_settled(&self, within: Duration) -> Result<(), String> {
        let start = Instant::now();
        loop {
            match self.unsettled() {
                None => return Ok(()),
                Some(why) if start.elapsed() >= within => {
                    return Err(format!("not settled after {}s: {why}", within.as_secs()));
                }
                Some(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Records delivered so far, all sessions together.
    fn records(&self) -> usize {
        self.subs.iter().map(Subscriber::records).sum()
    }

    /// Waits until nothing new is delivered for a second and every live
    /// publisher has its messages acknowledged, at most `within`.
    pub async fn wait_quiet(&self, within: Duration) {
        let start = Instant::now();
        let mut last = self.records();
        let mut still = Instant::now();
        while start.elapsed() < within {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = self.records();
            let acked = self.pubs.iter().all(Publisher::all_acked);
            if now != last || !acked {
                last = now;
                still = Instant::now();
            } else if still.elapsed() >= Duration::from_secs(1) {
                return;
            }
        }
    }

    /// True if every live subscriber in `names` has delivered all of `ids`.
    fn delivered_all(&self, ids: &HashSet<MsgId>) -> bool {
        self.subs.iter().all(|s| {
            s.with_current(|l| {
                let got: HashSet<&MsgId> = l
                    .log
                    .records
                    .iter()
                    .filter_map(|r| match r {
                        Record::Delivery { id, .. } => Some(id),
                        Record::View { .. } => None,
                    })
                    .collect();
                ids.iter().all(|id| got.contains(id))
            })
            .unwrap_or(true)
        })
    }

    /// Every session's log (call after `stop`).
    pub async fn finish(self) -> (Vec<SubLog>, Vec<PubLog>) {
        let mut subs = Vec::new();
        for s in self.subs {
            subs.extend(s.finish().await);
        }
        let mut pubs = Vec::new();
        for p in self.pubs {
            pubs.extend(p.finish().await);
        }
        (subs, pubs)
    }
}

/// After the last fault: wait for the clients to settle, stop steady
/// traffic, publish `per_server` messages from every server's publisher and
/// wait (bounded) until every live subscriber has them and the bus is quiet.
pub async fn final_phase(clients: &Clients, per_server: usize) -> Evidence {
    let mut ev = Evidence::default();
    if let Err(why) = clients.wait_settled(Duration::from_secs(15)).await {
        ev.final_problems.push(why);
    }
    clients.steady(false);
    tokio::time::sleep(Duration::from_millis(200)).await;
    for (i, p) in clients.pubs.iter().enumerate() {
        match p.publish_final(per_server).await {
            Ok(ids) => ev.final_ids.extend(ids),
            Err(why) => ev.final_problems.push(format!("s{}: {why}", i + 1)),
        }
    }
    ev.final_subs = clients.current_subs().into_iter().flatten().collect();
    let ids: HashSet<MsgId> = ev.final_ids.iter().cloned().collect();
    let start = Instant::now();
    while !clients.delivered_all(&ids) && start.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    clients.wait_quiet(Duration::from_secs(10)).await;
    ev
}
