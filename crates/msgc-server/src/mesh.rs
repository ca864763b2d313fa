//! The full mesh: one gRPC `Link` stream per pair of servers, dialled by the
//! server whose name sorts lower and accepted by the other, both ends handing
//! frames to the core. Dialling retries every `reconnect_interval`.

use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use proto::msgc::v1::mesh_client::MeshClient;
use proto::msgc::v1::{PeerFrame, PeerHello, PeerMessage, peer_message::Kind};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status, Streaming};

use crate::config::ServerConfig;
use crate::core::{CoreHandle, Input};
use crate::outbox::{FrameLimits, FrameStream, Outbox};

/// Most messages in one peer frame.
const FRAME_MESSAGES: usize = 256;
/// A peer frame stops growing past this many bytes.
const FRAME_BYTES: usize = 1 << 20;
/// Peer frames may be large (a view change carries retained ops).
pub(crate) const MAX_PEER_FRAME: usize = 1 << 30;

type PeerStream = FrameStream<PeerMessage, fn(Vec<PeerMessage>) -> Option<PeerFrame>>;

fn frame_of(messages: Vec<PeerMessage>) -> Option<PeerFrame> {
    (!messages.is_empty()).then_some(PeerFrame { messages })
}

fn peer_stream(outbox: Arc<Outbox<PeerMessage>>) -> PeerStream {
    let limits = FrameLimits {
        max_items: FRAME_MESSAGES,
        max_bytes: FRAME_BYTES,
        size_of: PeerMessage::encoded_len,
    };
    FrameStream::new(
        outbox,
        limits,
        frame_of as fn(Vec<PeerMessage>) -> Option<PeerFrame>,
    )
}

/// Who this server is on the mesh.
#[derive(Clone)]
pub struct MeshIdentity {
    cfg: Arc<ServerConfig>,
    incarnation: u64,
    digest: String,
}

impl MeshIdentity {
    /// This server's identity for hellos.
    pub fn new(cfg: Arc<ServerConfig>, incarnation: u64) -> Self {
        let digest = cfg.cluster_digest();
        Self {
            cfg,
            incarnation,
            digest,
        }
    }

    fn hello(&self) -> PeerMessage {
        PeerMessage {
            kind: Some(Kind::Hello(PeerHello {
                name: self.cfg.name.clone(),
                cluster_digest: self.digest.clone(),
                incarnation: self.incarnation,
            })),
        }
    }

    /// Checks a peer's hello: a known name, not ours, and the same peer list.
    fn check(&self, hello: &PeerHello) -> Result<(), Status> {
        if hello.name == self.cfg.name || !self.cfg.peers.contains_key(&hello.name) {
            return Err(Status::permission_denied(format!(
                "peer name {:?} is not in this server's peers (this is {:?})",
                hello.name, self.cfg.name
            )));
        }
        if hello.cluster_digest != self.digest {
            return Err(Status::failed_precondition(format!(
                "peer {:?} has a different msgc_server peers list (digest {} here, {} there); \
                 msgc_server.conf must be identical on every server",
                hello.name, self.digest, hello.cluster_digest
            )));
        }
        Ok(())
    }
}

/// Reads the first frame of a link, which must open with a hello.
async fn read_hello(inbound: &mut Streaming<PeerFrame>) -> Result<PeerHello, Status> {
    let frame = inbound
        .message()
        .await?
        .ok_or_else(|| Status::invalid_argument("link closed before its hello"))?;
    match frame.messages.into_iter().next().and_then(|m| m.kind) {
        Some(Kind::Hello(hello)) => Ok(hello),
        _ => Err(Status::invalid_argument("a link must open with a hello")),
    }
}

/// Hands frames to the core until the link ends, then reports the end.
async fn pump(
    core: CoreHandle,
    peer: String,
    link: u64,
    mut inbound: Streaming<PeerFrame>,
    stop: CancellationToken,
) {
    let reason = loop {
        tokio::select! {
            frame = inbound.message() => match frame {
                Ok(Some(frame)) => {
                    if !core.send(Input::Peer { peer: peer.clone(), link, frame }) {
                        break "server stopping".to_owned();
                    }
                }
                Ok(None) => break "peer closed the link".to_owned(),
                Err(status) => break format!("link error: {}", status.message()),
            },
            _ = stop.cancelled() => break "server stopping".to_owned(),
        }
    };
    core.send(Input::LinkDown { peer, link, reason });
}

/// The accepting side of links: the `msgc.v1.Mesh` service.
pub struct MeshService {
    core: CoreHandle,
    identity: MeshIdentity,
    tasks: TaskTracker,
    stop: CancellationToken,
}

impl MeshService {
    /// Serves links for `core`.
    pub fn new(
        core: CoreHandle,
        identity: MeshIdentity,
        tasks: TaskTracker,
        stop: CancellationToken,
    ) -> Self {
        Self {
            core,
            identity,
            tasks,
            stop,
        }
    }
}

#[tonic::async_trait]
impl proto::msgc::v1::mesh_server::Mesh for MeshService {
    type LinkStream = PeerStream;

    async fn link(
        &self,
        request: Request<Streaming<PeerFrame>>,
    ) -> Result<Response<Self::LinkStream>, Status> {
        let mut inbound = request.into_inner();
        let hello = read_hello(&mut inbound).await?;
        if let Err(status) = self.identity.check(&hello) {
            tracing::warn!(peer = %hello.name, error = %status.message(), "refused a peer");
            return Err(status);
        }
        let outbox = Outbox::new(self.identity.cfg.max_backlog);
        let _ = outbox.push(self.identity.hello(), 1);
        let link = self.core.new_link_id();
        self.core.send(Input::LinkUp {
            peer: hello.name.clone(),
            incarnation: hello.incarnation,
            link,
            outbox: outbox.clone(),
        });
        self.tasks.spawn(pump(
            self.core.clone(),
            hello.name,
            link,
            inbound,
            self.stop.clone(),
        ));
        Ok(Response::new(peer_stream(outbox)))
    }
}

/// Starts one dialler per peer whose name sorts above ours.
pub fn spawn_dialers(
    core: &CoreHandle,
    identity: &MeshIdentity,
    tasks: &TaskTracker,
    stop: &CancellationToken,
) {
    for (peer, addr) in identity.cfg.others() {
        if *peer > identity.cfg.name {
            tasks.spawn(dial_loop(
                core.clone(),
                identity.clone(),
                peer.clone(),
                addr.clone(),
                tasks.clone(),
                stop.clone(),
            ));
        }
    }
}

async fn dial_loop(
    core: CoreHandle,
    identity: MeshIdentity,
    peer: String,
    addr: String,
    tasks: TaskTracker,
    stop: CancellationToken,
) {
    let cfg = identity.cfg.clone();
    loop {
        match dial_once(&core, &identity, &peer, &addr, &tasks, &stop).await {
            Ok(ended) => {
                // Wait for this link to end before dialling again.
                tokio::select! {
                    _ = ended.cancelled() => {}
                    _ = stop.cancelled() => return,
                }
            }
            Err(err) => tracing::debug!(peer = %peer, %addr, error = %err, "dial failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(cfg.reconnect_interval) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// Dials a peer once; on success returns a token cancelled when the link ends.
async fn dial_once(
    core: &CoreHandle,
    identity: &MeshIdentity,
    peer: &str,
    addr: &str,
    tasks: &TaskTracker,
    stop: &CancellationToken,
) -> Result<CancellationToken, Status> {
    let cfg = &identity.cfg;
    let window = u32::try_from(cfg.tcpbuf_size.max(65_535)).unwrap_or(u32::MAX);
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| Status::invalid_argument(format!("bad peer address {addr:?}: {e}")))?
        .connect_timeout(cfg.connect_timeout)
        .tcp_nodelay(true)
        .initial_stream_window_size(window.max(1 << 20))
        .initial_connection_window_size(window.max(1 << 20))
        .http2_keep_alive_interval(cfg.keepalive_interval.max(Duration::from_secs(1)))
        .keep_alive_while_idle(true);
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let mut client = MeshClient::new(channel).max_decoding_message_size(MAX_PEER_FRAME);
    let outbox = Outbox::new(cfg.max_backlog);
    let _ = outbox.push(identity.hello(), 1);
    use futures::StreamExt;
    let outbound =
        peer_stream(outbox.clone()).filter_map(|frame| futures::future::ready(frame.ok()));
    let mut inbound = client.link(outbound).await?.into_inner();
    let hello = read_hello(&mut inbound).await?;
    if hello.name != peer {
        return Err(Status::permission_denied(format!(
            "dialled {peer:?} at {addr} but {:?} answered",
            hello.name
        )));
    }
    identity.check(&hello)?;
    let link = core.new_link_id();
    core.send(Input::LinkUp {
        peer: peer.to_owned(),
        incarnation: hello.incarnation,
        link,
        outbox,
    });
    let ended = CancellationToken::new();
    let done = ended.clone();
    let core = core.clone();
    let peer = peer.to_owned();
    let stop = stop.clone();
    tasks.spawn(async move {
        pump(core, peer, link, inbound, stop).await;
        done.cancel();
    });
    Ok(ended)
}
