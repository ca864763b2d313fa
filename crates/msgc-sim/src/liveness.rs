//! The liveness phase: after the heal, every server must be in one view,
//! active, and a fresh publish from every server must reach every
//! subscriber, within `liveness_bound`.

use std::collections::BTreeSet;

use crate::check::Invariant;
use crate::config::MS;
use crate::record::Rec;
use crate::sim::{Ev, Phase, Sim, srv_name};
use msgc_core::{ServerId, SessionId};

impl Sim {
    /// The periodic liveness watch.
    pub(crate) fn watch(&mut self) {
        let deadline = self.cfg.heal_at + self.cfg.liveness_bound;
        match self.phase {
            Phase::Healed if self.converged() => self.send_probes(),
            Phase::Probing if !self.probes_unsent.is_empty() => self.send_unsent_probes(),
            Phase::Probing if self.missing_probes().is_empty() => {
                self.log(|| "LIVENESS: every probe delivered everywhere".into());
                self.finish_liveness();
                return;
            }
            _ => {}
        }
        if self.now >= deadline {
            self.liveness_timeout();
            return;
        }
        self.at(self.now + self.cfg.keepalive / 4, Ev::Watch);
    }

    fn finish_liveness(&mut self) {
        for srv in 0..self.cfg.servers {
            let inc = self.servers[srv].inc;
            self.history.incs[inc].final_ok = true;
        }
        self.phase = Phase::Done;
        self.stats.end = self.now;
    }

    /// True when every server runs, is active, links every other, and all
    /// share one view of all of them.
    pub fn converged(&self) -> bool {
        let mut ids = Vec::new();
        for s in &self.servers {
            let Some(core) = &s.core else { return false };
            if s.paused || !core.is_active() {
                return false;
            }
            ids.push(core.id().clone());
        }
        let Some(first) = self.servers[0].core.as_ref() else {
            return false;
        };
        // Every server also links every other (a view whose links are down
        // is about to change: probes sent then may reach one side only).
        self.servers.iter().all(|s| {
            s.core.as_ref().is_some_and(|c| {
                c.view().id == first.view().id
                    && c.view().members == ids
                    && c.status().links.len() + 1 == ids.len()
            })
        })
    }

    fn send_probes(&mut self) {
        self.log(|| "LIVENESS: one view; probes go out".into());
        self.phase = Phase::Probing;
        self.stats.probes_at = Some(self.now);
        self.stats.converged_at = Some(self.now);
        self.probes_unsent = (0..self.cfg.servers).collect();
        self.send_unsent_probes();
    }

    /// Each server whose probe is not out yet publishes it, if its window
    /// has a permit (a window still full of ops from before the heal drains
    /// as the new view delivers them: back-pressure, not a stall; a permit
    /// that never frees is reported at the bound).
    fn send_unsent_probes(&mut self) {
        let unsent = std::mem::take(&mut self.probes_unsent);
        for srv in unsent {
            let inc = self.servers[srv].inc;
            let Some(w) = self.history.incs[inc].watcher else {
                continue;
            };
            if !self.publish(srv, w, 0, 1, true) {
                self.probes_unsent.insert(srv);
            }
        }
    }

    /// (session, probe) pairs not delivered yet: every live session that is
    /// a member of g0 (by its own server's watcher's last view of it) and
    /// every watcher, for each probe the watcher did not deliver before the
    /// view that made the session a member (a session whose join was
    /// sequenced after a probe rightly never gets that probe).
    pub(crate) fn missing_probes(&self) -> Vec<(usize, usize)> {
        let probes: Vec<usize> = (0..self.history.msgs.len())
            .filter(|m| self.history.msgs[*m].probe)
            .collect();
        let mut missing = Vec::new();
        for s in &self.servers {
            if s.core.is_none() {
                continue;
            }
            let inc = &self.history.incs[s.inc];
            let Some(w) = inc.watcher else { continue };
            let watched = &self.history.sessions[w].events;
            for &slog in s.sessions.values() {
                let log = &self.history.sessions[slog];
                let Some(joined) = member_since(watched, log.id, &inc.id) else {
                    continue;
                };
                let got: BTreeSet<usize> = log
                    .events
                    .iter()
                    .filter_map(|e| match e {
                        Rec::Msg { msg, .. } => Some(*msg),
                        Rec::View { .. } => None,
                    })
                    .collect();
                let before_join = |p: &usize| {
                    watched[..joined]
                        .iter()
                        .any(|e| matches!(e, Rec::Msg { msg, .. } if msg == p))
                };
                missing.extend(
                    probes
                        .iter()
                        .filter(|p| !got.contains(p) && !before_join(p))
                        .map(|p| (slog, *p)),
                );
            }
        }
        missing
    }

    /// The bound passed: report what is not live.
    pub(crate) fn liveness_timeout(&mut self) {
        let bound = self.cfg.liveness_bound / MS;
        let detail = if self.phase == Phase::Probing && !self.probes_unsent.is_empty() {
            let names: Vec<String> = self.probes_unsent.iter().map(|s| srv_name(*s)).collect();
            format!(
                "no window permit for a probe on {} in {bound}ms after the one view",
                names.join(", ")
            )
        } else if self.phase == Phase::Probing {
            let missing = self.missing_probes();
            let shown: Vec<String> = missing
                .iter()
                .take(6)
                .map(|(s, p)| {
                    format!(
                        "{} lacks probe s{}",
                        self.history.sessions[*s].private_name, self.history.msgs[*p].session
                    )
                })
                .collect();
            format!(
                "{} probe deliveries missing {bound}ms after the heal: {}",
                missing.len(),
                shown.join(", ")
            )
        } else {
            let views: Vec<String> = (0..self.cfg.servers)
                .map(|i| match &self.servers[i].core {
                    Some(c) => format!(
                        "{}: {:?} {:?} active={} links={:?}",
                        srv_name(i),
                        c.view().id,
                        c.view().members,
                        c.is_active(),
                        c.status().links.iter().map(|l| &l.0).collect::<Vec<_>>()
                    ),
                    None => format!("{}: down", srv_name(i)),
                })
                .collect();
            format!(
                "no single active view {bound}ms after the heal: {}",
                views.join("; ")
            )
        };
        let all = (0..self.cfg.servers).map(srv_name).collect();
        self.violation(Invariant::Liveness, all, detail);
        self.phase = Phase::Done;
    }
}

/// Index, in a watcher's log, of the g0 view since which `session` of
/// `server` has been a member without a break; `None` if its last g0 view
/// does not list it.
fn member_since(watched: &[Rec], session: SessionId, server: &ServerId) -> Option<usize> {
    let mut since = None;
    for (i, e) in watched.iter().enumerate() {
        let Rec::View { gv, .. } = e else { continue };
        if gv.group != "g0" {
            continue;
        }
        let member = gv
            .members
            .iter()
            .any(|m| m.key.session == session && m.key.server == *server);
        since = match (member, since) {
            (true, None) => Some(i),
            (true, kept) => kept,
            (false, _) => None,
        };
    }
    since
}
