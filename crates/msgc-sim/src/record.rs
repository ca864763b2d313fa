//! What a run recorded: every server incarnation's started views, every
//! session's deliveries and acks, every submitted publish. The checker
//! judges these.

use msgc_core::{
    ChangeKind, GroupView, InstallRecord, Position, ServerId, SessionId, View, ViewId,
};

/// One run of one server (a restart is a new incarnation).
#[derive(Clone, Debug)]
pub struct IncLog {
    /// Server index.
    pub server: usize,
    /// Its id.
    pub id: ServerId,
    /// Started at.
    pub born: u64,
    /// Crashed at, if it did.
    pub died: Option<u64>,
    /// Views it started, in order, with the time (the first is its own
    /// view at creation).
    pub views: Vec<(u64, View)>,
    /// Its watcher session (member of every group), once joined.
    pub watcher: Option<usize>,
    /// Index of the first view throughout which the watcher was a member of
    /// every group (`None`: never).
    pub watched_from: Option<usize>,
    /// It delivered every liveness probe at the end.
    pub final_ok: bool,
}

/// One delivered event, as a session saw it.
#[derive(Clone, Debug)]
pub enum Rec {
    /// A publish (index into [`History::msgs`]).
    Msg {
        /// The message.
        msg: usize,
        /// Its position.
        position: Position,
        /// Index of the view (in its incarnation's `views`) it came in.
        view: usize,
        /// When.
        at: u64,
    },
    /// A group view.
    View {
        /// The group view.
        gv: GroupView,
        /// Index of the last started view of the incarnation.
        view: usize,
        /// When.
        at: u64,
    },
}

impl Rec {
    /// The view index it is attributed to.
    pub fn view(&self) -> usize {
        match self {
            Rec::Msg { view, .. } | Rec::View { view, .. } => *view,
        }
    }

    /// True for SERVER_LOST / PARTITION_MERGE: announced by an install,
    /// between two started views.
    pub fn is_transition(&self) -> bool {
        matches!(
            self,
            Rec::View { gv, .. } if matches!(gv.change, ChangeKind::ServerLost | ChangeKind::PartitionMerge)
        )
    }
}

/// One session.
#[derive(Clone, Debug)]
pub struct SessionLog {
    /// The simulated client (`None` for a server's watcher).
    pub client: Option<usize>,
    /// Server index.
    pub server: usize,
    /// Incarnation index (into [`History::incs`]).
    pub inc: usize,
    /// The core's id of it.
    pub id: SessionId,
    /// `#<client>#<server>`.
    pub private_name: String,
    /// Opened at.
    pub opened: u64,
    /// Closed at.
    pub closed: Option<u64>,
    /// Its publishes in order (indices into [`History::msgs`]).
    pub published: Vec<usize>,
    /// Acks: (time, position, message if identified).
    pub acks: Vec<(u64, Position, Option<usize>)>,
    /// What it was given, in order.
    pub events: Vec<Rec>,
}

/// One submitted publish.
#[derive(Clone, Debug)]
pub struct Msg {
    /// The publishing session.
    pub session: usize,
    /// Its counter in that session (from 1).
    pub counter: u64,
    /// The group index.
    pub group: usize,
    /// Submitted at.
    pub sent_at: u64,
    /// Acked: (view index in the origin incarnation, position, time).
    pub acked: Option<(usize, Position, u64)>,
    /// Acked by an install (its side's cut delivered it), not by the
    /// stable² point of normal operation: owed to its side only.
    pub acked_at_install: bool,
    /// A liveness probe.
    pub probe: bool,
}

/// Everything recorded.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// Server incarnations.
    pub incs: Vec<IncLog>,
    /// Sessions.
    pub sessions: Vec<SessionLog>,
    /// Publishes.
    pub msgs: Vec<Msg>,
    /// Install records seen in Install messages, by view.
    pub installs: std::collections::HashMap<ViewId, InstallRecord>,
    /// Highest `received` each member reported in each view (Progress).
    pub progress: std::collections::HashMap<(ViewId, ServerId), u64>,
    /// Largest Flush weight seen (bytes).
    pub max_flush_weight: usize,
    /// Largest Install weight seen (bytes).
    pub max_install_weight: usize,
}

impl History {
    /// The incarnation with this id.
    pub fn inc_of(&self, id: &ServerId) -> Option<usize> {
        self.incs.iter().position(|i| &i.id == id)
    }

    /// The publisher tag of a session (put in payloads).
    pub fn tag(session: usize) -> String {
        format!("s{session}")
    }

    /// The session index of a publisher tag.
    pub fn session_of_tag(tag: &str) -> Option<usize> {
        tag.strip_prefix('s')?.parse().ok()
    }
}
