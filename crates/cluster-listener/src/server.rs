//! `serve`: the whole node as one function over already-bound listeners, so
//! tests run exactly what production runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use proto::eccluster::v1::console_server::ConsoleServer;
use proto::eccluster::v1::logs_server::LogsServer;
use proto::eccluster::v1::mover_server::MoverServer;
use proto::eccluster::v1::node_server::NodeServer;
use service_kit::listen::BoundListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic_health::ServingStatus;

use crate::config::NodeConfig;
use crate::console::commands::Answerer;
use crate::console::{self, Console, ConsoleService};
use crate::logs::LogsService;
use crate::membership::{self, Membership};
use crate::mover::{self, MoverService};
use crate::service::{NodeContext, NodeService};
use crate::spool::Spool;

/// The health service name that turns SERVING once the node has joined the
/// cluster group (and NOT_SERVING again while its msgc session is down).
pub const NODE_HEALTH_NAME: &str = "eccluster.v1.Node";

/// How long shutdown waits for calls and tasks to finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

pub use service_kit::ServeError;

/// A node about to serve: its context is available (e.g. to tests) before
/// [`Node::run`] is awaited.
#[derive(Debug)]
pub struct Node {
    ctx: Arc<NodeContext>,
    spool: Arc<Spool>,
    listeners: Vec<BoundListener>,
}

impl Node {
    /// Prepares a node on `listeners` (already bound from `cfg.listens`),
    /// loading the TLS files it dials with.
    pub fn new(cfg: NodeConfig, listeners: Vec<BoundListener>) -> Result<Self, ServeError> {
        let bound: Vec<_> = listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect();
        let address = cfg.advertised_address(&bound).unwrap_or_default();
        if address.is_empty() {
            tracing::warn!("no TCP Listen is bound: peers cannot reach this node");
        }
        let membership = Membership::new(&cfg.cluster_group);
        let spool = Spool::new(cfg.spool_dir.clone(), cfg.max_message_size);
        let load = |files: Option<&service_kit::tls::ClientTlsFiles>| {
            files.map(service_kit::tls::ClientTls::load).transpose()
        };
        let ctx = NodeContext {
            dial_tls: load(cfg.dial_tls.as_ref())?,
            msgc_tls: load(cfg.msgc.tls.as_ref())?,
            cfg: Arc::new(cfg),
            membership,
            started: Instant::now(),
            listen_addresses: bound.iter().map(ToString::to_string).collect(),
            address,
        };
        Ok(Self {
            ctx: Arc::new(ctx),
            spool,
            listeners,
        })
    }

    /// What the node knows: configuration, membership, addresses.
    pub fn context(&self) -> Arc<NodeContext> {
        self.ctx.clone()
    }

    /// Serves until `shutdown` is cancelled, then drains: health goes
    /// NOT_SERVING, the msgc session ends, and the call returns within
    /// [`SHUTDOWN_GRACE`].
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), ServeError> {
        let Node {
            ctx,
            spool,
            listeners,
        } = self;
        match spool.clean_tmp() {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(removed = n, dir = %spool.tmp().display(), "removed cut transfers from the spool")
            }
            Err(err) => {
                tracing::warn!(error = %err, dir = %spool.tmp().display(), "cannot clean the spool's tmp")
            }
        }
        let cfg = ctx.cfg.clone();
        let tasks = TaskTracker::new();
        let stop = shutdown.child_token();
        let (metrics, registry) = crate::metrics::NodeMetrics::new();
        if let Some(addr) = cfg.admin_listen {
            let listener = service_kit::metrics::bind(addr)?;
            let registry = Arc::new(registry);
            let refresh = service_kit::metrics::no_refresh();
            service_kit::metrics::spawn(listener, registry, refresh, stop.clone(), &tasks);
        }
        let (health, routes) = service_kit::grpc::standard_routes(
            proto::ECCLUSTER_DESCRIPTOR_SET,
            &[NODE_HEALTH_NAME],
        )
        .await?;

        let console = Console::new(
            ctx.clone(),
            Answerer::new(ctx.clone(), LogsService::new(cfg.clone(), stop.clone())),
        );
        if cfg.enabled {
            let record = membership::node_record(&cfg, &ctx.address);
            let (deliveries, inbox) = tokio::sync::mpsc::channel(console::INBOX);
            tasks.spawn(console::serve_inbox(console.clone(), inbox, stop.clone()));
            tasks.spawn(membership::run(
                cfg.clone(),
                ctx.msgc_tls.clone(),
                record,
                ctx.membership.clone(),
                membership::Inbox { deliveries },
                stop.clone(),
            ));
            let mut joined = ctx.membership.joined();
            let readiness = health.clone();
            let stop = stop.clone();
            tasks.spawn(async move {
                loop {
                    let status = if *joined.borrow_and_update() {
                        ServingStatus::Serving
                    } else {
                        ServingStatus::NotServing
                    };
                    if stop.is_cancelled() {
                        break;
                    }
                    readiness.set_service_status(NODE_HEALTH_NAME, status).await;
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        changed = joined.changed() => if changed.is_err() { break },
                    }
                }
            });
        } else {
            tracing::info!("cluster enabled = false: serving without joining the bus");
            health
                .set_service_status(NODE_HEALTH_NAME, ServingStatus::Serving)
                .await;
        }

        let routes = routes
            .add_service(NodeServer::new(NodeService::new(ctx.clone())))
            .add_service(ConsoleServer::new(ConsoleService::new(console)))
            .add_service(LogsServer::new(
                LogsService::new(cfg.clone(), stop.clone()).with_metrics(metrics.clone()),
            ))
            .add_service(
                MoverServer::new(MoverService::new(ctx.clone(), spool).with_metrics(metrics))
                    .max_decoding_message_size(mover::MAX_CHUNK + 1024),
            );
        let drain = {
            let health = health.clone();
            let stop = stop.clone();
            async move {
                // Stop the readiness task first, so it cannot turn the node
                // SERVING again after this.
                stop.cancel();
                health
                    .set_service_status("", ServingStatus::NotServing)
                    .await;
                health
                    .set_service_status(NODE_HEALTH_NAME, ServingStatus::NotServing)
                    .await;
            }
        };
        let router = tonic::transport::Server::builder()
            .http2_keepalive_interval(Some(Duration::from_secs(10)))
            .initial_stream_window_size(mover::STREAM_WINDOW)
            .initial_connection_window_size(mover::CONNECTION_WINDOW)
            .max_frame_size(1 << 20)
            .add_routes(routes);
        let result =
            service_kit::grpc::serve_until(router, listeners, shutdown, drain, SHUTDOWN_GRACE)
                .await;
        stop.cancel();
        tasks.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("node tasks still running after {SHUTDOWN_GRACE:?}");
        }
        result.map_err(ServeError::from)
    }
}

/// Runs a node on `listeners` until `shutdown` is cancelled (see [`Node::run`]).
pub async fn serve(
    cfg: NodeConfig,
    listeners: Vec<BoundListener>,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    Node::new(cfg, listeners)?.run(shutdown).await
}
