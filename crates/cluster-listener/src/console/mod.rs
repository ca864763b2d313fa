//! Console fan-out, as Momentum's eccmgr does it (`eccluster.v1.Console`).
//!
//! * **Requests travel over the bus.** `Run` publishes a `ConsoleCommand` to
//!   the control group (`ec_console`) or, for a subcluster, to
//!   `ec_sc_<sc>`; every node has joined both, so one multicast reaches
//!   them all in the bus's order. Unicast verbs use the control group with a
//!   target node; the others ignore the command.
//! * **Replies travel directly.** A node that acts on a command with a
//!   `reply_to` calls `Console/Reply` on that address (the requester's
//!   ECCluster_Listener), the way `Ping` and moves reach nodes. Replies do not
//!   cross every node the way a reply group would.
//! * **Targets** are fixed when the command is sent, from the requester's
//!   membership: members of the control group, the nodes whose record names
//!   the subcluster, or the one node. The requester answers for itself
//!   locally (its session does not receive its own messages).
//! * **Deadline.** The retrieve verbs wait until every target replied or the
//!   deadline passed; the targets with no reply are `missing`.

pub mod cli;
pub mod commands;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prost::Message;
use proto::eccluster::v1::console_client::ConsoleClient;
use proto::eccluster::v1::console_server;
use proto::eccluster::v1::{
    ConsoleCommand, ConsoleReply, ConsoleReplyAck, ConsoleRequest, ConsoleResponse, ConsoleVerb,
    NodeReply,
};
use proto::msgc::v1::Delivery;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::error::ConsoleError;
use crate::service::NodeContext;
use commands::Answerer;

/// How long the retrieve verbs wait when the request names no deadline.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(5);
/// The longest deadline a request may ask for.
pub const MAX_DEADLINE: Duration = Duration::from_secs(120);
/// How long a node tries to hand its reply in.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// Deliveries queued for the console before new ones are dropped.
pub const INBOX: usize = 256;

/// The console of one node: sends commands, answers them, collects replies.
#[derive(Debug)]
pub struct Console {
    ctx: Arc<NodeContext>,
    answerer: Answerer,
    pending: Mutex<HashMap<u64, mpsc::Sender<NodeReply>>>,
    next_id: AtomicU64,
}

/// Where one request goes.
struct Plan {
    group: String,
    target_node: String,
    targets: Vec<String>,
    wait: bool,
}

impl Console {
    /// The console of the node `ctx` describes.
    pub fn new(ctx: Arc<NodeContext>, answerer: Answerer) -> Arc<Self> {
        // Ids start from the clock so a restarted node does not reuse them.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| u64::try_from(d.as_micros()).unwrap_or(1));
        Arc::new(Self {
            ctx,
            answerer,
            pending: Mutex::default(),
            next_id: AtomicU64::new(seed),
        })
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<u64, mpsc::Sender<NodeReply>>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Which group, which targets, and whether to wait, for `request`.
    fn plan(&self, request: &ConsoleRequest) -> Result<Plan, ConsoleError> {
        let cfg = &self.ctx.cfg;
        let verb = ConsoleVerb::try_from(request.verb).unwrap_or(ConsoleVerb::Unspecified);
        let snapshot = self.ctx.membership.snapshot();
        let mut targets: Vec<String> = Vec::new();
        let mut add = |name: &str| {
            if !targets.iter().any(|t| t == name) {
                targets.push(name.to_owned());
            }
        };
        let (group, target_node, wait) = match verb {
            ConsoleVerb::Broadcast | ConsoleVerb::Retrieve => {
                let wait = verb == ConsoleVerb::Retrieve;
                if request.subcluster.is_empty() {
                    for n in snapshot
                        .nodes
                        .iter()
                        .filter(|n| n.groups.contains(&cfg.control_group))
                    {
                        add(&n.node_name);
                    }
                    (cfg.control_group.clone(), String::new(), wait)
                } else {
                    for n in snapshot
                        .nodes
                        .iter()
                        .filter(|n| n.subcluster == request.subcluster)
                    {
                        add(&n.node_name);
                    }
                    (format!("ec_sc_{}", request.subcluster), String::new(), wait)
                }
            }
            ConsoleVerb::Unicast | ConsoleVerb::RetrieveNode => {
                if request.node.is_empty() {
                    return Err(ConsoleError::BadRequest(
                        "unicast and retrieve_node need `node`".into(),
                    ));
                }
                if !snapshot.nodes.iter().any(|n| n.node_name == request.node) {
                    return Err(ConsoleError::UnknownNode(request.node.clone()));
                }
                add(&request.node);
                (
                    cfg.control_group.clone(),
                    request.node.clone(),
                    verb == ConsoleVerb::RetrieveNode,
                )
            }
            ConsoleVerb::Unspecified => {
                return Err(ConsoleError::BadRequest(
                    "verb must be BROADCAST, RETRIEVE, UNICAST or RETRIEVE_NODE".into(),
                ));
            }
        };
        if !target_node.is_empty() && !request.subcluster.is_empty() {
            return Err(ConsoleError::BadRequest(
                "subcluster goes with broadcast and retrieve only".into(),
            ));
        }
        Ok(Plan {
            group,
            target_node,
            targets,
            wait,
        })
    }

    /// Sends `request` and, for the retrieve verbs, collects the replies.
    pub async fn run(&self, request: ConsoleRequest) -> Result<ConsoleResponse, ConsoleError> {
        if request.command.trim().is_empty() {
            return Err(ConsoleError::MissingCommand);
        }
        let plan = self.plan(&request)?;
        let request_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let me = self.answerer.node().to_owned();
        let (tx, mut rx) = mpsc::channel(plan.targets.len() + 8);
        if plan.wait {
            self.pending().insert(request_id, tx.clone());
        }
        let _unregister = Unregister {
            console: self,
            id: request_id,
        };
        let others = plan.targets.iter().any(|t| *t != me) || plan.targets.is_empty();
        if others {
            let command = ConsoleCommand {
                request_id,
                from_node: me.clone(),
                reply_to: if plan.wait {
                    self.ctx.address.clone()
                } else {
                    String::new()
                },
                target_node: plan.target_node.clone(),
                command: request.command.clone(),
            };
            self.ctx
                .membership
                .publish(&plan.group, command.encode_to_vec())
                .await
                .map_err(ConsoleError::NotOnBus)?;
        }
        if plan.targets.contains(&me) {
            let reply = self.answerer.execute(&request.command);
            if plan.wait {
                let _ = tx.try_send(reply);
            }
        }
        drop(tx);
        tracing::info!(request_id, group = %plan.group, targets = ?plan.targets, command = %request.command, "console command sent");
        let mut replies: Vec<NodeReply> = Vec::new();
        if plan.wait {
            let deadline = deadline(request.deadline_ms);
            let collect = async {
                while let Some(reply) = rx.recv().await {
                    if !replies.iter().any(|r| r.node == reply.node) {
                        replies.push(reply);
                    }
                    if plan
                        .targets
                        .iter()
                        .all(|t| replies.iter().any(|r| &r.node == t))
                    {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(deadline, collect).await;
        }
        Ok(respond(request_id, plan, replies))
    }

    /// Takes in a reply to a waiting request.
    pub fn reply(&self, reply: ConsoleReply) -> Result<(), ConsoleError> {
        let sender = self.pending().get(&reply.request_id).cloned();
        let (Some(sender), Some(node_reply)) = (sender, reply.reply) else {
            return Err(ConsoleError::NotWaiting(reply.request_id));
        };
        sender
            .try_send(node_reply)
            .map_err(|_| ConsoleError::NotWaiting(reply.request_id))
    }

    /// Acts on one delivery of the control or subcluster group.
    async fn on_delivery(self: &Arc<Self>, delivery: Delivery) {
        let command = match ConsoleCommand::decode(delivery.payload.clone()) {
            Ok(command) => command,
            Err(err) => {
                tracing::debug!(group = %delivery.group, sender = %delivery.sender, error = %err, "not a console command");
                return;
            }
        };
        let me = self.answerer.node();
        if command.from_node == me || (!command.target_node.is_empty() && command.target_node != me)
        {
            return;
        }
        tracing::info!(from = %command.from_node, request_id = command.request_id, command = %command.command, "console command");
        let reply = self.answerer.execute(&command.command);
        if command.reply_to.is_empty() {
            return;
        }
        let reply = ConsoleReply {
            request_id: command.request_id,
            reply: Some(reply),
        };
        let tls = self.ctx.tls_for(&command.from_node);
        tokio::spawn(send_reply(command.reply_to, command.from_node, tls, reply));
    }
}

/// Removes a request from the pending table when `run` ends, however it ends.
struct Unregister<'a> {
    console: &'a Console,
    id: u64,
}

impl Drop for Unregister<'_> {
    fn drop(&mut self) {
        self.console.pending().remove(&self.id);
    }
}

fn deadline(ms: u32) -> Duration {
    if ms == 0 {
        DEFAULT_DEADLINE
    } else {
        Duration::from_millis(u64::from(ms)).min(MAX_DEADLINE)
    }
}

/// The response: replies in target order (then any from non-targets), and
/// the targets that did not reply.
fn respond(request_id: u64, plan: Plan, mut replies: Vec<NodeReply>) -> ConsoleResponse {
    let position = |node: &str| {
        plan.targets
            .iter()
            .position(|t| t == node)
            .unwrap_or(usize::MAX)
    };
    replies.sort_by_key(|r| position(&r.node));
    let missing = if plan.wait {
        plan.targets
            .iter()
            .filter(|t| !replies.iter().any(|r| &r.node == *t))
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    ConsoleResponse {
        request_id,
        group: plan.group,
        targets: plan.targets,
        replies,
        missing,
    }
}

/// Hands `reply` in at the requester's listener.
async fn send_reply(
    address: String,
    requester: String,
    tls: Option<service_kit::tls::ClientTls>,
    reply: ConsoleReply,
) {
    let call = async {
        let channel =
            service_kit::endpoint::endpoint_with_timeout(&address, tls.as_ref(), REPLY_TIMEOUT)
                .map_err(|e| e.to_string())?
                .connect()
                .await
                .map_err(|e| service_kit::grpc::error_chain(&e))?;
        ConsoleClient::new(channel)
            .reply(reply)
            .await
            .map_err(|s| s.message().to_owned())
    };
    match tokio::time::timeout(REPLY_TIMEOUT, call).await {
        Ok(Ok(_)) => {}
        Ok(Err(err)) => {
            tracing::warn!(%requester, %address, error = %err, "console reply not delivered")
        }
        Err(_) => tracing::warn!(%requester, %address, "console reply timed out"),
    }
}

/// Reads the deliveries the msgc client hands over until `stop`.
pub async fn serve_inbox(
    console: Arc<Console>,
    mut deliveries: mpsc::Receiver<Delivery>,
    stop: CancellationToken,
) {
    loop {
        let delivery = tokio::select! {
            _ = stop.cancelled() => break,
            d = deliveries.recv() => match d { Some(d) => d, None => break },
        };
        console.on_delivery(delivery).await;
    }
}

/// The `eccluster.v1.Console` service.
#[derive(Debug, Clone)]
pub struct ConsoleService {
    console: Arc<Console>,
}

impl ConsoleService {
    /// Serves `console`.
    pub fn new(console: Arc<Console>) -> Self {
        Self { console }
    }
}

#[tonic::async_trait]
impl console_server::Console for ConsoleService {
    async fn run(
        &self,
        request: Request<ConsoleRequest>,
    ) -> Result<Response<ConsoleResponse>, Status> {
        Ok(Response::new(self.console.run(request.into_inner()).await?))
    }

    async fn reply(
        &self,
        request: Request<ConsoleReply>,
    ) -> Result<Response<ConsoleReplyAck>, Status> {
        self.console.reply(request.into_inner())?;
        Ok(Response::new(ConsoleReplyAck {}))
    }
}
