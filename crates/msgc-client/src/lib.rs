//! A client for the msgc bus. [`Session::connect`] opens one session (one
//! long-lived `msgc.v1.Bus/Session` stream) and returns a [`Session`] to send
//! with and an [`Events`] stream to read deliveries and group views from.
//!
//! Commands are batched: whatever is queued when the transport is ready goes
//! out as one frame, so a fast publisher sends large frames without waiting
//! for each message.

#![forbid(unsafe_code)]

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use proto::msgc::v1::bus_client::BusClient;
use proto::msgc::v1::{
    ClientFrame, Command, Event, Hello, Join, Leave, NodeRecord, Publish, ServerFrame, Welcome,
    command, event,
};
pub use service_kit::tls::ClientTls;
use tokio::sync::mpsc;
use tonic::Streaming;
use tonic::transport::Channel;

/// Largest frame the client accepts from a server.
pub const MAX_FRAME: usize = 64 << 20;

/// How a session introduces itself.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The `<client>` part of the private name; empty lets the server choose.
    pub client_name: String,
    /// Do not deliver this session's own messages back to it.
    pub no_self_delivery: bool,
    /// Node record attached to every group this session joins.
    pub node: Option<NodeRecord>,
    /// Commands queued before the sender waits (backpressure).
    pub queue: usize,
}

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached (or refused the TLS handshake).
    #[error("cannot connect to {addr}: {}", service_kit::grpc::error_chain(source))]
    Connect {
        /// The address tried.
        addr: String,
        /// The transport error.
        #[source]
        source: tonic::transport::Error,
    },
    /// The server refused or ended the session.
    #[error("{0}")]
    Status(#[from] tonic::Status),
    /// The session ended.
    #[error("session closed")]
    Closed,
    /// The server's first event was not a welcome.
    #[error("server did not welcome the session")]
    NoWelcome,
}

/// Connects a plaintext gRPC channel to `addr` (`host:port` or a URI).
pub async fn channel(addr: &str, connect_timeout: Duration) -> Result<Channel, ClientError> {
    channel_over(addr, None, connect_timeout).await
}

/// Connects a gRPC channel to `addr`, over TLS when `tls` is given (mutual
/// TLS when it holds a client certificate).
pub async fn channel_over(
    addr: &str,
    tls: Option<&ClientTls>,
    connect_timeout: Duration,
) -> Result<Channel, ClientError> {
    let connect = |source| ClientError::Connect {
        addr: addr.to_owned(),
        source,
    };
    service_kit::endpoint::endpoint(addr, tls)
        .map_err(|e| connect(e.source))?
        .connect_timeout(connect_timeout)
        .initial_stream_window_size(1 << 20)
        .initial_connection_window_size(1 << 20)
        .connect()
        .await
        .map_err(connect)
}

/// The sending half of a session.
#[derive(Clone)]
pub struct Session {
    commands: mpsc::Sender<Command>,
    welcome: Welcome,
}

/// The receiving half of a session: frames of events in delivery order.
pub struct Events {
    inbound: Streaming<ServerFrame>,
    held: Option<ServerFrame>,
    acked: u64,
}

impl Session {
    /// Opens a session on the server at `addr`.
    pub async fn connect(addr: &str, options: Options) -> Result<(Session, Events), ClientError> {
        let channel = channel(addr, Duration::from_secs(10)).await?;
        Self::open(channel, options).await
    }

    /// Opens a session over an existing channel.
    pub async fn open(
        channel: Channel,
        options: Options,
    ) -> Result<(Session, Events), ClientError> {
        let (tx, rx) = mpsc::channel(options.queue.max(1024));
        let hello = Hello {
            client_name: options.client_name,
            no_self_delivery: options.no_self_delivery,
            node: options.node,
        };
        tx.send(Command {
            kind: Some(command::Kind::Hello(hello)),
        })
        .await
        .map_err(|_| ClientError::Closed)?;
        let mut client = BusClient::new(channel).max_decoding_message_size(MAX_FRAME);
        let mut inbound = client
            .session(Batcher {
                rx,
                buf: Vec::new(),
            })
            .await?
            .into_inner();
        let first = inbound.message().await?.ok_or(ClientError::Closed)?;
        let mut events = first.events.into_iter();
        let welcome = match events.next().and_then(|e| e.kind) {
            Some(event::Kind::Welcome(w)) => w,
            _ => return Err(ClientError::NoWelcome),
        };
        // Events queued right after the welcome may share its frame.
        let rest: Vec<Event> = events.collect();
        let held = (!rest.is_empty()).then_some(ServerFrame {
            events: rest,
            publishes_acked: 0,
        });
        Ok((
            Session {
                commands: tx,
                welcome,
            },
            Events {
                inbound,
                held,
                acked: first.publishes_acked,
            },
        ))
    }

    /// What the server said when the session opened.
    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    /// This session's private name, `#<client>#<server>`.
    pub fn private_name(&self) -> &str {
        &self.welcome.private_name
    }

    async fn send(&self, kind: command::Kind) -> Result<(), ClientError> {
        self.commands
            .send(Command { kind: Some(kind) })
            .await
            .map_err(|_| ClientError::Closed)
    }

    /// Joins `group`, attaching `capabilities`.
    pub async fn join(
        &self,
        group: &str,
        capabilities: impl Into<Bytes>,
    ) -> Result<(), ClientError> {
        self.send(command::Kind::Join(Join {
            group: group.to_owned(),
            capabilities: capabilities.into(),
        }))
        .await
    }

    /// Leaves `group`.
    pub async fn leave(&self, group: &str) -> Result<(), ClientError> {
        self.send(command::Kind::Leave(Leave {
            group: group.to_owned(),
        }))
        .await
    }

    /// Multicasts `payload` to `group`.
    pub async fn publish(&self, group: &str, payload: impl Into<Bytes>) -> Result<(), ClientError> {
        self.send(command::Kind::Publish(Publish {
            group: group.to_owned(),
            payload: payload.into(),
        }))
        .await
    }
}

impl Events {
    /// The next frame from the server; `Ok(None)` when the session ended
    /// cleanly, `Err` with the server's status when it was refused or cut.
    pub async fn next_frame(&mut self) -> Result<Option<ServerFrame>, ClientError> {
        if let Some(frame) = self.held.take() {
            return Ok(Some(frame));
        }
        let frame = self.inbound.message().await?;
        if let Some(frame) = &frame
            && frame.publishes_acked > 0
        {
            self.acked = frame.publishes_acked;
        }
        Ok(frame)
    }

    /// Publishes of this session acknowledged so far (ordered and held by every server of the view).
    pub fn acked(&self) -> u64 {
        self.acked
    }
}

/// The request stream: drains every queued command into one frame.
struct Batcher {
    rx: mpsc::Receiver<Command>,
    buf: Vec<Command>,
}

/// Most commands in one frame.
const BATCH: usize = 4096;

impl Stream for Batcher {
    type Item = ClientFrame;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ClientFrame>> {
        let this = self.get_mut();
        match this.rx.poll_recv_many(cx, &mut this.buf, BATCH) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(0) => Poll::Ready(None),
            Poll::Ready(_) => Poll::Ready(Some(ClientFrame {
                commands: std::mem::take(&mut this.buf),
            })),
        }
    }
}
