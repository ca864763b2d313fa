//! Client sessions as the core sees them: hello, commands into ops, closing,
//! and slow readers (which hold this server's progress back, so the whole
//! bus slows down for them, until they are cut as stuck).

use std::collections::BTreeSet;

use crate::ids::SessionId;
use crate::op::{ChangeKind, ClientOp, Member, NodeRecord, OpKind, local_key};
use crate::{CloseReason, Core, Effect, Hello, OpenError, Opened, Time};

/// One client session on this server.
#[derive(Debug)]
pub(crate) struct Session {
    pub private_name: String,
    pub no_self_delivery: bool,
    pub node: Option<NodeRecord>,
    /// Groups joined (as submitted; the order makes them real).
    pub groups: BTreeSet<String>,
}

/// Momentum's private name of a client: `#<client>#<server>`.
pub fn private_name(client: &str, server: &str) -> String {
    format!("#{client}#{server}")
}

impl Core {
    /// Registers a session.
    pub fn open_session(&mut self, now: Time, hello: Hello) -> Result<Opened, OpenError> {
        self.now = self.now.max(now);
        if self.stopping {
            return Err(OpenError::ShuttingDown);
        }
        let id = SessionId(self.next_session);
        let client = hello
            .client_name
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| format!("c{}", id.0));
        let private = private_name(&client, self.me.name.as_str());
        if self.by_name.contains_key(&private) {
            return Err(OpenError::NameTaken(client));
        }
        self.next_session += 1;
        self.sessions.insert(
            id,
            Session {
                private_name: private.clone(),
                no_self_delivery: hello.no_self_delivery,
                node: hello.node,
                groups: BTreeSet::new(),
            },
        );
        self.by_name.insert(private.clone(), id);
        Ok(Opened {
            id,
            private_name: private,
            epoch: self.view.id.epoch,
        })
    }

    pub(crate) fn on_commands(&mut self, id: SessionId, ops: Vec<ClientOp>) {
        let Some(session) = self.sessions.get_mut(&id) else {
            self.release_permits(ops.len());
            return;
        };
        let key = local_key(&self.me, id);
        let mut kinds = Vec::with_capacity(ops.len());
        for op in ops {
            kinds.push(match op {
                ClientOp::Join {
                    group,
                    capabilities,
                } => {
                    session.groups.insert(group.clone());
                    let member = Member {
                        key: key.clone(),
                        private_name: session.private_name.clone(),
                        capabilities,
                        node: session.node.clone(),
                    };
                    OpKind::Join { group, member }
                }
                ClientOp::Leave { group } => {
                    session.groups.remove(&group);
                    OpKind::Leave {
                        group,
                        key: key.clone(),
                        reason: ChangeKind::Leave,
                    }
                }
                ClientOp::Publish { group, payload } => OpKind::Publish {
                    group,
                    sender: session.private_name.clone(),
                    payload,
                },
            });
        }
        for kind in kinds {
            let publisher = matches!(kind, OpKind::Publish { .. }).then_some(id);
            self.submit(kind, publisher, true);
        }
    }

    /// Ends a session; it leaves every group it joined (`reason`).
    pub(crate) fn close_session(&mut self, id: SessionId, reason: ChangeKind) {
        let Some(session) = self.sessions.remove(&id) else {
            return;
        };
        self.congested.remove(&id);
        self.by_name.remove(&session.private_name);
        self.local_members.retain(|_, locals| {
            locals.retain(|s| *s != id);
            !locals.is_empty()
        });
        let key = local_key(&self.me, id);
        for group in session.groups {
            let leave = OpKind::Leave {
                group,
                key: key.clone(),
                reason,
            };
            self.submit(leave, None, false);
        }
    }

    /// Cuts a session that cannot keep up.
    pub(crate) fn cut_session(&mut self, id: SessionId, reason: CloseReason) {
        if !self.sessions.contains_key(&id) {
            return;
        }
        tracing::warn!(me = ?self.me, session = id.0, ?reason, "cutting slow session");
        self.effects.push(Effect::CloseSession {
            session: id,
            reason,
        });
        self.close_session(id, ChangeKind::Disconnect);
    }

    pub(crate) fn on_congested(&mut self, id: SessionId) {
        if self.sessions.contains_key(&id) {
            self.congested.entry(id).or_insert(self.now);
        }
    }

    pub(crate) fn on_drained(&mut self, id: SessionId) {
        self.congested.remove(&id);
    }

    /// Cuts sessions congested for longer than `stuck_after`: slowing everyone
    /// down for a reader that has stopped would never end.
    pub(crate) fn check_congestion(&mut self) {
        let limit = self.cfg.stuck_after;
        let stuck: Vec<SessionId> = self
            .congested
            .iter()
            .filter(|(_, since)| self.now.saturating_sub(**since) > limit)
            .map(|(id, _)| *id)
            .collect();
        for id in stuck {
            self.cut_session(id, CloseReason::Stuck);
        }
    }

    /// Recomputes which local sessions belong to which group.
    pub(crate) fn rebuild_local_members(&mut self) {
        self.local_members.clear();
        for (group, state) in self.groups.iter() {
            for member in &state.members {
                if member.key.server == self.me && self.sessions.contains_key(&member.key.session) {
                    self.local_members
                        .entry(group.clone())
                        .or_default()
                        .push(member.key.session);
                }
            }
        }
    }
}
