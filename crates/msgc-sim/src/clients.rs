//! Simulated clients: sessions open and close, join and leave groups,
//! publish identity payloads, reconnect under their name, move servers.
//! Also the recording of what sessions are given.

use bytes::Bytes;
use msgc_core::{ClientOp, Event, Hello, Input, Position, SessionId};

use crate::check::Invariant;
use crate::record::{History, Msg, Rec};
use crate::sim::{Ev, Sim, group_name, srv_name};

impl Sim {
    /// One client step.
    pub(crate) fn client_act(&mut self, c: usize, generation: u64) {
        if self.clients[c].generation != generation || !self.clients_active {
            return;
        }
        match self.clients[c].session {
            None => self.client_open(c, None),
            Some(slog) => self.client_step(c, slog),
        }
        let think = self.rng_client.range(self.cfg.think.0, self.cfg.think.1);
        self.at(
            self.now + think,
            Ev::Client {
                client: c,
                generation,
            },
        );
    }

    /// Opens a session under the client's name, on `on` or a random
    /// running server (home first).
    fn client_open(&mut self, c: usize, on: Option<usize>) {
        let srv = on.unwrap_or_else(|| {
            if self.rng_client.chance(1, 2) {
                self.clients[c].home
            } else {
                self.rng_client.index(self.cfg.servers)
            }
        });
        if self.servers[srv].core.is_none() || self.servers[srv].paused {
            return;
        }
        let hello = Hello {
            client_name: Some(self.clients[c].name.clone()),
            ..Hello::default()
        };
        if let Some(slog) = self.open(srv, Some(c), hello) {
            self.clients[c].session = Some(slog);
            self.clients[c].joined.clear();
        }
    }

    fn client_step(&mut self, c: usize, slog: usize) {
        let srv = self.history.sessions[slog].server;
        if self.servers[srv].paused {
            return;
        }
        let r = self.rng_client.below(1000);
        let reconnect = self.cfg.reconnect_permille;
        if r < reconnect {
            self.client_close(c, slog);
            self.client_open(c, Some(srv));
        } else if r < reconnect + 15 {
            self.client_close(c, slog);
            let to = self.rng_client.index(self.cfg.servers);
            self.client_open(c, Some(to));
        } else if r < reconnect + 25 {
            self.client_close(c, slog);
        } else if r < reconnect + 125 {
            let g = self.rng_client.index(self.cfg.groups);
            if self.commands(
                srv,
                slog,
                vec![ClientOp::Join {
                    group: group_name(g),
                    capabilities: Bytes::new(),
                }],
            ) {
                self.clients[c].joined.insert(g);
            }
        } else if r < reconnect + 185 {
            let joined: Vec<usize> = self.clients[c].joined.iter().copied().collect();
            if !joined.is_empty() {
                let g = *self.rng_client.pick(&joined);
                if self.commands(
                    srv,
                    slog,
                    vec![ClientOp::Leave {
                        group: group_name(g),
                    }],
                ) {
                    self.clients[c].joined.remove(&g);
                }
            }
        } else {
            let n = 1 + self.rng_client.index(3);
            let g = self.rng_client.index(self.cfg.groups);
            self.publish(srv, slog, g, n, false);
        }
    }

    /// Submits `n` publishes of a session to group `g`; false if the window
    /// is short.
    pub(crate) fn publish(
        &mut self,
        srv: usize,
        slog: usize,
        g: usize,
        n: usize,
        probe: bool,
    ) -> bool {
        if self.servers[srv].permits < n {
            return false;
        }
        let tag = History::tag(slog);
        let mut ops = Vec::with_capacity(n);
        for _ in 0..n {
            let counter = self.history.sessions[slog].published.len() as u64 + 1;
            let size = self
                .rng_client
                .range(self.cfg.payload.0 as u64, self.cfg.payload.1 as u64 + 1)
                as usize;
            let payload = msgc_check::encode_payload(&tag, counter, size);
            let m = self.history.msgs.len();
            self.history.msgs.push(Msg {
                session: slog,
                counter,
                group: g,
                sent_at: self.now,
                acked: None,
                acked_at_install: false,
                probe,
            });
            self.history.sessions[slog].published.push(m);
            ops.push(ClientOp::Publish {
                group: group_name(g),
                payload,
            });
        }
        self.commands(srv, slog, ops)
    }

    fn client_close(&mut self, c: usize, slog: usize) {
        let srv = self.history.sessions[slog].server;
        let id = self.history.sessions[slog].id;
        self.session_ended(srv, id);
        self.clients[c].session = None;
        self.feed(srv, Input::CloseSession(id));
    }

    /// A session ended (closed by its client or the core, or its server
    /// crashed).
    pub(crate) fn session_ended(&mut self, srv: usize, session: SessionId) {
        let Some(slog) = self.servers[srv].sessions.remove(&session) else {
            return;
        };
        self.history.sessions[slog].closed = Some(self.now);
        if let Some(c) = self.history.sessions[slog].client
            && self.clients[c].session == Some(slog)
        {
            self.clients[c].session = None;
        }
    }

    /// Records an event given to a session.
    pub(crate) fn on_deliver(&mut self, srv: usize, session: SessionId, event: Event) {
        let Some(&slog) = self.servers[srv].sessions.get(&session) else {
            return;
        };
        let inc = self.servers[srv].inc;
        let view = self.history.incs[inc].views.len() - 1;
        let at = self.now;
        match event {
            Event::Delivery {
                group,
                sender,
                payload,
                position,
                origin,
            } => {
                let Some(msg) = self.identify(srv, slog, &group, &sender, &payload, &origin) else {
                    return;
                };
                self.servers[srv].last_delivery = Some((position, msg));
                self.history.sessions[slog].events.push(Rec::Msg {
                    msg,
                    position,
                    view,
                    at,
                });
            }
            Event::View(gv) => {
                let watcher = self.history.incs[inc].watcher == Some(slog);
                let me = self.history.sessions[slog].id;
                let joined_me = gv
                    .members
                    .iter()
                    .any(|m| m.key.session == me && m.key.server == self.history.incs[inc].id);
                self.history.sessions[slog]
                    .events
                    .push(Rec::View { gv, view, at });
                if watcher && joined_me && self.history.incs[inc].watched_from.is_none() {
                    self.note_watcher(inc, slog, view);
                }
            }
        }
    }

    /// Once the watcher is in every group, its incarnation is watched from
    /// the next view on.
    fn note_watcher(&mut self, inc: usize, slog: usize, view: usize) {
        let mut groups = std::collections::BTreeSet::new();
        for e in &self.history.sessions[slog].events {
            if let Rec::View { gv, .. } = e {
                groups.insert(gv.group.clone());
            }
        }
        if groups.len() == self.cfg.groups {
            self.history.incs[inc].watched_from = Some(view + 1);
        }
    }

    /// The publish a delivery is of; reports a creation if none fits.
    fn identify(
        &mut self,
        srv: usize,
        slog: usize,
        group: &str,
        sender: &str,
        payload: &[u8],
        origin: &(msgc_core::ServerId, u64),
    ) -> Option<usize> {
        let found = msgc_check::decode_payload(payload).and_then(|id| {
            let s = History::session_of_tag(&id.sender)?;
            let m = *self
                .history
                .sessions
                .get(s)?
                .published
                .get(usize::try_from(id.counter).ok()?.checked_sub(1)?)?;
            Some((s, m))
        });
        let who = self.history.sessions[slog].private_name.clone();
        let Some((s, m)) = found else {
            let detail = format!(
                "{who} on {} got a payload nobody sent in {group}",
                srv_name(srv)
            );
            self.violation(Invariant::Created, vec![srv_name(srv)], detail);
            return None;
        };
        let publisher = &self.history.sessions[s];
        let origin_ok = self.history.incs[publisher.inc].id == origin.0;
        if group_name(self.history.msgs[m].group) != group
            || publisher.private_name != sender
            || !origin_ok
        {
            let detail = format!(
                "{who} on {} got s{s}/{} in {group} from {sender} origin {:?}; it was sent to g{} by {} on {:?}",
                srv_name(srv),
                self.history.msgs[m].counter,
                origin.0,
                self.history.msgs[m].group,
                publisher.private_name,
                self.history.incs[publisher.inc].id
            );
            self.violation(Invariant::Created, vec![srv_name(srv)], detail);
        }
        Some(m)
    }

    /// Records an ack: it must be for the session's next unacked publish.
    pub(crate) fn on_acked(
        &mut self,
        srv: usize,
        session: SessionId,
        position: Position,
        at_install: bool,
    ) {
        let Some(&slog) = self.servers[srv].sessions.get(&session) else {
            return;
        };
        let inc = self.servers[srv].inc;
        let view = self.history.incs[inc].views.len() - 1;
        let seen = match self.servers[srv].last_delivery {
            Some((p, m)) if p == position => Some(m),
            _ => None,
        };
        let log = &self.history.sessions[slog];
        let expected = log.published.get(log.acks.len()).copied();
        if seen.is_some() && seen != expected || expected.is_none() {
            let name = log.private_name.clone();
            let detail = format!(
                "session s{slog} ({name}) on {} acked at {position:?} for {:?}, its next unacked publish is {:?}",
                srv_name(srv),
                seen.map(|m| (self.history.msgs[m].session, self.history.msgs[m].counter)),
                expected.map(|m| self.history.msgs[m].counter),
            );
            self.violation(Invariant::Ack, vec![srv_name(srv)], detail);
        }
        let msg = seen.or(expected);
        self.history.sessions[slog]
            .acks
            .push((self.now, position, msg));
        if let Some(m) = msg {
            self.history.msgs[m].acked = Some((view, position, self.now));
            self.history.msgs[m].acked_at_install = at_install;
        }
    }
}
