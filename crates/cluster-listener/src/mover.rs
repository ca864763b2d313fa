//! `eccluster.v1.Mover` (Momentum's mmove): `Move` receives a message into
//! this node's [`Spool`]; `MoveTo` sends a local file to a node found by name
//! in the membership. The sending side ([`send_file`], [`move_file`]) is also
//! what the `move` subcommand and the tests use.
//!
//! A sender declares the body size in the envelope and streams the file in
//! [`CHUNK_SIZE`] chunks. A cut transfer is retried from the start: the
//! receiver kept nothing of the cut one, and a retry of a transfer whose
//! acknowledgement was lost finds the id in incoming and is answered as a
//! duplicate, so each message lands exactly once.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use proto::eccluster::v1::mover_client::MoverClient;
use proto::eccluster::v1::mover_server::Mover;
use proto::eccluster::v1::{Envelope, MoveChunk, MoveReply, MoveToReply, MoveToRequest};
use service_kit::tls::ClientTls;
use tokio::sync::mpsc;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Response, Status, Streaming};

use crate::error::{MoveError, NodeError};
use crate::service::NodeContext;
use crate::spool::{Begin, Spool};

/// Body bytes per chunk sent. 256 KiB measured faster than 1 and 4 MiB over
/// loopback (see BENCH.md): smaller buffers stay in cache on their way
/// through the codec.
pub const CHUNK_SIZE: usize = 256 << 10;
/// The largest chunk a receiver decodes (a gRPC message limit, not a body limit).
pub const MAX_CHUNK: usize = 16 << 20;
/// HTTP/2 stream window for data-path connections (both ends).
pub const STREAM_WINDOW: u32 = 16 << 20;
/// HTTP/2 connection window for data-path connections (both ends).
pub const CONNECTION_WINDOW: u32 = 32 << 20;
/// How long a dial may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// An endpoint tuned for bulk data: large windows, no Nagle, keepalive so a
/// dead peer is noticed; over TLS when `tls` is given.
pub fn data_endpoint(
    addr: &str,
    tls: Option<&ClientTls>,
) -> Result<Endpoint, tonic::transport::Error> {
    Ok(service_kit::endpoint::endpoint(addr, tls)
        .map_err(|e| e.source)?
        .connect_timeout(CONNECT_TIMEOUT)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(20)))
}

/// A lazily connecting channel to `addr` (see [`data_endpoint`]).
pub fn data_channel(
    addr: &str,
    tls: Option<&ClientTls>,
) -> Result<Channel, tonic::transport::Error> {
    Ok(data_endpoint(addr, tls)?.connect_lazy())
}

/// A Mover client over `channel` that may send chunks up to [`MAX_CHUNK`].
pub fn mover_client(channel: Channel) -> MoverClient<Channel> {
    MoverClient::new(channel).max_encoding_message_size(MAX_CHUNK + 1024)
}

/// Why a send failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The local file could not be read.
    #[error("cannot read {path}: {source}")]
    Source {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The receiver refused, or the transfer failed.
    #[error("{0}")]
    Status(Status),
}

impl SendError {
    /// Whether sending again may succeed: a cut connection, a busy id, or a
    /// receiver hiccup, not a refusal of the message itself.
    pub fn retryable(&self) -> bool {
        match self {
            SendError::Source { .. } => false,
            SendError::Status(status) => !matches!(
                status.code(),
                Code::InvalidArgument
                    | Code::ResourceExhausted
                    | Code::NotFound
                    | Code::FailedPrecondition
                    | Code::PermissionDenied
                    | Code::Unauthenticated
                    | Code::Unimplemented
                    | Code::AlreadyExists
                    | Code::OutOfRange
            ),
        }
    }
}

/// Streams the file at `path` as one message: the envelope (its `size` set to
/// the file's length) then chunks of `chunk_size` bytes, read on a blocking
/// thread ahead of the network.
pub async fn send_file(
    client: &mut MoverClient<Channel>,
    mut envelope: Envelope,
    path: &Path,
    chunk_size: usize,
) -> Result<MoveReply, SendError> {
    let source = |source| SendError::Source {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(source)?;
    let size = file.metadata().map_err(source)?.len();
    envelope.size = size;
    let chunk_size = chunk_size.clamp(1, MAX_CHUNK);
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    let reader = tokio::task::spawn_blocking(move || -> io::Result<()> {
        let mut file = file.take(size);
        let mut left = size;
        while left > 0 {
            let want = usize::try_from(left).map_or(chunk_size, |l| l.min(chunk_size));
            let mut buf = BytesMut::zeroed(want);
            let mut filled = 0;
            while filled < want {
                let n = file.read(&mut buf[filled..])?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the file shrank while being sent",
                    ));
                }
                filled += n;
            }
            left -= want as u64;
            if tx.blocking_send(buf.freeze()).is_err() {
                // The transfer ended (cut or refused): stop reading.
                return Ok(());
            }
        }
        Ok(())
    });
    let first = MoveChunk {
        envelope: Some(envelope),
        data: Bytes::new(),
    };
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|data| {
            (
                MoveChunk {
                    envelope: None,
                    data,
                },
                rx,
            )
        })
    });
    let stream = futures::StreamExt::chain(futures::stream::iter([first]), body);
    let result = client.r#move(stream).await;
    let read = reader
        .await
        .unwrap_or_else(|join| Err(io::Error::other(join.to_string())));
    match (result, read) {
        (Ok(reply), _) => Ok(reply.into_inner()),
        (Err(_), Err(err)) => Err(source(err)),
        (Err(status), Ok(())) => Err(SendError::Status(status)),
    }
}

/// How often and how patiently to retry a cut transfer.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Transfers to try in all.
    pub attempts: u32,
    /// Wait after the first failure; doubled after each, up to `max_backoff`.
    pub backoff: Duration,
    /// The longest wait between tries.
    pub max_backoff: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            attempts: 10,
            backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
        }
    }
}

/// [`send_file`], again after each retryable failure (see
/// [`SendError::retryable`]). Returns the reply and the number of transfers
/// tried.
pub async fn move_file(
    channel: &Channel,
    envelope: &Envelope,
    path: &Path,
    retry: Retry,
) -> Result<(MoveReply, u32), SendError> {
    let mut wait = retry.backoff;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut client = mover_client(channel.clone());
        match send_file(&mut client, envelope.clone(), path, CHUNK_SIZE).await {
            Ok(reply) => return Ok((reply, attempt)),
            Err(err) if err.retryable() && attempt < retry.attempts.max(1) => {
                tracing::debug!(id = %envelope.id, attempt, error = %err, "move failed, retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(retry.max_backoff);
            }
            Err(err) => return Err(err),
        }
    }
}

/// The message id a file is sent under when none is given: its file name.
pub fn default_id(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The `eccluster.v1.Mover` service.
#[derive(Debug, Clone)]
pub struct MoverService {
    ctx: Arc<NodeContext>,
    spool: Arc<Spool>,
    metrics: Arc<crate::metrics::NodeMetrics>,
}

impl MoverService {
    /// Receives into `spool`, sends with the membership of `ctx`.
    pub fn new(ctx: Arc<NodeContext>, spool: Arc<Spool>) -> Self {
        Self {
            ctx,
            spool,
            metrics: Arc::default(),
        }
    }

    /// Counts moves in and out, bytes and errors into `metrics`.
    pub fn with_metrics(self, metrics: Arc<crate::metrics::NodeMetrics>) -> Self {
        Self { metrics, ..self }
    }

    async fn receive(&self, mut stream: Streaming<MoveChunk>) -> Result<MoveReply, MoveError> {
        let first = stream
            .message()
            .await
            .map_err(|status| MoveError::Cut {
                id: String::new(),
                received: 0,
                reason: status.message().to_owned(),
            })?
            .ok_or(MoveError::MissingEnvelope)?;
        let envelope = first.envelope.ok_or(MoveError::MissingEnvelope)?;
        let id = envelope.id.clone();
        let node = self.ctx.cfg.nodename.clone();
        let mut receiving = match self.spool.begin(envelope)? {
            Begin::Duplicate => {
                tracing::info!(%id, "move: duplicate, already in incoming");
                return Ok(MoveReply {
                    id,
                    duplicate: true,
                    size: 0,
                    node,
                });
            }
            Begin::Receive(receiving) => receiving,
        };
        receiving.write(first.data).await?;
        loop {
            match stream.message().await {
                Ok(Some(chunk)) => receiving.write(chunk.data).await?,
                Ok(None) => break,
                Err(status) => {
                    let err = MoveError::Cut {
                        id: id.clone(),
                        received: receiving.received(),
                        reason: status.message().to_owned(),
                    };
                    tracing::info!(error = %err, "move: cut");
                    return Err(err);
                }
            }
        }
        match receiving.commit().await? {
            Some(size) => {
                tracing::debug!(%id, size, "move: received");
                Ok(MoveReply {
                    id,
                    duplicate: false,
                    size,
                    node,
                })
            }
            None => Ok(MoveReply {
                id,
                duplicate: true,
                size: 0,
                node,
            }),
        }
    }

    async fn move_to(&self, request: MoveToRequest) -> Result<MoveToReply, MoveError> {
        let path = crate::outgoing::resolve(&self.ctx.cfg.outgoing_dir, &request.path)?;
        let address = self.ctx.address_of(&request.node)?;
        let id = if request.id.is_empty() {
            default_id(Path::new(&request.path))
        } else {
            request.id
        };
        crate::spool::validate_id(&id)?;
        let envelope = Envelope {
            id: id.clone(),
            sender: request.sender,
            recipients: request.recipients,
            binding: request.binding,
            size: 0,
        };
        let unreachable = |reason: String| {
            MoveError::Target(NodeError::Unreachable {
                node: request.node.clone(),
                address: address.clone(),
                reason,
            })
        };
        let tls = self.ctx.tls_for(&request.node);
        let channel =
            data_channel(&address, tls.as_ref()).map_err(|e| unreachable(e.to_string()))?;
        match move_file(&channel, &envelope, &path, Retry::default()).await {
            Ok((reply, attempts)) => Ok(MoveToReply {
                reply: Some(reply),
                address,
                attempts,
            }),
            Err(SendError::Source { path, source }) => Err(MoveError::Source {
                path: path.display().to_string(),
                source,
            }),
            Err(SendError::Status(status)) if status.code() == Code::Unavailable => {
                Err(unreachable(status.message().to_owned()))
            }
            Err(SendError::Status(status)) => Err(MoveError::Refused {
                node: request.node,
                id,
                status,
            }),
        }
    }
}

#[tonic::async_trait]
impl Mover for MoverService {
    async fn r#move(
        &self,
        request: Request<Streaming<MoveChunk>>,
    ) -> Result<Response<MoveReply>, Status> {
        let m = &self.metrics;
        match self.receive(request.into_inner()).await {
            Ok(reply) => {
                if reply.duplicate {
                    m.move_duplicates.inc();
                } else {
                    m.moves_received.inc();
                    m.move_bytes_received.inc_by(reply.size);
                }
                Ok(Response::new(reply))
            }
            Err(err) => {
                m.move_errors.inc();
                Err(err.into())
            }
        }
    }

    async fn move_to(
        &self,
        request: Request<MoveToRequest>,
    ) -> Result<Response<MoveToReply>, Status> {
        let reply = MoverService::move_to(self, request.into_inner())
            .await
            .inspect_err(|_| {
                self.metrics.move_send_errors.inc();
            })?;
        self.metrics.moves_sent.inc();
        let size = reply.reply.as_ref().map_or(0, |r| r.size);
        self.metrics.move_bytes_sent.inc_by(size);
        tracing::info!(address = %reply.address, reply = ?reply.reply, attempts = reply.attempts, "moved");
        Ok(Response::new(reply))
    }
}
