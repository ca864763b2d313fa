//! Peer links as the core sees them: which peers are connected now, what each
//! link last did, keepalives, and cutting a link that is silent or too far
//! behind. Dialling and the gRPC streams themselves live in `crate::mesh`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use proto::msgc::v1::{Keepalive, LinkState, PeerLink, PeerMessage, peer_message::Kind};

use super::{Core, Phase};
use crate::outbox::{Outbox, PushError};

/// Identifies one link (one gRPC stream); a reconnect makes a new one.
pub type LinkId = u64;

/// A connected, handshaken peer link.
pub(super) struct Link {
    pub id: LinkId,
    pub incarnation: u64,
    pub outbox: Arc<Outbox<PeerMessage>>,
    pub since: Instant,
    pub last_recv: Instant,
    pub last_sent: Instant,
    pub rtt_us: u64,
}

/// What is remembered of a peer whose link is down.
pub(super) struct LinkHistory {
    pub since: Instant,
    pub last_error: String,
}

impl Core {
    /// Servers this one can talk to now, itself included.
    pub(super) fn reachable(&self) -> BTreeSet<String> {
        self.links
            .keys()
            .cloned()
            .chain([self.cfg.name.clone()])
            .collect()
    }

    pub(super) fn on_link_up(
        &mut self,
        peer: String,
        incarnation: u64,
        id: LinkId,
        outbox: Arc<Outbox<PeerMessage>>,
    ) {
        let now = Instant::now();
        if let Some(old) = self.links.remove(&peer) {
            old.outbox
                .close(Some(tonic::Status::aborted("replaced by a newer link")));
        }
        tracing::info!(peer = %peer, link = id, "peer link up");
        self.history.remove(&peer);
        self.links.insert(
            peer,
            Link {
                id,
                incarnation,
                outbox,
                since: now,
                last_recv: now,
                last_sent: now,
                rtt_us: 0,
            },
        );
        self.maybe_propose();
    }

    pub(super) fn on_link_down(&mut self, peer: &str, id: LinkId, reason: &str) {
        if self.links.get(peer).is_none_or(|l| l.id != id) {
            return;
        }
        self.drop_link(peer, reason);
    }

    /// Forgets a link (closing its queue) and reacts to the lost peer.
    pub(super) fn drop_link(&mut self, peer: &str, reason: &str) {
        let Some(link) = self.links.remove(peer) else {
            return;
        };
        tracing::warn!(peer, reason, "peer link down");
        link.outbox
            .close(Some(tonic::Status::unavailable(reason.to_owned())));
        self.history.insert(
            peer.to_owned(),
            LinkHistory {
                since: Instant::now(),
                last_error: reason.to_owned(),
            },
        );
        // An answer to a proposal whose proposer is gone will never be installed.
        if let Phase::Flushing { proposer, .. } = &self.phase
            && proposer == peer
        {
            self.phase = Phase::Flushing {
                view_id: self.max_view_id,
                proposer: String::new(),
            };
        }
        self.maybe_propose();
    }

    /// Records traffic on a link; false if the link is not the current one.
    pub(super) fn touch_link(&mut self, peer: &str, id: LinkId) -> bool {
        match self.links.get_mut(peer) {
            Some(link) if link.id == id => {
                link.last_recv = Instant::now();
                true
            }
            _ => false,
        }
    }

    /// Queues a message for a peer; a peer too far behind is cut.
    pub(super) fn send_to(&mut self, peer: &str, message: PeerMessage, weight: usize) {
        let Some(link) = self.links.get_mut(peer) else {
            return;
        };
        link.last_sent = Instant::now();
        match link.outbox.push(message, weight) {
            Ok(_) => {}
            Err(PushError::Full) => {
                let reason = format!("backlog over max_backlog ({})", self.cfg.max_backlog);
                self.drop_link(peer, &reason);
            }
            Err(PushError::Closed) => self.drop_link(peer, "link closed"),
        }
    }

    fn micros(&self, at: Instant) -> u64 {
        u64::try_from(at.duration_since(self.started).as_micros()).unwrap_or(u64::MAX)
    }

    /// Sends keepalives on quiet links and cuts links silent for three intervals.
    pub(super) fn check_links(&mut self, now: Instant) {
        let interval = self.cfg.keepalive_interval;
        let mut silent = Vec::new();
        let mut quiet = Vec::new();
        for (peer, link) in &self.links {
            if now.duration_since(link.last_recv) > interval * 3 {
                silent.push(peer.clone());
            } else if now.duration_since(link.last_sent) >= interval {
                quiet.push(peer.clone());
            }
        }
        for peer in silent {
            self.drop_link(&peer, "no traffic for 3 keepalive intervals");
        }
        let sent_us = self.micros(now);
        for peer in quiet {
            let ka = PeerMessage {
                kind: Some(Kind::Keepalive(Keepalive {
                    sent_us,
                    echo_us: 0,
                })),
            };
            self.send_to(&peer, ka, 1);
        }
    }

    pub(super) fn on_keepalive(&mut self, peer: &str, ka: Keepalive) {
        if ka.echo_us == 0 {
            let reply = Keepalive {
                sent_us: 0,
                echo_us: ka.sent_us.max(1),
            };
            self.send_to(
                peer,
                PeerMessage {
                    kind: Some(Kind::Keepalive(reply)),
                },
                1,
            );
        } else {
            let now = self.micros(Instant::now());
            if let Some(link) = self.links.get_mut(peer) {
                link.rtt_us = now.saturating_sub(ka.echo_us);
            }
        }
    }

    pub(super) fn link_status(&self) -> Vec<PeerLink> {
        let now = Instant::now();
        self.cfg
            .others()
            .map(|(name, address)| {
                let age = |since: Instant| {
                    u64::try_from(now.duration_since(since).as_millis()).unwrap_or(u64::MAX)
                };
                match (self.links.get(name), self.history.get(name)) {
                    (Some(link), _) => PeerLink {
                        name: name.clone(),
                        address: address.clone(),
                        state: LinkState::Connected as i32,
                        state_age_ms: age(link.since),
                        rtt_us: link.rtt_us,
                        last_error: String::new(),
                        backlog: link.outbox.backlog() as u64,
                    },
                    (None, history) => PeerLink {
                        name: name.clone(),
                        address: address.clone(),
                        state: LinkState::Waiting as i32,
                        state_age_ms: age(history.map_or(self.started, |h| h.since)),
                        rtt_us: 0,
                        last_error: history.map(|h| h.last_error.clone()).unwrap_or_default(),
                        backlog: 0,
                    },
                }
            })
            .collect()
    }
}
