//! Counting what the driver sees (publishes handed over, peer messages
//! received, acknowledgements) and setting the live-state gauges before a
//! scrape. Counting is atomic adds on handles looked up at start.

use std::time::Duration;

use msgc_core::{ClientOp, PeerMsg, Position, ServerName, SessionId};

use super::Driver;
use crate::metrics::gauge;

impl Driver {
    /// Publishes (and their payload bytes) a session hands over; their
    /// hand-over time is kept for the publish → ack histogram.
    pub(super) fn count_commands(&mut self, now: Duration, session: SessionId, ops: &[ClientOp]) {
        let slot = self.sessions.get_mut(&session);
        let mut published_at = slot.map(|s| &mut s.published_at);
        let (mut n, mut bytes) = (0u64, 0u64);
        for op in ops {
            if let ClientOp::Publish { payload, .. } = op {
                n += 1;
                bytes += payload.len() as u64;
                if let Some(queue) = published_at.as_deref_mut() {
                    queue.push_back(now);
                }
            }
        }
        if n > 0 {
            self.metrics.publishes.inc_by(n);
            self.metrics.publish_bytes.inc_by(bytes);
        }
    }

    /// Messages received from a peer, weighed as `max_peer_bytes` weighs them.
    pub(super) fn count_peer_in(&self, peer: &ServerName, msgs: &[PeerMsg]) {
        if let Some(counters) = self.peer_counters.get(peer) {
            let (n, bytes) = msgs.iter().fold((0, 0), |(n, b), m| {
                (n + super::effects::count_of(m), b + m.weight())
            });
            counters.messages_in.inc_by(n as u64);
            counters.bytes_in.inc_by(bytes as u64);
        }
    }

    /// A publish of `session` was acknowledged.
    pub(super) fn count_ack(&mut self, session: SessionId, _position: Position) {
        self.metrics.acks.inc();
        if let Some(at) = self
            .sessions
            .get_mut(&session)
            .and_then(|s| s.published_at.pop_front())
        {
            self.metrics
                .ack_latency
                .observe(self.turn_now.saturating_sub(at));
        }
    }

    /// Sets the gauges that mirror live state (called before a scrape).
    pub(super) fn refresh_metrics(&self) {
        let m = &self.metrics;
        let status = self.core.status();
        m.sessions.set(gauge(status.sessions));
        m.groups.set(gauge(self.core.groups(None).len()));
        m.view_members.set(gauge(status.view.members.len()));
        m.view_epoch
            .set(i64::try_from(status.view.id.epoch).unwrap_or(i64::MAX));
        let queued: usize = self.sessions.values().map(|s| s.outbox.backlog()).sum();
        m.session_queue_events.set(gauge(queued));
        for (peer, queue) in self.links.queues() {
            let rtt = status
                .links
                .iter()
                .find(|(id, _)| id.name == *peer)
                .map_or(0, |(_, rtt)| *rtt);
            let (messages, bytes) = queue.unwrap_or((0, 0));
            m.set_link(peer.as_str(), queue.is_some(), rtt, messages, bytes);
        }
    }
}
