//! `eccluster.v1.Node`, served on the ECCluster_Listener: `Info` (Momentum's
//! `cluster info`), `Membership` (`cluster membership`), `Ping` (look a node
//! up in the membership, call its listener directly, report the round trip)
//! and `Echo` (what `Ping` calls).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use proto::eccluster::v1::node_client::NodeClient;
use proto::eccluster::v1::node_server::Node;
use proto::eccluster::v1::{
    EchoRequest, EchoResponse, InfoRequest, MembershipRequest, MembershipResponse, NodeInfo,
    PingRequest, PingResponse,
};
use service_kit::grpc::error_chain;
use service_kit::tls::ClientTls;
use tonic::{Request, Response, Status};

use crate::config::NodeConfig;
use crate::error::NodeError;
use crate::membership::Membership;

/// How long a ping may take, dial included.
pub const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// What the service knows about this node.
#[derive(Debug)]
pub struct NodeContext {
    /// The configuration the node runs with.
    pub cfg: Arc<NodeConfig>,
    /// The cluster as this node sees it.
    pub membership: Membership,
    /// When the node started.
    pub started: Instant,
    /// Every bound listen address.
    pub listen_addresses: Vec<String>,
    /// `nodeaddr:port`, advertised to peers ("" if no TCP listener).
    pub address: String,
    /// Loaded `dial_tls`: how this node dials other nodes' listeners.
    pub dial_tls: Option<ClientTls>,
    /// Loaded `msgc_client` TLS: how this node dials the bus.
    pub msgc_tls: Option<ClientTls>,
}

impl NodeContext {
    /// The TLS to dial `node` with: its certificate must name it.
    pub fn tls_for(&self, node: &str) -> Option<ClientTls> {
        self.dial_tls.as_ref().map(|tls| tls.for_server(node))
    }

    /// The listener address `node` advertises in this node's membership.
    pub fn address_of(&self, node: &str) -> Result<String, NodeError> {
        if node.is_empty() {
            return Err(NodeError::MissingNode);
        }
        let entry = self
            .membership
            .lookup(node)
            .ok_or_else(|| NodeError::UnknownNode(node.to_owned()))?;
        if entry.address.is_empty() {
            return Err(NodeError::NoAddress(node.to_owned()));
        }
        Ok(entry.address)
    }
}

/// The `eccluster.v1.Node` service.
#[derive(Debug, Clone)]
pub struct NodeService {
    ctx: Arc<NodeContext>,
    nonce: Arc<AtomicU64>,
}

impl NodeService {
    /// Serves `ctx`.
    pub fn new(ctx: Arc<NodeContext>) -> Self {
        // Nonces start from the clock so two runs of a node do not repeat them.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| u64::try_from(d.as_micros()).unwrap_or(1));
        Self {
            ctx,
            nonce: Arc::new(AtomicU64::new(seed)),
        }
    }

    /// Looks `node` up, dials its listener, calls Echo, and times the call.
    async fn ping(&self, node: &str) -> Result<PingResponse, NodeError> {
        let address = self.ctx.address_of(node)?;
        let unreachable = |reason: String| NodeError::Unreachable {
            node: node.to_owned(),
            address: address.clone(),
            reason,
        };
        let tls = self.ctx.tls_for(node);
        let endpoint =
            service_kit::endpoint::endpoint_with_timeout(&address, tls.as_ref(), PING_TIMEOUT)
                .map_err(|e| unreachable(e.to_string()))?;
        let channel = tokio::time::timeout(PING_TIMEOUT, endpoint.connect())
            .await
            .map_err(|_| unreachable(format!("no connection within {PING_TIMEOUT:?}")))?
            .map_err(|e| unreachable(error_chain(&e)))?;
        let nonce = self.nonce.fetch_add(1, Ordering::Relaxed);
        let request = EchoRequest {
            from: self.ctx.cfg.nodename.clone(),
            nonce,
        };
        let start = Instant::now();
        let reply = NodeClient::new(channel)
            .echo(request)
            .await
            .map_err(|status| unreachable(format!("Echo failed: {}", status.message())))?
            .into_inner();
        let rtt = start.elapsed();
        if reply.node != node || reply.nonce != nonce {
            return Err(NodeError::WrongNode {
                node: node.to_owned(),
                address,
                answered: reply.node,
            });
        }
        Ok(PingResponse {
            node: node.to_owned(),
            address,
            rtt_us: u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX),
        })
    }
}

/// A transport error with its causes, which tonic keeps in the source chain.
#[tonic::async_trait]
impl Node for NodeService {
    async fn info(&self, _request: Request<InfoRequest>) -> Result<Response<NodeInfo>, Status> {
        let ctx = &self.ctx;
        let cfg = &ctx.cfg;
        let link = ctx.membership.link();
        Ok(Response::new(NodeInfo {
            node_name: cfg.nodename.clone(),
            address: ctx.address.clone(),
            subcluster: cfg.subcluster.clone(),
            node_type: cfg.node_type.clone(),
            version: crate::VERSION.to_owned(),
            uptime_seconds: ctx.started.elapsed().as_secs(),
            listen_addresses: ctx.listen_addresses.clone(),
            msgc_server: if link.connected {
                link.server_addr.clone()
            } else {
                String::new()
            },
            msgc_connected: link.connected,
            msgc_private_name: link.private_name.clone(),
            cluster_leader: ctx.membership.leader().unwrap_or_default(),
            logs: cfg.logs.clone().into_iter().collect(),
            msgc_server_name: link.server_name,
            msgc_last_error: link.last_error,
            cluster_group: cfg.cluster_group.clone(),
            groups: ctx.membership.own_groups(),
        }))
    }

    async fn membership(
        &self,
        _request: Request<MembershipRequest>,
    ) -> Result<Response<MembershipResponse>, Status> {
        Ok(Response::new(self.ctx.membership.snapshot()))
    }

    async fn ping(&self, request: Request<PingRequest>) -> Result<Response<PingResponse>, Status> {
        let node = request.into_inner().node;
        let reply = NodeService::ping(self, &node).await?;
        tracing::debug!(node = %reply.node, rtt_us = reply.rtt_us, "ping");
        Ok(Response::new(reply))
    }

    async fn echo(&self, request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Status> {
        let request = request.into_inner();
        tracing::debug!(from = %request.from, nonce = request.nonce, "echo");
        Ok(Response::new(EchoResponse {
            node: self.ctx.cfg.nodename.clone(),
            nonce: request.nonce,
        }))
    }
}
