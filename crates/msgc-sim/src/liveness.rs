//! The liveness phase: after the heal, every server must be in one view,
//! active, and a fresh publish from every server must reach every
//! subscriber, within `liveness_bound`.

use std::collections::BTreeSet;

use crate::check::Invariant;
use crate::config::MS;
use crate::record::Rec;
use crate::sim::{Ev, Phase, Sim, srv_name};

impl Sim {
    /// The periodic liveness watch.
    pub(crate) fn watch(&mut self) {
        let deadline = self.cfg.heal_at + self.cfg.liveness_bound;
        match self.phase {
            Phase::Healed if self.converged() => self.send_probes(),
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
        for srv in 0..self.cfg.servers {
            let inc = self.servers[srv].inc;
            let Some(w) = self.history.incs[inc].watcher else {
                continue;
            };
            if !self.publish(srv, w, 0, 1, true) {
                let detail = format!("{} has no window permit left for a probe", srv_name(srv));
                self.violation(Invariant::Liveness, vec![srv_name(srv)], detail);
            }
        }
    }

    /// (session, probe) pairs not delivered yet: every live session that is
    /// a member of g0 (by its own last view of it) and every watcher.
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
            let members = self.history.sessions[w]
                .events
                .iter()
                .rev()
                .find_map(|e| match e {
                    Rec::View { gv, .. } if gv.group == "g0" => Some(&gv.members),
                    _ => None,
                });
            for &slog in s.sessions.values() {
                let log = &self.history.sessions[slog];
                let member = members.is_some_and(|ms| {
                    ms.iter()
                        .any(|m| m.key.session == log.id && m.key.server == inc.id)
                });
                if !member {
                    continue;
                }
                let got: BTreeSet<usize> = log
                    .events
                    .iter()
                    .filter_map(|e| match e {
                        Rec::Msg { msg, .. } => Some(*msg),
                        Rec::View { .. } => None,
                    })
                    .collect();
                missing.extend(
                    probes
                        .iter()
                        .filter(|p| !got.contains(p))
                        .map(|p| (slog, *p)),
                );
            }
        }
        missing
    }

    /// The bound passed: report what is not live.
    pub(crate) fn liveness_timeout(&mut self) {
        let bound = self.cfg.liveness_bound / MS;
        let detail = if self.phase == Phase::Probing {
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
