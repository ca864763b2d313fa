//! The full mesh: one gRPC `Link` stream per pair of servers, dialled by the
//! server whose name sorts lower and accepted by the other, both ends handing
//! messages to the driver. Dialling retries every `reconnect_interval`.
//!
//! With `peer_tls` (TLS on `msgcserver_listener`), links are dialled over
//! mutual TLS, the dialler checking the peer's certificate names the peer it
//! dialled, the acceptor that it names the peer the hello claims.
//!
//! Peer messages are converted at this edge ([`crate::driver::wire`]): the
//! reading task decodes frames into `msgc_core::PeerMsg`s (a malformed frame
//! ends the link), and the response stream encodes what the driver queued.

use std::sync::Arc;
use std::time::Duration;

use msgc_core::{LinkId, PeerMsg, ServerId, ServerName};
use proto::msgc::v1::mesh_client::MeshClient;
use proto::msgc::v1::{PeerFrame, PeerHello, PeerMessage, peer_message::Kind};
use service_kit::tls::{ClientTls, PeerIdentity};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status, Streaming};

use crate::config::ServerConfig;
use crate::driver::wire::{self, Names};
use crate::driver::{CoreHandle, CoreInput, Input};
use crate::outbox::{FrameLimits, FrameStream, Outbox};

/// Most messages in one peer frame.
const FRAME_MESSAGES: usize = 256;
/// A peer frame stops growing past this many bytes.
const FRAME_BYTES: usize = 1 << 20;
/// Peer frames may be large (a view change carries group tables).
pub(crate) const MAX_PEER_FRAME: usize = 1 << 30;

/// Encodes a batch of queued peer messages into one frame.
type EncodeFrame = fn(Vec<PeerMsg>) -> Option<PeerFrame>;

/// The stream of frames for a peer: its hello, then what the driver queues
/// (encoded here, off the driver's task).
pub struct PeerStream {
    hello: Option<PeerMessage>,
    queued: FrameStream<PeerMsg, EncodeFrame>,
}

fn encode_frame(msgs: Vec<PeerMsg>) -> Option<PeerFrame> {
    (!msgs.is_empty()).then(|| PeerFrame {
        messages: msgs.into_iter().map(wire::encode).collect(),
    })
}

impl PeerStream {
    fn new(outbox: Arc<Outbox<PeerMsg>>, hello: PeerMessage) -> Self {
        let limits = FrameLimits {
            max_items: FRAME_MESSAGES,
            max_bytes: FRAME_BYTES,
            size_of: PeerMsg::weight,
        };
        let encode = encode_frame as EncodeFrame;
        Self {
            hello: Some(hello),
            queued: FrameStream::new(outbox, limits, encode),
        }
    }
}

impl futures::Stream for PeerStream {
    type Item = Result<PeerFrame, Status>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        if let Some(hello) = self.hello.take() {
            let frame = PeerFrame {
                messages: vec![hello],
            };
            return std::task::Poll::Ready(Some(Ok(frame)));
        }
        std::pin::Pin::new(&mut self.queued).poll_next(cx)
    }
}

fn peer_outbox(cfg: &ServerConfig) -> Arc<Outbox<PeerMsg>> {
    Outbox::with_byte_limit(cfg.max_backlog, cfg.max_peer_bytes)
}

/// Who this server is on the mesh.
#[derive(Clone)]
pub struct MeshIdentity {
    cfg: Arc<ServerConfig>,
    incarnation: u64,
    digest: String,
    names: Arc<Names>,
    /// Loaded `peer_tls`: dial peers over TLS, and accept only TLS links
    /// whose certificate names the peer.
    tls: Option<ClientTls>,
}

impl MeshIdentity {
    /// This server's identity for hellos; `tls` is the loaded `peer_tls`.
    pub fn new(cfg: Arc<ServerConfig>, incarnation: u64, tls: Option<ClientTls>) -> Self {
        let digest = cfg.cluster_digest();
        let names = Arc::new(Names::new(cfg.peers.keys().map(String::as_str)));
        Self {
            cfg,
            incarnation,
            digest,
            names,
            tls,
        }
    }

    /// With TLS on the mesh, an accepted link must come over TLS with a
    /// client certificate (verified by the listener against its `tls_ca`)
    /// that names the peer its hello claims (a DNS subject alternative name
    /// equal to the peer name). Without TLS on the mesh, anything goes, as
    /// in Momentum.
    fn check_certificate(&self, conn: &PeerIdentity, claimed: &str) -> Result<(), Status> {
        if self.tls.is_none() {
            return Ok(());
        }
        let reason = match conn {
            PeerIdentity::Certificate(_) if conn.names(claimed) => return Ok(()),
            PeerIdentity::Certificate(_) => "its certificate does not name that peer",
            PeerIdentity::Anonymous => "it presented no client certificate",
            PeerIdentity::Plaintext => "it is not TLS, and this mesh runs TLS",
        };
        Err(Status::permission_denied(format!(
            "peer link claiming to be {claimed:?} refused: {reason}"
        )))
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

    /// The peer's id from its hello (a known name: see [`MeshIdentity::check`]).
    fn peer_of(&self, hello: &PeerHello) -> Result<ServerId, Status> {
        let name = self
            .names
            .get(&hello.name)
            .map_err(|e| Status::permission_denied(e.to_string()))?;
        Ok(ServerId {
            name,
            incarnation: hello.incarnation,
        })
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

/// A link as the mesh tasks see it.
struct LinkCtx {
    core: CoreHandle,
    names: Arc<Names>,
    peer: ServerName,
    link: LinkId,
    /// Cancelled when the driver closes the link.
    closed: CancellationToken,
    stop: CancellationToken,
}

impl LinkCtx {
    /// Registers a handshaken link with the driver.
    fn up(
        core: &CoreHandle,
        identity: &MeshIdentity,
        peer: ServerId,
        outbox: Arc<Outbox<PeerMsg>>,
        stop: &CancellationToken,
    ) -> Self {
        let link = core.new_link_id();
        let closed = CancellationToken::new();
        core.send(Input::LinkUp {
            peer: peer.clone(),
            link,
            outbox,
            closed: closed.clone(),
        });
        Self {
            core: core.clone(),
            names: identity.names.clone(),
            peer: peer.name,
            link,
            closed,
            stop: stop.clone(),
        }
    }

    /// Hands messages to the driver until the link ends, then reports the end.
    async fn pump(self, mut inbound: Streaming<PeerFrame>) {
        let Self {
            core,
            names,
            peer,
            link,
            closed,
            stop,
        } = self;
        let reason = loop {
            let frame = tokio::select! {
                frame = inbound.message() => frame,
                _ = closed.cancelled() => break "closed by this server".to_owned(),
                _ = stop.cancelled() => break "server stopping".to_owned(),
            };
            let frame = match frame {
                Ok(Some(frame)) => frame,
                Ok(None) => break "peer closed the link".to_owned(),
                Err(status) => break format!("link error: {}", status.message()),
            };
            match names.decode_frame(frame) {
                Ok(msgs) if msgs.is_empty() => {}
                Ok(msgs) => {
                    let peer = peer.clone();
                    if !core.send(CoreInput::Peer { peer, link, msgs }) {
                        break "server stopping".to_owned();
                    }
                }
                Err(err) => {
                    tracing::warn!(peer = %peer, error = %err, "malformed peer frame");
                    break format!("malformed frame: {err}");
                }
            }
        };
        core.send(Input::LinkDown { peer, link, reason });
    }
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
        let conn = PeerIdentity::of(&request);
        let mut inbound = request.into_inner();
        let hello = read_hello(&mut inbound).await?;
        let checked = self
            .identity
            .check(&hello)
            .and_then(|()| self.identity.check_certificate(&conn, &hello.name));
        if let Err(status) = checked {
            tracing::warn!(peer = %hello.name, error = %status.message(), "refused a peer");
            return Err(status);
        }
        let peer = self.identity.peer_of(&hello)?;
        let outbox = peer_outbox(&self.identity.cfg);
        let stream = PeerStream::new(outbox.clone(), self.identity.hello());
        let ctx = LinkCtx::up(&self.core, &self.identity, peer, outbox, &self.stop);
        self.tasks.spawn(ctx.pump(inbound));
        Ok(Response::new(stream))
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
    let tls = identity.tls.as_ref().map(|tls| tls.for_server(peer));
    let endpoint = service_kit::endpoint::endpoint(addr, tls.as_ref())
        .map_err(|e| Status::invalid_argument(e.to_string()))?
        .connect_timeout(cfg.connect_timeout)
        .initial_stream_window_size(window.max(1 << 20))
        .initial_connection_window_size(window.max(1 << 20))
        .http2_keep_alive_interval(cfg.keepalive_interval.max(Duration::from_secs(1)))
        .keep_alive_while_idle(true);
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| Status::unavailable(service_kit::grpc::error_chain(&e)))?;
    let mut client = MeshClient::new(channel).max_decoding_message_size(MAX_PEER_FRAME);
    let outbox = peer_outbox(cfg);
    use futures::StreamExt;
    let outbound = PeerStream::new(outbox.clone(), identity.hello())
        .filter_map(|frame| futures::future::ready(frame.ok()));
    let mut inbound = client.link(outbound).await?.into_inner();
    let hello = read_hello(&mut inbound).await?;
    if hello.name != peer {
        return Err(Status::permission_denied(format!(
            "dialled {peer:?} at {addr} but {:?} answered",
            hello.name
        )));
    }
    identity.check(&hello)?;
    let peer = identity.peer_of(&hello)?;
    let ctx = LinkCtx::up(core, identity, peer, outbox, stop);
    let ended = CancellationToken::new();
    let done = ended.clone();
    tasks.spawn(async move {
        ctx.pump(inbound).await;
        done.cancel();
    });
    Ok(ended)
}
