//! The client API (`msgc.v1.Bus`): a session task per client reads its
//! commands, checks them, takes flow-control permits and hands them to the
//! driver; the response stream drains the session's outbox into frames
//! (converting the core's events to protobuf there, off the driver's task).

use std::collections::HashSet;
use std::sync::Arc;

use msgc_core::{Event, SessionId};
use proto::msgc::v1::{
    ClientFrame, Command, Hello, PublishRequest, PublishResponse, ServerFrame, SubscribeRequest,
    Welcome, command, event,
};
use service_kit::tls::PeerIdentity;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use crate::config::ServerConfig;
use crate::driver::{ClientOp, CoreHandle, CoreInput, Input, SessionOpened, wire};
use crate::error::BusError;
use crate::identity::{self, Standing};
use crate::names;
use crate::outbox::{FrameLimits, FrameStream};

/// Most events in one frame to a client.
const FRAME_EVENTS: usize = 4096;
/// A frame to a client stops growing past this many bytes.
const FRAME_BYTES: usize = 1 << 20;

/// The response stream of a session.
pub type SessionStream =
    FrameStream<Event, Box<dyn FnMut(Vec<Event>) -> Option<ServerFrame> + Send>>;

/// The `msgc.v1.Bus` service.
pub struct BusService {
    core: CoreHandle,
    cfg: Arc<ServerConfig>,
    stop: CancellationToken,
}

impl BusService {
    /// Serves sessions for `core` until `stop` is cancelled.
    pub fn new(core: CoreHandle, cfg: Arc<ServerConfig>, stop: CancellationToken) -> Self {
        Self { core, cfg, stop }
    }

    async fn open(&self, hello: Hello) -> Result<SessionOpened, BusError> {
        if !hello.client_name.is_empty() {
            names::check_client(&hello.client_name)?;
        }

        let (tx, rx) = oneshot::channel();
        if !self
            .core
            .send(Input::OpenSession(wire::hello_from_wire(hello), tx))
        {
            return Err(BusError::Stopping);
        }
        Ok(rx.await.map_err(|_| BusError::Stopping)??)
    }

    /// Takes window permits for `ops` (in chunks no larger than the window)
    /// and hands them to the core.
    async fn hand_over(
        core: &CoreHandle,
        id: SessionId,
        mut ops: Vec<ClientOp>,
    ) -> Result<(), BusError> {
        let chunk = (core.window_size / 2).max(1);
        while !ops.is_empty() {
            let rest = if ops.len() > chunk {
                ops.split_off(chunk)
            } else {
                Vec::new()
            };
            let n = u32::try_from(ops.len()).unwrap_or(u32::MAX);
            core.window
                .acquire_many(n)
                .await
                .map_err(|_| BusError::Stopping)?
                .forget();
            if !core.send(CoreInput::Commands(id, std::mem::replace(&mut ops, rest))) {
                return Err(BusError::Stopping);
            }
        }
        Ok(())
    }

    /// The session's response stream: the welcome, then its events and
    /// acknowledgements.
    fn stream(&self, opened: &SessionOpened) -> SessionStream {
        let acks = opened.acks.clone();
        let mut sent_acks = 0;
        let mut welcome = Some(proto::msgc::v1::Event {
            kind: Some(event::Kind::Welcome(Welcome {
                private_name: opened.private_name.clone(),
                server: self.cfg.name.clone(),
                view_id: opened.epoch,
                max_payload: self.cfg.max_payload as u64,
            })),
        });
        let make: Box<dyn FnMut(Vec<Event>) -> Option<ServerFrame> + Send> =
            Box::new(move |events| {
                let acked = acks.count();
                let moved = acked != sent_acks;
                sent_acks = acked;
                let mut out = Vec::with_capacity(events.len() + 1);
                out.extend(welcome.take());
                out.extend(events.into_iter().map(wire::event_to_wire));
                (moved || !out.is_empty()).then(|| ServerFrame {
                    events: out,
                    publishes_acked: if moved { acked } else { 0 },
                })
            });
        let limits = FrameLimits {
            max_items: FRAME_EVENTS,
            max_bytes: FRAME_BYTES,
            size_of: wire::event_size,
        };
        let core = self.core.clone();
        let id = opened.id;
        // The welcome goes out before any event is queued.
        opened.outbox.wake();
        FrameStream::new(opened.outbox.clone(), limits, make).on_drop(move || {
            core.send(CoreInput::CloseSession(id));
        })
    }
}

/// The RPCs; [`proto::msgc::v1::bus_server::Bus`] counts their refusals.
impl BusService {
    async fn open_session(
        &self,
        request: Request<Streaming<ClientFrame>>,
    ) -> Result<Response<SessionStream>, Status> {
        let conn = PeerIdentity::of(&request);
        let mut inbound = request.into_inner();
        let first = tokio::time::timeout(self.cfg.idle_timeout, inbound.message())
            .await
            .map_err(|_| BusError::NoHello(self.cfg.idle_timeout))??
            .ok_or(BusError::EndedBeforeHello)?;
        let mut commands = first.commands.into_iter();
        let hello = match commands.next().and_then(|c| c.kind) {
            Some(command::Kind::Hello(hello)) => hello,
            _ => return Err(BusError::HelloFirst.into()),
        };
        let standing = identity::standing(&conn, &hello)?;
        let opened = self.open(hello).await?;
        let stream = self.stream(&opened);
        let reader = SessionReader {
            core: self.core.clone(),
            max_payload: self.cfg.max_payload,
            standing,
            stop: self.stop.clone(),
            id: opened.id,
            outbox: opened.outbox.clone(),
        };
        let rest: Vec<Command> = commands.collect();
        tokio::spawn(reader.run(rest, inbound));
        Ok(Response::new(stream))
    }

    async fn publish_once(
        &self,
        request: Request<PublishRequest>,
    ) -> Result<Response<PublishResponse>, Status> {
        let conn = PeerIdentity::of(&request);
        let request = request.into_inner();
        let hello = Hello {
            client_name: request.client_name,
            no_self_delivery: true,
            node: None,
        };
        let standing = identity::standing(&conn, &hello)?;
        let op = check_command(
            Command {
                kind: Some(command::Kind::Publish(proto::msgc::v1::Publish {
                    group: request.group,
                    payload: request.payload,
                })),
            },
            &mut HashSet::new(),
            (self.cfg.max_payload, standing),
        )?;
        let opened = self.open(hello).await?;
        let mut stream = self.stream(&opened);
        Self::hand_over(&self.core, opened.id, vec![op]).await?;
        // The session joined nothing, so its stream carries only the welcome
        // and acknowledgements.
        use futures::StreamExt;
        while opened.acks.count() == 0 {
            match stream.next().await {
                Some(Ok(_)) => {}
                Some(Err(status)) => return Err(status),
                None => return Err(BusError::Stopping.into()),
            }
        }
        Ok(Response::new(PublishResponse {
            sender: opened.private_name.clone(),
            position: Some(opened.acks.last_position()),
        }))
    }

    async fn subscribe_groups(
        &self,
        request: Request<SubscribeRequest>,
    ) -> Result<Response<SessionStream>, Status> {
        let conn = PeerIdentity::of(&request);
        let request = request.into_inner();
        let hello = Hello {
            client_name: request.client_name.clone(),
            no_self_delivery: request.no_self_delivery,
            node: None,
        };
        let standing = identity::standing(&conn, &hello)?;
        if request.groups.is_empty() {
            return Err(Status::invalid_argument(
                "subscribe needs at least one group",
            ));
        }
        let mut joined = HashSet::new();
        let mut ops = Vec::with_capacity(request.groups.len());
        for group in request.groups {
            let join = proto::msgc::v1::Join {
                group,
                capabilities: request.capabilities.clone(),
            };
            ops.push(check_command(
                Command {
                    kind: Some(command::Kind::Join(join)),
                },
                &mut joined,
                (self.cfg.max_payload, standing),
            )?);
        }
        let opened = self.open(hello).await?;
        let stream = self.stream(&opened);
        Self::hand_over(&self.core, opened.id, ops).await?;
        Ok(Response::new(stream))
    }
}

#[tonic::async_trait]
impl proto::msgc::v1::bus_server::Bus for BusService {
    type SessionStream = SessionStream;
    type SubscribeStream = SessionStream;

    async fn session(
        &self,
        request: Request<Streaming<ClientFrame>>,
    ) -> Result<Response<SessionStream>, Status> {
        self.counted(self.open_session(request).await)
    }

    async fn publish(
        &self,
        request: Request<PublishRequest>,
    ) -> Result<Response<PublishResponse>, Status> {
        self.counted(self.publish_once(request).await)
    }

    async fn subscribe(
        &self,
        request: Request<SubscribeRequest>,
    ) -> Result<Response<SessionStream>, Status> {
        self.counted(self.subscribe_groups(request).await)
    }
}

impl BusService {
    /// Counts a refusal by its code (`msgc_refusals_total`).
    fn counted<T>(&self, result: Result<T, Status>) -> Result<T, Status> {
        if let Err(status) = &result {
            self.core.metrics.refused(status.code());
        }
        result
    }
}

/// Checks one command and turns it into an op for the core; `joined` is the
/// session's groups, so joining twice or leaving a stranger's group is refused;
/// its standing says whether it may use the cluster's own groups.
fn check_command(
    command: Command,
    joined: &mut HashSet<String>,
    (max_payload, standing): (usize, Standing),
) -> Result<ClientOp, BusError> {
    match command.kind {
        Some(command::Kind::Join(join)) => {
            names::check_group(&join.group)?;
            identity::check_group(standing, &join.group)?;
            if !joined.insert(join.group.clone()) {
                return Err(BusError::AlreadyJoined(join.group));
            }
            Ok(ClientOp::Join {
                group: join.group,
                capabilities: join.capabilities,
            })
        }
        Some(command::Kind::Leave(leave)) => {
            names::check_group(&leave.group)?;
            if !joined.remove(&leave.group) {
                return Err(BusError::NotJoined(leave.group));
            }
            Ok(ClientOp::Leave { group: leave.group })
        }
        Some(command::Kind::Publish(publish)) => {
            names::check_group(&publish.group)?;
            identity::check_group(standing, &publish.group)?;
            if publish.payload.len() > max_payload {
                return Err(BusError::TooLarge {
                    size: publish.payload.len(),
                    max: max_payload,
                });
            }
            Ok(ClientOp::Publish {
                group: publish.group,
                payload: publish.payload,
            })
        }
        Some(command::Kind::Hello(_)) => Err(BusError::SecondHello),
        None => Err(BusError::EmptyCommand),
    }
}

/// Reads a session's commands until the client stops sending.
struct SessionReader {
    core: CoreHandle,
    max_payload: usize,
    standing: Standing,
    stop: CancellationToken,
    id: SessionId,
    outbox: Arc<crate::outbox::Outbox<Event>>,
}

impl SessionReader {
    async fn run(self, first: Vec<Command>, mut inbound: Streaming<ClientFrame>) {
        let mut joined = HashSet::new();
        let mut commands = first;
        loop {
            if let Err(err) = self.handle(commands, &mut joined).await {
                // A bad command ends the session with a status naming it.
                let status = Status::from(err);
                self.core.metrics.refused(status.code());
                self.outbox.abort(status);
                break;
            }
            if self.outbox.is_closed() {
                break;
            }
            // On shutdown, stop reading: dropping the request stream lets the
            // connection close instead of waiting out the shutdown grace.
            let next = tokio::select! {
                next = inbound.message() => next,
                _ = self.stop.cancelled() => break,
            };
            match next {
                Ok(Some(frame)) => commands = frame.commands,
                Ok(None) | Err(_) => break,
            }
        }
        self.core.send(CoreInput::CloseSession(self.id));
    }

    async fn handle(
        &self,
        commands: Vec<Command>,
        joined: &mut HashSet<String>,
    ) -> Result<(), BusError> {
        if commands.is_empty() {
            return Ok(());
        }
        let mut ops = Vec::with_capacity(commands.len());
        for command in commands {
            ops.push(check_command(
                command,
                joined,
                (self.max_payload, self.standing),
            )?);
        }
        BusService::hand_over(&self.core, self.id, ops).await
    }
}
