//! The link table: for each peer, its current link (id, outbox, the token
//! that ends its mesh task) or, while it has none, why the last one ended.
//! The core decides when links live or die; this table is what its link ids
//! point at, and what the admin API shows.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use msgc_core::{LinkId, PeerMsg, ServerId, ServerName};
use proto::msgc::v1::{LinkState, PeerLink};
use tokio_util::sync::CancellationToken;

use crate::config::ServerConfig;
use crate::outbox::Outbox;

/// A live link.
struct Link {
    id: LinkId,
    outbox: Arc<Outbox<PeerMsg>>,
    closed: CancellationToken,
    since: Instant,
}

impl Link {
    fn close(self, reason: Option<&str>) {
        self.outbox
            .close(reason.map(|r| tonic::Status::unavailable(r.to_owned())));
        self.closed.cancel();
    }
}

/// What is remembered of a peer whose link is down.
struct History {
    since: Instant,
    last_error: String,
}

/// Every peer's current link, or its history.
pub(super) struct LinkTable {
    /// Other peers: name -> dial address.
    peers: Vec<(ServerName, String)>,
    live: BTreeMap<ServerName, Link>,
    history: BTreeMap<ServerName, History>,
    started: Instant,
}

impl LinkTable {
    pub(super) fn new(cfg: &ServerConfig) -> Self {
        Self {
            peers: cfg
                .others()
                .map(|(name, addr)| (ServerName::new(name), addr.clone()))
                .collect(),
            live: BTreeMap::new(),
            history: BTreeMap::new(),
            started: Instant::now(),
        }
    }

    /// A handshaken link becomes the peer's current one (an older one ends).
    pub(super) fn up(
        &mut self,
        peer: &ServerId,
        id: LinkId,
        outbox: Arc<Outbox<PeerMsg>>,
        closed: CancellationToken,
    ) {
        tracing::info!(peer = ?peer, link = id.0, "peer link up");
        let link = Link {
            id,
            outbox,
            closed,
            since: Instant::now(),
        };
        if let Some(old) = self.live.insert(peer.name.clone(), link) {
            old.close(Some("replaced by a newer link"));
        }
        self.history.remove(&peer.name);
    }

    /// The mesh task of a link ended.
    pub(super) fn down(&mut self, peer: &ServerName, id: LinkId, reason: &str) {
        if self.remove(peer, id, reason, None) {
            tracing::warn!(peer = %peer, link = id.0, reason, "peer link down");
        }
    }

    /// Closes a peer's link if `id` is its current one; true if it was.
    pub(super) fn close(&mut self, peer: &ServerName, id: LinkId, reason: &str) -> bool {
        self.remove(peer, id, reason, Some(reason))
    }

    fn remove(
        &mut self,
        peer: &ServerName,
        id: LinkId,
        reason: &str,
        status: Option<&str>,
    ) -> bool {
        if self.live.get(peer).is_none_or(|l| l.id != id) {
            return false;
        }
        if let Some(link) = self.live.remove(peer) {
            link.close(status);
        }
        let history = History {
            since: Instant::now(),
            last_error: reason.to_owned(),
        };
        self.history.insert(peer.clone(), history);
        true
    }

    /// The outbox of a peer's link `id`, if that is its current link.
    pub(super) fn outbox(&self, peer: &ServerName, id: LinkId) -> Option<&Arc<Outbox<PeerMsg>>> {
        self.live
            .get(peer)
            .filter(|l| l.id == id)
            .map(|l| &l.outbox)
    }

    /// Each other peer, with its live link's queue (messages, bytes).
    pub(super) fn queues(&self) -> impl Iterator<Item = (&ServerName, Option<(usize, usize)>)> {
        self.peers.iter().map(|(name, _)| {
            let queue = self
                .live
                .get(name)
                .map(|l| (l.outbox.backlog(), l.outbox.bytes()));
            (name, queue)
        })
    }

    /// Ends every link (shutdown).
    pub(super) fn close_all(&mut self) {
        for (_, link) in std::mem::take(&mut self.live) {
            link.close(None);
        }
    }

    /// Each peer's link for the admin API; `rtts` are the core's (µs).
    pub(super) fn status(&self, rtts: &[(ServerId, u64)]) -> Vec<PeerLink> {
        let now = Instant::now();
        let age = |since: Instant| {
            u64::try_from(now.duration_since(since).as_millis()).unwrap_or(u64::MAX)
        };
        self.peers
            .iter()
            .map(|(name, address)| match self.live.get(name) {
                Some(link) => PeerLink {
                    name: name.as_str().to_owned(),
                    address: address.clone(),
                    state: LinkState::Connected as i32,
                    state_age_ms: age(link.since),
                    rtt_us: rtts
                        .iter()
                        .find(|(id, _)| id.name == *name)
                        .map_or(0, |(_, rtt)| *rtt),
                    last_error: String::new(),
                    backlog: link.outbox.backlog() as u64,
                },
                None => {
                    let history = self.history.get(name);
                    PeerLink {
                        name: name.as_str().to_owned(),
                        address: address.clone(),
                        state: LinkState::Waiting as i32,
                        state_age_ms: age(history.map_or(self.started, |h| h.since)),
                        rtt_us: 0,
                        last_error: history.map(|h| h.last_error.clone()).unwrap_or_default(),
                        backlog: 0,
                    }
                }
            })
            .collect()
    }
}
