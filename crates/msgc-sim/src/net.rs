//! The simulated network: one link per pair of servers, FIFO per direction
//! with a seeded delay and jitter, and cut directions that hold packets
//! back (like TCP retransmission) instead of losing them.

use std::collections::{BTreeMap, VecDeque};

use msgc_core::{PeerMsg, ServerId};

use crate::rng::Rng;

/// What travels on one direction of a link.
#[derive(Debug)]
pub(crate) enum Wire {
    /// The handshake: the receiver's end comes up (peer = the sender).
    Up(ServerId),
    /// A peer message.
    Msg(PeerMsg),
    /// The sender's end closed (FIN / RST): the receiver sees LinkDown.
    Close,
}

/// One link (one stream) between two server incarnations.
#[derive(Debug)]
pub(crate) struct Link {
    /// Server indices; `ends[0]` is the lower name (the dialler).
    pub ends: [usize; 2],
    /// Whether each end is still open.
    pub open: [bool; 2],
    /// Base one-way delay.
    pub delay: u64,
    /// `queues[d]` carries `ends[d]` to `ends[1 - d]`: (arrival, item).
    pub queues: [VecDeque<(u64, Wire)>; 2],
    /// Arrival time of the last item queued per direction (FIFO floor).
    pub last_at: [u64; 2],
}

impl Link {
    /// The direction that `server` sends on, if it is an end.
    pub fn dir_from(&self, server: usize) -> Option<usize> {
        self.ends.iter().position(|e| *e == server)
    }
}

/// Every link and every cut.
#[derive(Debug)]
pub(crate) struct Net {
    /// Links by id (deterministic order).
    pub links: BTreeMap<u64, Link>,
    /// `blocked[from][to] > 0`: that direction passes nothing.
    pub blocked: Vec<Vec<u32>>,
    /// Per pair `(lo, hi)`: the link the dialler last made.
    pub current: BTreeMap<(usize, usize), u64>,
    jitter: u64,
    next_id: u64,
}

impl Net {
    pub fn new(servers: usize, jitter: u64) -> Self {
        Self {
            links: BTreeMap::new(),
            blocked: vec![vec![0; servers]; servers],
            current: BTreeMap::new(),
            jitter,
            next_id: 1,
        }
    }

    pub fn is_blocked(&self, from: usize, to: usize) -> bool {
        self.blocked[from][to] > 0
    }

    /// A new link between `lo` and `hi`, both ends open.
    pub fn create(&mut self, lo: usize, hi: usize, delay: u64) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.links.insert(
            id,
            Link {
                ends: [lo, hi],
                open: [true, true],
                delay,
                queues: [VecDeque::new(), VecDeque::new()],
                last_at: [0, 0],
            },
        );
        self.current.insert((lo, hi), id);
        id
    }

    /// Queues an item from `ends[dir]`; returns its arrival time if the
    /// direction's queue was empty (the caller schedules a pump).
    pub fn push(
        &mut self,
        id: u64,
        dir: usize,
        now: u64,
        wire: Wire,
        rng: &mut Rng,
    ) -> Option<u64> {
        let link = self.links.get_mut(&id)?;
        let at = (now + link.delay + rng.below(self.jitter + 1)).max(link.last_at[dir]);
        link.last_at[dir] = at;
        let was_empty = link.queues[dir].is_empty();
        link.queues[dir].push_back((at, wire));
        was_empty.then_some(at)
    }

    /// The open link `server` has to `peer` (its own end open), if any.
    pub fn open_link(&self, server: usize, peer: usize) -> Option<u64> {
        let key = (server.min(peer), server.max(peer));
        let id = *self.current.get(&key)?;
        let link = &self.links[&id];
        let d = link.dir_from(server)?;
        link.open[d].then_some(id)
    }

    /// Forgets links that are closed at both ends and carry nothing.
    pub fn collect(&mut self) {
        self.links
            .retain(|_, l| l.open.iter().any(|o| *o) || l.queues.iter().any(|q| !q.is_empty()));
        let links = &self.links;
        self.current.retain(|_, id| links.contains_key(id));
    }
}
