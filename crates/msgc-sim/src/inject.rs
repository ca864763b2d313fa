//! Applying faults: drops, cuts, crashes, pauses, and the final heal.

use crate::faults::FaultKind;
use crate::sim::{Ev, Phase, Sim, srv_name};

impl Sim {
    /// Applies one scheduled fault now.
    pub(crate) fn inject(&mut self, kind: FaultKind) {
        if self.phase != Phase::Faults {
            return;
        }
        self.log(|| {
            format!(
                "FAULT {}",
                crate::faults::Fault {
                    at: 0,
                    kind: kind.clone()
                }
            )
        });
        match kind {
            FaultKind::Drop { a, b, both } => {
                if self.servers[a].core.is_some() && !self.servers[a].paused {
                    self.drop_link(a, b, both);
                }
            }
            FaultKind::Cut { dirs, len, .. } => self.cut(dirs, len),
            FaultKind::Crash { server, down } => self.crash(server, Some(down)),
            FaultKind::Pause { server, len } => self.pause(server, len),
            FaultKind::Arm(t) => {
                let trigger = &self.schedule.triggers[t];
                self.armed[t] = Some((self.now + trigger.window, trigger.skip));
            }
        }
    }

    /// Crashes a server (state lost; its streams reset, so peers see their
    /// links end) and restarts it after `down` if given.
    pub(crate) fn crash(&mut self, srv: usize, down: Option<u64>) {
        if self.servers[srv].core.is_none() {
            return;
        }
        self.log(|| format!("{} CRASHES", srv_name(srv)));
        let inc = self.servers[srv].inc;
        self.servers[srv].core = None;
        self.history.incs[inc].died = Some(self.now);
        let ids: Vec<u64> = self
            .net
            .links
            .iter()
            .filter(|(_, l)| l.ends.contains(&srv))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.close_local(srv, id, true);
        }
        let sessions: Vec<_> = self.servers[srv].sessions.keys().copied().collect();
        for session in sessions {
            self.session_ended(srv, session);
        }
        let s = &mut self.servers[srv];
        s.paused = false;
        s.crash_gen += 1;
        let generation = s.crash_gen;
        if let Some(down) = down {
            self.at(self.now + down, Ev::Restart { srv, generation });
        }
    }

    /// Stops a server for `len`: no ticks, nothing delivered to it.
    pub(crate) fn pause(&mut self, srv: usize, len: u64) {
        if self.servers[srv].core.is_none() || self.servers[srv].paused {
            return;
        }
        self.log(|| format!("{} PAUSES", srv_name(srv)));
        let s = &mut self.servers[srv];
        s.paused = true;
        s.pause_gen += 1;
        let generation = s.pause_gen;
        self.at(self.now + len, Ev::Resume { srv, generation });
    }

    /// A paused server goes on: what waited for it is delivered, it ticks.
    pub(crate) fn resume(&mut self, srv: usize) {
        if !self.servers[srv].paused {
            return;
        }
        self.log(|| format!("{} RESUMES", srv_name(srv)));
        let s = &mut self.servers[srv];
        s.paused = false;
        s.tick_gen += 1;
        let generation = s.tick_gen;
        self.at(self.now, Ev::Tick { srv, generation });
        self.pump_into(srv, 0);
    }

    /// Schedules a pump of every non-empty direction into `srv`.
    fn pump_into(&mut self, srv: usize, delay: u64) {
        let dirs: Vec<(u64, usize)> = self
            .net
            .links
            .iter()
            .filter_map(|(id, l)| {
                let d = l.dir_from(srv)?;
                (!l.queues[1 - d].is_empty()).then_some((*id, 1 - d))
            })
            .collect();
        for (link, dir) in dirs {
            self.at(self.now + delay, Ev::Pump { link, dir });
        }
    }

    /// Cuts directions for `len`.
    pub(crate) fn cut(&mut self, dirs: Vec<(usize, usize)>, len: u64) {
        for &(a, b) in &dirs {
            self.net.blocked[a][b] += 1;
        }
        self.cuts.push(Some(dirs));
        let id = self.cuts.len() - 1;
        self.at(self.now + len, Ev::Unblock(id));
    }

    /// Ends a cut; held messages move again (after a link delay).
    pub(crate) fn unblock(&mut self, cut: usize) {
        let Some(dirs) = self.cuts[cut].take() else {
            return;
        };
        self.log(|| format!("cut {cut} heals"));
        for (a, b) in dirs {
            self.net.blocked[a][b] -= 1;
            if self.net.blocked[a][b] == 0 {
                self.pump_dir(a, b);
            }
        }
    }

    fn pump_dir(&mut self, from: usize, to: usize) {
        let dirs: Vec<(u64, usize, u64)> = self
            .net
            .links
            .iter()
            .filter_map(|(id, l)| {
                let d = l.dir_from(from)?;
                (l.ends[1 - d] == to && !l.queues[d].is_empty()).then_some((*id, d, l.delay))
            })
            .collect();
        for (link, dir, delay) in dirs {
            self.at(self.now + delay, Ev::Pump { link, dir });
        }
    }

    /// Resumes a server and heals every cut that involves it.
    pub(crate) fn release_server(&mut self, srv: usize) {
        self.resume(srv);
        for cut in 0..self.cuts.len() {
            if self.cuts[cut]
                .as_ref()
                .is_some_and(|d| d.iter().any(|(a, b)| *a == srv || *b == srv))
            {
                self.unblock(cut);
            }
        }
    }

    /// The end of the fault phase: every cut heals, every paused server
    /// resumes, every crashed one restarts, clients stop; the liveness
    /// watch begins.
    pub(crate) fn heal_all(&mut self) {
        self.log(|| "HEAL: faults stop".to_owned());
        self.phase = Phase::Healed;
        self.clients_active = false;
        self.armed.iter_mut().for_each(|a| *a = None);
        for cut in 0..self.cuts.len() {
            self.unblock(cut);
        }
        for srv in 0..self.cfg.servers {
            if self.servers[srv].core.is_none() {
                self.servers[srv].crash_gen += 1;
                self.start_server(srv);
            } else {
                self.resume(srv);
            }
        }
        self.at(self.now + self.cfg.keepalive / 4, Ev::Watch);
    }
}
