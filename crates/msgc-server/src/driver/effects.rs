//! Applying the core's effects: queueing peer messages and session events,
//! acknowledgements and permits, closing sessions and links. A queue that is
//! full is reported back to the core as a follow-up input.

use msgc_core::{CloseReason, Effect, Event, Input as CoreInput, LinkId, PeerMsg, ServerName};
use msgc_core::{Position, SessionId};

use super::{Driver, high_watermark, stuck_after};
use crate::error::BusError;
use crate::outbox::PushError;

/// How much a peer message counts toward `max_backlog`: ops for batches
/// (as the sessions' window counts them), one for anything else.
pub(super) fn count_of(msg: &PeerMsg) -> usize {
    match msg {
        PeerMsg::Submit { ops, .. } | PeerMsg::Sequenced { ops, .. } => ops.len().max(1),
        _ => 1,
    }
}

impl Driver {
    pub(super) fn apply(&mut self, effect: Effect) {
        match effect {
            Effect::Send { to, link, msg } => self.send(to, link, msg),
            Effect::Deliver { session, event } => self.deliver(session, event),
            Effect::Acked { session, position } => self.acked(session, position),
            Effect::ReleasePermits(n) => self.window.add_permits(n),
            Effect::CloseSession { session, reason } => self.close_session(session, &reason),
            Effect::CloseLink { peer, link, reason } => {
                if self.links.close(&peer, link, &reason) {
                    tracing::warn!(peer = %peer, link = link.0, reason, "peer link closed");
                }
            }
            Effect::Ready => {
                let view = self.core.view();
                tracing::info!(epoch = view.id.epoch, members = ?view.members, "bus ready");
                self.ready_tx.send_replace(true);
            }
            Effect::Installed { record } => {
                self.metrics.views_installed.inc();
                tracing::debug!(view = ?record.view.id, "installed (not yet started)");
            }
            Effect::ViewStarted { view } => {
                self.metrics.views_started.inc();
                tracing::info!(
                    epoch = view.id.epoch,
                    proposer = ?view.id.proposer,
                    members = ?view.members,
                    "server view started"
                );
            }
        }
    }

    /// Queues a message on a peer's current link; a full queue drops it.
    fn send(&mut self, to: ServerName, link: LinkId, msg: PeerMsg) {
        let Some(outbox) = self.links.outbox(&to, link) else {
            return;
        };
        let (count, bytes) = (count_of(&msg), msg.weight());
        let reason = match outbox.push_sized(msg, count, bytes) {
            Ok(_) => {
                if let Some(counters) = self.peer_counters.get(&to) {
                    counters.messages_out.inc_by(count as u64);
                    counters.bytes_out.inc_by(bytes as u64);
                }
                return;
            }
            Err(PushError::Full) => {
                self.metrics.link_cut("queue_full");
                format!(
                    "peer queue over max_backlog ({} messages) or max_peer_bytes ({} bytes)",
                    self.cfg.max_backlog, self.cfg.max_peer_bytes
                )
            }
            Err(PushError::Closed) => "link closed".to_owned(),
        };
        tracing::warn!(peer = %to, link = link.0, reason, "dropping peer link");
        self.links.close(&to, link, &reason);
        self.followups.push(CoreInput::LinkDown { peer: to, link });
    }

    /// Queues an event for a session, reporting congestion and overflow.
    fn deliver(&mut self, session: SessionId, event: Event) {
        let Some(slot) = self.sessions.get(&session) else {
            return;
        };
        if let Event::Delivery { payload, .. } = &event {
            self.metrics.deliveries.inc();
            self.metrics.delivered_bytes.inc_by(payload.len() as u64);
        }
        match slot.outbox.push(event, 1) {
            Ok(false) | Err(PushError::Closed) => {}
            Ok(true) => self.followups.push(CoreInput::SessionCongested(session)),
            Err(PushError::Full) => self.followups.push(CoreInput::SessionOverflow(session)),
        }
    }

    fn acked(&mut self, session: SessionId, position: Position) {
        self.count_ack(session, position);
        if let Some(slot) = self.sessions.get(&session) {
            slot.acks.record(position);
            self.to_wake.push(session);
        }
    }

    /// Ends a session the core cut (or the server stops): its stream ends
    /// with a status saying why.
    fn close_session(&mut self, session: SessionId, reason: &CloseReason) {
        let Some(slot) = self.sessions.remove(&session) else {
            return;
        };
        let max_backlog = self.cfg.max_backlog;
        self.metrics.session_cut(match reason {
            CloseReason::Overflow => "overflow",
            CloseReason::Stuck => "stuck",
            CloseReason::PublishesLost => "publishes_lost",
            CloseReason::Shutdown => "shutdown",
        });
        match reason {
            CloseReason::Overflow => slot.outbox.abort(BusError::Overflow { max_backlog }.into()),
            CloseReason::Stuck => slot.outbox.abort(
                BusError::Stuck {
                    queue: high_watermark(max_backlog),
                    after: stuck_after(&self.cfg),
                }
                .into(),
            ),
            CloseReason::PublishesLost => slot.outbox.close(Some(BusError::PublishesLost.into())),
            CloseReason::Shutdown => slot.outbox.close(Some(BusError::Stopping.into())),
        }
    }
}
