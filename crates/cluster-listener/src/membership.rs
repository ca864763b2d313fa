//! The node's msgc client: one task that keeps a session to an msgc server
//! (trying each address of `msgc_client.server` in turn), joins the cluster
//! groups with this node's record, and keeps the current membership from the
//! group views it receives.
//!
//! The membership is whatever the last view of each joined group says: the
//! nodes up are the members of `cluster_group` (leader first, as the bus
//! orders them), each with the node record it joined with and the groups (of
//! those this node has joined) it is a member of. When the session is lost the
//! views are dropped — this node no longer knows — and the task dials again
//! and rejoins by itself.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use msgc_client::{ClientTls, Events, Options, Session};
use proto::eccluster::v1::{MembershipResponse, NodeEntry};
use proto::msgc::v1::{Delivery, GroupView, NodeRecord, event};
use service_kit::grpc::error_chain;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::config::NodeConfig;

/// The state of this node's link to the bus.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkStatus {
    /// Address of the msgc server dialled last ("" before the first dial).
    pub server_addr: String,
    /// Name of the msgc server the session lives on ("" if none).
    pub server_name: String,
    /// True while a session is open.
    pub connected: bool,
    /// This node's private name on the bus ("" if no session).
    pub private_name: String,
    /// Why the link last went down or could not be made.
    pub last_error: String,
}

#[derive(Default)]
struct State {
    link: LinkStatus,
    views: BTreeMap<String, GroupView>,
    /// The open session, to publish with (console commands).
    session: Option<Session>,
}

struct Inner {
    cluster_group: String,
    state: RwLock<State>,
    joined: watch::Sender<bool>,
}

/// The cluster membership as this node sees it; cheap to clone and share.
#[derive(Clone)]
pub struct Membership {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Membership")
            .field("cluster_group", &self.inner.cluster_group)
            .finish_non_exhaustive()
    }
}

impl Membership {
    /// An empty membership of `cluster_group`.
    pub fn new(cluster_group: &str) -> Self {
        let (joined, _) = watch::channel(false);
        Self {
            inner: Arc::new(Inner {
                cluster_group: cluster_group.to_owned(),
                state: RwLock::default(),
                joined,
            }),
        }
    }

    // A panic while holding the lock cannot leave the state half-written in a
    // way that matters (every write replaces whole values), so poisoning is
    // ignored rather than spread.
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.inner
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.inner
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The state of the link to the bus.
    pub fn link(&self) -> LinkStatus {
        self.read().link.clone()
    }

    /// Becomes true once this node is a member of the cluster group, false
    /// again when its session is lost.
    pub fn joined(&self) -> watch::Receiver<bool> {
        self.inner.joined.subscribe()
    }

    /// Groups this node's session is a member of, by the views received.
    pub fn own_groups(&self) -> Vec<String> {
        let state = self.read();
        let me = &state.link.private_name;
        state
            .views
            .values()
            .filter(|v| !me.is_empty() && v.members.iter().any(|m| &m.private_name == me))
            .map(|v| v.group.clone())
            .collect()
    }

    /// The `cluster membership` table: members of the cluster group, leader first.
    pub fn snapshot(&self) -> MembershipResponse {
        let state = self.read();
        let group = &self.inner.cluster_group;
        let Some(view) = state.views.get(group) else {
            return MembershipResponse {
                cluster_group: group.clone(),
                ..Default::default()
            };
        };
        let nodes: Vec<NodeEntry> = view
            .members
            .iter()
            .enumerate()
            .map(|(i, member)| {
                let record = member.node.clone().unwrap_or_default();
                let groups = state
                    .views
                    .values()
                    .filter(|v| {
                        v.members
                            .iter()
                            .any(|m| m.private_name == member.private_name)
                    })
                    .map(|v| v.group.clone())
                    .collect();
                NodeEntry {
                    node_name: if record.node_name.is_empty() {
                        member.private_name.clone()
                    } else {
                        record.node_name
                    },
                    address: record.listener_address,
                    subcluster: record.subcluster,
                    node_type: record.node_type,
                    version: record.version,
                    private_name: member.private_name.clone(),
                    msgc_server: member.server.clone(),
                    groups,
                    is_leader: i == 0,
                }
            })
            .collect();
        MembershipResponse {
            cluster_group: group.clone(),
            gid: view.gid,
            leader: nodes
                .first()
                .map(|n| n.node_name.clone())
                .unwrap_or_default(),
            nodes,
        }
    }

    /// Node name of the cluster group's leader, if known.
    pub fn leader(&self) -> Option<String> {
        Some(self.snapshot().leader).filter(|l| !l.is_empty())
    }

    /// The member whose node name is `node` (the leader-most one if a node
    /// shows up twice, e.g. a stale session not yet reaped).
    pub fn lookup(&self, node: &str) -> Option<NodeEntry> {
        self.snapshot()
            .nodes
            .into_iter()
            .find(|n| n.node_name == node)
    }

    /// Multicasts `payload` to `group` through this node's session.
    pub async fn publish(&self, group: &str, payload: Vec<u8>) -> Result<(), String> {
        let session = self.read().session.clone();
        match session {
            Some(session) => session
                .publish(group, payload)
                .await
                .map_err(|e| e.to_string()),
            None => Err("this node has no msgc session".to_owned()),
        }
    }

    fn connected(&self, addr: &str, server: &str, private_name: &str, session: Option<Session>) {
        let mut state = self.write();
        state.session = session;
        state.link = LinkStatus {
            server_addr: addr.to_owned(),
            server_name: server.to_owned(),
            connected: true,
            private_name: private_name.to_owned(),
            last_error: state.link.last_error.clone(),
        };
        state.views.clear();
    }

    fn disconnected(&self, addr: &str, error: &str) {
        let mut state = self.write();
        state.link.server_addr = addr.to_owned();
        state.link.server_name.clear();
        state.link.private_name.clear();
        state.link.connected = false;
        state.link.last_error = error.to_owned();
        state.views.clear();
        state.session = None;
        drop(state);
        self.inner.joined.send_replace(false);
    }

    /// Takes in a new view of a group.
    fn apply_view(&self, view: GroupView) {
        let mut state = self.write();
        if view.group == self.inner.cluster_group {
            let me = &state.link.private_name;
            let member = view.members.iter().any(|m| &m.private_name == me);
            self.inner
                .joined
                .send_if_modified(|joined| std::mem::replace(joined, member) != member);
        }
        state.views.insert(view.group.clone(), view);
    }
}

/// How a session ended.
enum Ended {
    /// The node is shutting down.
    Shutdown,
    /// The session was open and then lost.
    Lost(String),
}

/// The record this node joins with.
pub fn node_record(cfg: &NodeConfig, listener_address: &str) -> NodeRecord {
    NodeRecord {
        node_name: cfg.nodename.clone(),
        subcluster: cfg.subcluster.clone(),
        node_type: cfg.node_type.clone(),
        version: crate::VERSION.to_owned(),
        listener_address: listener_address.to_owned(),
    }
}

/// The `<client>` part of this node's private name: the node name, cut to
/// what the bus accepts (1-32 bytes of `[A-Za-z0-9._-]`).
pub fn client_name(nodename: &str) -> String {
    let name: String = nodename
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(32)
        .collect();
    if name.is_empty() {
        "node".to_owned()
    } else {
        name
    }
}

/// Where the msgc client task hands what it receives besides views.
#[derive(Debug, Clone)]
pub struct Inbox {
    /// Deliveries on the control and subcluster groups (console commands);
    /// dropped with a warning when the reader falls this far behind.
    pub deliveries: mpsc::Sender<Delivery>,
}

/// Runs the msgc client until `shutdown`: connect, join, follow the views,
/// hand deliveries to `inbox`, and on loss dial the next server.
pub async fn run(
    cfg: Arc<NodeConfig>,
    tls: Option<ClientTls>,
    record: NodeRecord,
    membership: Membership,
    inbox: Inbox,
    shutdown: CancellationToken,
) {
    let servers = cfg.msgc.servers.clone();
    if servers.is_empty() {
        tracing::error!("msgc_client has no server: this node cannot join the cluster");
        return;
    }
    let mut next = 0usize;
    let mut failed_in_a_row = 0usize;
    while !shutdown.is_cancelled() {
        let addr = &servers[next % servers.len()];
        next = next.wrapping_add(1);
        match session(
            &cfg,
            tls.as_ref(),
            &record,
            &membership,
            &inbox,
            addr,
            &shutdown,
        )
        .await
        {
            Ok(Ended::Shutdown) => break,
            Ok(Ended::Lost(reason)) => {
                tracing::warn!(server = %addr, %reason, "msgc session lost; reconnecting");
                membership.disconnected(addr, &reason);
                failed_in_a_row = 0;
            }
            Err(reason) => {
                tracing::warn!(server = %addr, %reason, "cannot open an msgc session");
                membership.disconnected(addr, &reason);
                failed_in_a_row += 1;
            }
        }
        // Every server refused in turn: wait before the next round.
        if failed_in_a_row >= servers.len() || servers.len() == 1 {
            failed_in_a_row = 0;
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(cfg.msgc.reconnect_interval) => {}
            }
        }
    }
    let link = membership.link();
    membership.disconnected(&link.server_addr, "shutting down");
}

/// Dials `addr` and opens a session carrying this node's record.
async fn open(
    cfg: &NodeConfig,
    tls: Option<&ClientTls>,
    record: &NodeRecord,
    addr: &str,
) -> Result<(Session, Events), String> {
    let msgc = &cfg.msgc;
    let endpoint = service_kit::endpoint::endpoint(addr, tls)
        .map_err(|e| e.to_string())?
        .connect_timeout(msgc.connect_timeout)
        .http2_keep_alive_interval(msgc.keepalive_interval)
        .keep_alive_timeout(msgc.keepalive_interval * 3)
        .keep_alive_while_idle(true)
        .local_address(msgc.bind_address);
    let options = Options {
        client_name: client_name(&cfg.nodename),
        no_self_delivery: true,
        node: Some(record.clone()),
        queue: 0,
    };
    let open = async {
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| format!("cannot connect to {addr}: {}", error_chain(&e)))?;
        Session::open(channel, options)
            .await
            .map_err(|e| e.to_string())
    };
    tokio::time::timeout(msgc.connect_timeout + Duration::from_millis(100), open)
        .await
        .map_err(|_| format!("no welcome from {addr} within {:?}", msgc.connect_timeout))?
}

/// One session: dial, hello, join every group, then follow events until the
/// session ends. `Err` when the session could not be opened at all.
async fn session(
    cfg: &NodeConfig,
    tls: Option<&ClientTls>,
    record: &NodeRecord,
    membership: &Membership,
    inbox: &Inbox,
    addr: &str,
    shutdown: &CancellationToken,
) -> Result<Ended, String> {
    let (session, mut events): (Session, Events) = tokio::select! {
        _ = shutdown.cancelled() => return Ok(Ended::Shutdown),
        opened = open(cfg, tls, record, addr) => opened?,
    };
    let welcome = session.welcome().clone();
    membership.connected(
        addr,
        &welcome.server,
        &welcome.private_name,
        Some(session.clone()),
    );
    tracing::info!(server = %addr, name = %welcome.private_name, "msgc session open");
    for group in cfg.groups() {
        if let Err(e) = session.join(&group, Vec::new()).await {
            return Ok(Ended::Lost(format!("joining {group}: {e}")));
        }
    }
    loop {
        let frame = tokio::select! {
            _ = shutdown.cancelled() => return Ok(Ended::Shutdown),
            frame = events.next_frame() => frame,
        };
        match frame {
            Ok(Some(frame)) => {
                for event in frame.events {
                    dispatch(membership, inbox, event.kind);
                }
            }
            Ok(None) => return Ok(Ended::Lost(format!("{addr} ended the session"))),
            Err(e) => return Ok(Ended::Lost(e.to_string())),
        }
    }
}

/// Views go to the membership, deliveries to the inbox.
fn dispatch(membership: &Membership, inbox: &Inbox, event: Option<event::Kind>) {
    match event {
        Some(event::Kind::View(view)) => {
            tracing::debug!(group = %view.group, gid = view.gid, members = view.members.len(), "group view");
            membership.apply_view(view);
        }
        Some(event::Kind::Delivery(d)) => {
            tracing::debug!(group = %d.group, sender = %d.sender, "delivery");
            if let Err(err) = inbox.deliveries.try_send(d) {
                tracing::warn!(error = %err, "console inbox full: delivery dropped");
            }
        }
        Some(event::Kind::Welcome(_)) | None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::msgc::v1::Member;

    fn member(name: &str, server: &str) -> Member {
        Member {
            private_name: format!("#{name}#{server}"),
            server: server.to_owned(),
            capabilities: Default::default(),
            node: Some(NodeRecord {
                node_name: name.to_owned(),
                subcluster: "default".to_owned(),
                node_type: "node".to_owned(),
                version: "1".to_owned(),
                listener_address: format!("127.0.0.1:{}", 4800 + name.len()),
            }),
        }
    }

    fn view(group: &str, gid: u32, members: &[Member]) -> GroupView {
        GroupView {
            group: group.to_owned(),
            gid,
            members: members.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn membership_follows_views_leader_first_with_groups() {
        let m = Membership::new("ec_cluster");
        let mut joined = m.joined();
        m.connected("127.0.0.1:4809", "s1", "#n1#s1", None);
        let (n1, n2, n3) = (member("n1", "s1"), member("n2", "s2"), member("n3", "s3"));
        m.apply_view(view("ec_cluster", 1, std::slice::from_ref(&n2)));
        assert!(!*joined.borrow_and_update());
        m.apply_view(view("ec_cluster", 2, &[n2.clone(), n1.clone(), n3.clone()]));
        assert!(*joined.borrow_and_update());
        m.apply_view(view("ec_console", 7, &[n1.clone(), n3.clone()]));

        let snap = m.snapshot();
        assert_eq!(snap.gid, 2);
        assert_eq!(snap.leader, "n2");
        let names: Vec<&str> = snap.nodes.iter().map(|n| n.node_name.as_str()).collect();
        assert_eq!(names, ["n2", "n1", "n3"]);
        assert!(snap.nodes[0].is_leader && !snap.nodes[1].is_leader);
        assert_eq!(snap.nodes[2].groups, ["ec_cluster", "ec_console"]);
        assert_eq!(snap.nodes[0].groups, ["ec_cluster"]);
        assert_eq!(m.lookup("n3").unwrap().msgc_server, "s3");
        assert!(m.lookup("n9").is_none());
        assert_eq!(m.own_groups(), ["ec_cluster", "ec_console"]);

        // The leader leaves: the next member leads.
        m.apply_view(view("ec_cluster", 3, &[n1.clone(), n3.clone()]));
        assert_eq!(m.leader().as_deref(), Some("n1"));

        // Losing the session forgets everything and leaves the group.
        m.disconnected("127.0.0.1:4809", "gone");
        assert!(!*joined.borrow_and_update());
        assert!(m.snapshot().nodes.is_empty());
        assert!(!m.link().connected);
        assert_eq!(m.link().last_error, "gone");
    }

    #[test]
    fn client_names_are_what_the_bus_accepts() {
        assert_eq!(client_name("node1"), "node1");
        assert_eq!(client_name("mta 1#x"), "mta_1_x");
        assert_eq!(client_name(&"a".repeat(40)).len(), 32);
        assert_eq!(client_name(""), "node");
    }
}
