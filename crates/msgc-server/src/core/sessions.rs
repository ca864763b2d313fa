//! Client sessions as the core sees them: registering a hello, turning
//! commands into ops, and cutting a session that leaves (or falls behind).

use std::collections::BTreeSet;
use std::sync::Arc;

use proto::msgc::v1::{
    Event, Hello, JoinOp, LeaveOp, Member, NodeRecord, PublishOp, ViewChange, Welcome, event,
    op::Kind as OpKind,
};

use super::{Acks, ClientOp, Core, OpenError, SessionId, SessionOpened};
use crate::names;
use crate::outbox::Outbox;

/// One client session on this server.
pub(super) struct Session {
    pub private_name: String,
    pub outbox: Arc<Outbox<Event>>,
    pub acks: Arc<Acks>,
    pub no_self_delivery: bool,
    pub node: Option<NodeRecord>,
    /// Groups joined (as submitted; the order makes them real).
    pub groups: BTreeSet<String>,
}

impl Core {
    pub(super) fn open_session(&mut self, hello: Hello) -> Result<SessionOpened, OpenError> {
        if self.stopping {
            return Err(OpenError::ShuttingDown);
        }
        let id = self.next_session;
        self.next_session += 1;
        let client = if hello.client_name.is_empty() {
            format!("c{id}")
        } else {
            hello.client_name
        };
        let private_name = names::private_name(&client, &self.cfg.name);
        if self.by_name.contains_key(&private_name) {
            return Err(OpenError::NameTaken(client));
        }
        // Past three quarters of max_backlog the session holds this server's
        // progress back (slowing every publisher down); at half it lets go.
        // With the submit window sized in `ServerConfig::submit_window`, what
        // is in flight then still fits under max_backlog.
        let core = self.weak_tx.clone();
        let on_low: crate::outbox::DrainHook = Box::new(move || {
            if let Some(core) = core.upgrade() {
                let _ = core.send(super::Input::SessionDrained(id));
            }
        });
        let max = self.cfg.max_backlog;
        let outbox = Outbox::with_watermarks(max, max / 4 * 3, max / 2, on_low);
        let welcome = Welcome {
            private_name: private_name.clone(),
            server: self.cfg.name.clone(),
            view_id: self.view.id,
            max_payload: self.cfg.max_payload as u64,
        };
        let _ = outbox.push(
            Event {
                kind: Some(event::Kind::Welcome(welcome)),
            },
            1,
        );
        let acks = Arc::new(Acks::default());
        self.sessions.insert(
            id,
            Session {
                private_name: private_name.clone(),
                outbox: outbox.clone(),
                acks: acks.clone(),
                no_self_delivery: hello.no_self_delivery,
                node: hello.node,
                groups: BTreeSet::new(),
            },
        );
        self.by_name.insert(private_name.clone(), id);
        tracing::debug!(session = id, name = %private_name, "session opened");
        Ok(SessionOpened {
            id,
            private_name,
            outbox,
            acks,
            view_id: self.view.id,
        })
    }

    pub(super) fn on_commands(&mut self, id: SessionId, ops: Vec<ClientOp>) {
        self.held_permits += ops.len();
        let Some(session) = self.sessions.get_mut(&id) else {
            self.release_permits(ops.len());
            return;
        };
        let mut kinds = Vec::with_capacity(ops.len());
        for op in ops {
            kinds.push(match op {
                ClientOp::Join {
                    group,
                    capabilities,
                } => {
                    session.groups.insert(group.clone());
                    let member = Member {
                        private_name: session.private_name.clone(),
                        server: self.cfg.name.clone(),
                        capabilities,
                        node: session.node.clone(),
                    };
                    OpKind::Join(JoinOp {
                        group,
                        member: Some(member),
                    })
                }
                ClientOp::Leave { group } => {
                    session.groups.remove(&group);
                    OpKind::Leave(LeaveOp {
                        group,
                        private_name: session.private_name.clone(),
                        reason: ViewChange::Leave as i32,
                    })
                }
                ClientOp::Publish { group, payload } => OpKind::Publish(PublishOp {
                    group,
                    sender: session.private_name.clone(),
                    payload,
                }),
            });
        }
        for kind in kinds {
            self.submit(kind, true);
        }
    }

    /// Ends a session: its stream ends (with `status` if given) and it leaves
    /// every group it joined.
    pub(super) fn close_session(
        &mut self,
        id: SessionId,
        reason: ViewChange,
        status: Option<tonic::Status>,
    ) {
        let Some(session) = self.sessions.remove(&id) else {
            return;
        };
        if self.congested.remove(&id).is_some() {
            self.release_progress();
        }
        self.by_name.remove(&session.private_name);
        self.local_members.retain(|_, locals| {
            locals.retain(|s| *s != id);
            !locals.is_empty()
        });
        session.outbox.close(status);
        tracing::debug!(session = id, name = %session.private_name, ?reason, "session closed");
        for group in session.groups {
            let leave = LeaveOp {
                group,
                private_name: session.private_name.clone(),
                reason: reason as i32,
            };
            self.submit(OpKind::Leave(leave), false);
        }
    }

    /// Cuts a session that cannot keep up (`why` says how); its groups move on
    /// without it.
    pub(super) fn cut_slow_session(&mut self, id: SessionId, why: &str) {
        let status = tonic::Status::resource_exhausted(format!(
            "session cut: {why}; the client reads too slowly"
        ));
        if let Some(session) = self.sessions.get(&id) {
            tracing::warn!(session = id, name = %session.private_name, why, "cutting slow session");
            session.outbox.abort(status.clone());
        }
        self.close_session(id, ViewChange::Disconnect, Some(status));
    }

    /// Cuts sessions that have stayed congested for three keepalive intervals
    /// (the bound a dead peer gets): slowing everyone down for a reader that
    /// has stopped would never end.
    pub(super) fn check_congestion(&mut self, now: std::time::Instant) {
        let limit = self.cfg.keepalive_interval * 3;
        let stuck: Vec<SessionId> = self
            .congested
            .iter()
            .filter(|(_, since)| now.duration_since(**since) > limit)
            .map(|(id, _)| *id)
            .collect();
        for id in stuck {
            let why = format!(
                "its queue stayed above {} events for {limit:?}",
                self.cfg.max_backlog / 4 * 3
            );
            self.cut_slow_session(id, &why);
        }
    }

    /// A congested session's queue drained: it no longer holds progress back.
    pub(super) fn on_session_drained(&mut self, id: SessionId) {
        if self.congested.remove(&id).is_some() {
            self.release_progress();
        }
    }

    /// Tells session streams that their publish acknowledgements moved.
    pub(super) fn wake_sessions(&self, mut ids: Vec<SessionId>) {
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            if let Some(session) = self.sessions.get(&id) {
                session.outbox.wake();
            }
        }
    }

    /// Recomputes which local sessions belong to which group from the table.
    pub(super) fn rebuild_local_members(&mut self) {
        self.local_members.clear();
        for (group, state) in self.groups.iter() {
            for member in state.members.iter().filter(|m| m.server == self.cfg.name) {
                if let Some(&id) = self.by_name.get(&member.private_name) {
                    self.local_members
                        .entry(group.clone())
                        .or_default()
                        .push(id);
                }
            }
        }
    }
}
