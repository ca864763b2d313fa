//! Links, keepalives, rows and components: who this server can talk to, what
//! it tells everyone about that, and which servers may form a view together
//! [rules 7-9].

use std::collections::BTreeSet;

use crate::ids::{LinkId, ServerId, ServerName};
use crate::msg::{PeerMsg, Row};
use crate::{Core, Effect, Time};

/// A live, handshaken peer link.
#[derive(Debug)]
pub(crate) struct Link {
    pub id: LinkId,
    pub peer: ServerId,
    pub last_recv: Time,
    pub last_sent: Time,
    pub rtt_us: u64,
}

impl Core {
    pub(crate) fn on_link_up(&mut self, peer: ServerId, id: LinkId) {
        if peer.name == self.me.name || !self.cfg.peers.contains(&peer.name) {
            return;
        }
        if self.view.members.iter().any(|m| m.name == peer.name) {
            // A new stream to a view member: what the old one carried (or
            // what was sent while there was none) may be lost.
            self.view_broken = true;
        }
        if let Some(old) = self.links.get(&peer.name) {
            let reason = "replaced by a newer link".to_owned();
            self.effects.push(Effect::CloseLink {
                peer: peer.name.clone(),
                link: old.id,
                reason,
            });
        }
        tracing::debug!(me = ?self.me, ?peer, link = id.0, "link up");
        let name = peer.name.clone();
        // A row of another incarnation of this peer is stale from now on.
        if self.rows.get(&name).is_some_and(|r| r.server != peer) {
            self.rows.remove(&name);
        }
        self.links.insert(
            name.clone(),
            Link {
                id,
                peer,
                last_recv: self.now,
                last_sent: self.now,
                rtt_us: 0,
            },
        );
        self.update_row();
        // The newcomer learns every row known here.
        let rows: Vec<Row> = self.rows.values().cloned().collect();
        self.send(&name, PeerMsg::Rows(rows));
        self.on_connectivity_changed();
    }

    pub(crate) fn on_link_down(&mut self, peer: &ServerName, id: LinkId) {
        if self.links.get(peer).is_some_and(|l| l.id == id) {
            self.drop_link(peer, "link closed");
        }
    }

    /// Forgets a link (asking the driver to close it) and reacts.
    pub(crate) fn drop_link(&mut self, peer: &ServerName, reason: &str) {
        let Some(link) = self.links.remove(peer) else {
            return;
        };
        tracing::debug!(me = ?self.me, %peer, reason, "link down");
        self.effects.push(Effect::CloseLink {
            peer: peer.clone(),
            link: link.id,
            reason: reason.to_owned(),
        });
        if self.view.contains(&link.peer) {
            self.view_broken = true;
        }
        self.update_row();
        self.on_link_lost(&link.peer);
        self.on_connectivity_changed();
    }

    /// Queues a message for a peer on its current link.
    pub(crate) fn send(&mut self, peer: &ServerName, msg: PeerMsg) {
        let Some(link) = self.links.get_mut(peer) else {
            return;
        };
        link.last_sent = self.now;
        self.effects.push(Effect::Send {
            to: peer.clone(),
            link: link.id,
            msg,
        });
    }

    /// Messages from a peer, on link `id`.
    pub(crate) fn on_peer(&mut self, peer: &ServerName, id: LinkId, msgs: Vec<PeerMsg>) {
        let from = match self.links.get_mut(peer) {
            Some(link) if link.id == id => {
                link.last_recv = self.now;
                link.peer.clone()
            }
            _ => return,
        };
        for msg in msgs {
            // A message may have dropped the link (a gap): ignore the rest.
            if self.links.get(peer).is_none_or(|l| l.id != id) {
                return;
            }
            self.on_peer_msg(&from, msg);
        }
    }

    fn on_peer_msg(&mut self, from: &ServerId, msg: PeerMsg) {
        match msg {
            PeerMsg::Keepalive { sent_us, echo_us } => self.on_keepalive(from, sent_us, echo_us),
            PeerMsg::Rows(rows) => self.on_rows(from, rows),
            PeerMsg::Submit { view, ops } => self.on_submit(from, &view, ops),
            PeerMsg::Sequenced {
                view,
                first,
                ops,
                stable,
                acked,
            } => self.on_sequenced(from, &view, first, ops, (stable, acked)),
            PeerMsg::Progress {
                view,
                received,
                stable,
            } => self.on_progress(from, &view, received, stable),
            PeerMsg::Propose { view } => self.on_propose(from, view),
            PeerMsg::Flush(state) => self.on_flush(from, *state),
            PeerMsg::Refuse { proposal, known } => self.on_refuse(from, &proposal, known),
            PeerMsg::Install { record } => self.on_install(from, *record),
            PeerMsg::Fetch {
                proposal,
                view,
                lagger,
                after,
                upto,
            } => self.on_fetch(from, &proposal, &view, lagger, (after, upto)),
            PeerMsg::Transfer {
                proposal,
                view,
                after,
                upto,
                ops,
            } => self.on_transfer(&proposal, &view, (after, upto), ops),
            PeerMsg::InstallAck { view } => self.on_install_ack(from, &view),
            PeerMsg::Commit { view } => self.on_commit(from, &view),
        }
    }

    fn micros(&self) -> u64 {
        u64::try_from(self.now.as_micros())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// Keepalives on quiet links (every half interval); links silent for
    /// 1.5 intervals are dropped.
    pub(crate) fn check_links(&mut self) {
        let interval = self.cfg.keepalive_interval;
        let (silent_after, quiet_after) = (interval * 3 / 2, interval / 2);
        let mut silent = Vec::new();
        let mut quiet = Vec::new();
        for (name, link) in &self.links {
            if self.now.saturating_sub(link.last_recv) > silent_after {
                silent.push(name.clone());
            } else if self.now.saturating_sub(link.last_sent) >= quiet_after {
                quiet.push(name.clone());
            }
        }
        for name in silent {
            self.drop_link(&name, "no traffic for 1.5 keepalive intervals");
        }
        let sent_us = self.micros();
        for name in quiet {
            self.send(
                &name,
                PeerMsg::Keepalive {
                    sent_us,
                    echo_us: 0,
                },
            );
        }
    }

    fn on_keepalive(&mut self, from: &ServerId, sent_us: u64, echo_us: u64) {
        if echo_us == 0 {
            let reply = PeerMsg::Keepalive {
                sent_us: 0,
                echo_us: sent_us.max(1),
            };
            self.send(&from.name, reply);
        } else {
            let now = self.micros();
            if let Some(link) = self.links.get_mut(&from.name) {
                link.rtt_us = now.saturating_sub(echo_us);
            }
        }
    }

    /// Rebuilds this server's row; floods it if it changed [rule 7].
    pub(crate) fn update_row(&mut self) {
        let links: Vec<ServerId> = self.links.values().map(|l| l.peer.clone()).collect();
        let answered = self.answered.as_ref().map(|(v, _)| v.clone());
        if let Some(row) = self.rows.get(&self.me.name)
            && row.server == self.me
            && row.links == links
            && row.view == self.view.id
            && row.answered == answered
        {
            return;
        }
        self.row_version += 1;
        let row = Row {
            server: self.me.clone(),
            version: self.row_version,
            view: self.view.id.clone(),
            answered,
            links,
        };
        self.rows.insert(self.me.name.clone(), row.clone());
        self.flood(None, vec![row]);
    }

    fn flood(&mut self, except: Option<&ServerName>, rows: Vec<Row>) {
        let names: Vec<ServerName> = self
            .links
            .keys()
            .filter(|n| Some(*n) != except)
            .cloned()
            .collect();
        for name in names {
            self.send(&name, PeerMsg::Rows(rows.clone()));
        }
    }

    fn on_rows(&mut self, from: &ServerId, rows: Vec<Row>) {
        let mut newer = Vec::new();
        for row in rows {
            if row.server.name == self.me.name || !self.cfg.peers.contains(&row.server.name) {
                continue;
            }
            // A linked peer's incarnation is known for sure: only its rows
            // count, whatever their incarnation number; for others the
            // higher (incarnation, version) wins (the driver draws growing
            // incarnations, so a restart supersedes).
            let linked = self.links.get(&row.server.name).map(|l| &l.peer);
            let known = self.rows.get(&row.server.name);
            let accept = match (linked, known) {
                (Some(peer), _) if *peer != row.server => false,
                (Some(_), Some(k)) if k.server != row.server => true,
                (_, Some(k)) => {
                    (row.server.incarnation, row.version) > (k.server.incarnation, k.version)
                }
                (_, None) => true,
            };
            if accept {
                self.rows.insert(row.server.name.clone(), row.clone());
                newer.push(row);
            }
        }
        if !newer.is_empty() {
            for row in &newer {
                if self.max_view < row.view {
                    self.max_view = row.view.clone();
                }
            }
            self.flood(Some(&from.name), newer);
            self.on_connectivity_changed();
        }
    }

    /// `u–v` are connected when both rows list each other [rule 8].
    fn connected(&self, u: &Row, v: &Row) -> bool {
        u.links.contains(&v.server) && v.links.contains(&u.server)
    }

    /// This server's component [rule 9]: servers are first grouped into
    /// *blocks*, greedy cliques among the servers that share a current view;
    /// the blocks are then joined greedily, whole, largest first. So two
    /// servers that are in one view and still linked are never pulled apart
    /// by a merge: while a healing split's links come up one by one, a
    /// server cannot be taken into the other side's view and leave a
    /// view-mate it never lost behind (real processes, chaos seed 102: two
    /// never-faulted servers then delivered different lists). [JG MERGE3
    /// merges whole subgroups, by their views] Sorted by name.
    pub(crate) fn component(&self) -> Vec<ServerId> {
        let rows = self.rows_in_clique_order();
        let connected = |a: usize, b: usize| self.connected(rows[a], rows[b]);
        let mut placed: BTreeSet<usize> = BTreeSet::new();
        let mut blocks: Vec<Vec<usize>> = Vec::new();
        for start in 0..rows.len() {
            if placed.contains(&start) {
                continue;
            }
            let mut block = vec![start];
            for next in start + 1..rows.len() {
                if !placed.contains(&next)
                    && rows[next].view == rows[start].view
                    && block.iter().all(|&c| connected(c, next))
                {
                    block.push(next);
                }
            }
            placed.extend(block.iter().copied());
            blocks.push(block);
        }
        // Stable: among blocks of one size, the clique order above.
        blocks.sort_by_key(|b| std::cmp::Reverse(b.len()));
        let mut joined = vec![false; blocks.len()];
        for first in 0..blocks.len() {
            if joined[first] {
                continue;
            }
            joined[first] = true;
            let mut clique = blocks[first].clone();
            for next in first + 1..blocks.len() {
                if !joined[next]
                    && blocks[next]
                        .iter()
                        .all(|&n| clique.iter().all(|&c| connected(c, n)))
                {
                    joined[next] = true;
                    clique.extend(blocks[next].iter().copied());
                }
            }
            if clique.iter().any(|&c| rows[c].server == self.me) {
                let mut members: Vec<ServerId> =
                    clique.iter().map(|&c| rows[c].server.clone()).collect();
                members.sort();
                return members;
            }
        }
        vec![self.me.clone()]
    }

    /// Known rows, best connected first: a server that lost links (a paused
    /// or cut-off one) is the one left out, not a peer of it. Among equals,
    /// one whose current view more servers share first (then by name).
    fn rows_in_clique_order(&self) -> Vec<&Row> {
        let mut rows: Vec<&Row> = self.rows.values().collect();
        let degree = |r: &Row| rows_degree(&self.rows, r, |u, v| self.connected(u, v));
        let view_mates = |r: &Row| self.rows.values().filter(|o| o.view == r.view).count();
        rows.sort_by_cached_key(|r| {
            (
                std::cmp::Reverse(degree(r)),
                std::cmp::Reverse(view_mates(r)),
                r.server.name.clone(),
            )
        });
        rows
    }

    /// The row of a server, if known.
    pub(crate) fn row_of(&self, id: &ServerId) -> Option<&Row> {
        self.rows.get(&id.name).filter(|r| &r.server == id)
    }
}

/// How many known servers a row's server is connected to.
fn rows_degree(
    rows: &std::collections::BTreeMap<ServerName, Row>,
    row: &Row,
    connected: impl Fn(&Row, &Row) -> bool,
) -> usize {
    rows.values()
        .filter(|other| other.server != row.server && connected(row, other))
        .count()
}
