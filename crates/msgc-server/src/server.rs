//! `serve`: the whole server as one function over already-bound listeners, so
//! tests run exactly what production runs.

use std::sync::Arc;
use std::time::Duration;

use proto::msgc::v1::admin_server::AdminServer;
use proto::msgc::v1::bus_server::BusServer;
use proto::msgc::v1::mesh_server::MeshServer;
use service_kit::listen::BoundListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic_health::ServingStatus;

use crate::admin::AdminService;
use crate::config::ServerConfig;
use crate::driver::{CoreInput, Driver};
use crate::mesh::{MAX_PEER_FRAME, MeshIdentity, MeshService, spawn_dialers};
use crate::session::BusService;

/// The health service name that turns SERVING once the mesh has formed.
pub const BUS_HEALTH_NAME: &str = "msgc.v1.Bus";

/// How long shutdown waits for streams and tasks to finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Largest frame a client may send (many publishes of up to the payload limit).
const MAX_CLIENT_FRAME: usize = 64 << 20;

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Reflection could not be built from the descriptor set.
    #[error("building reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The TLS files for peer links could not be loaded.
    #[error("TLS for peer links: {0}")]
    Tls(#[from] service_kit::tls::TlsError),
    /// The admin HTTP listener (`admin_listen`) could not be bound.
    #[error("admin_listen: {0}")]
    Admin(#[from] service_kit::listen::BindError),
}

/// Runs a msgc server on `listeners` until `shutdown` is cancelled, then
/// drains: health goes NOT_SERVING, sessions and links end, and the call
/// returns within [`SHUTDOWN_GRACE`].
pub async fn serve(
    cfg: ServerConfig,
    listeners: Vec<BoundListener>,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let peer_tls = cfg
        .peer_tls
        .as_ref()
        .map(service_kit::tls::ClientTls::load)
        .transpose()?;
    let admin = cfg
        .admin_listen
        .map(service_kit::metrics::bind)
        .transpose()?;
    let cfg = Arc::new(cfg);
    let (metrics, registry) = crate::metrics::BusMetrics::new();
    let (driver, handle) = Driver::new(cfg.clone(), metrics);
    let identity = MeshIdentity::new(cfg.clone(), driver.incarnation(), peer_tls);
    let tasks = TaskTracker::new();
    // Not a child of `shutdown`: sessions and links stop only once the drain
    // below has stopped the core (see there).
    let stop = CancellationToken::new();
    let core_task = tokio::spawn(driver.run());

    let (health, routes) =
        service_kit::grpc::standard_routes(proto::MSGC_DESCRIPTOR_SET, &[BUS_HEALTH_NAME]).await?;
    let mut ready = handle.ready.clone();
    let readiness = health.clone();
    tasks.spawn(async move {
        if ready.wait_for(|r| *r).await.is_ok() {
            readiness
                .set_service_status(BUS_HEALTH_NAME, ServingStatus::Serving)
                .await;
        }
    });

    if let Some(listener) = admin {
        let refresh = refresh_from(handle.clone());
        service_kit::metrics::spawn(listener, Arc::new(registry), refresh, stop.clone(), &tasks);
    }
    spawn_dialers(&handle, &identity, &tasks, &stop);
    let routes = routes
        .add_service(
            BusServer::new(BusService::new(handle.clone(), cfg.clone(), stop.clone()))
                .max_decoding_message_size(MAX_CLIENT_FRAME),
        )
        .add_service(AdminServer::new(AdminService::new(handle.clone())))
        .add_service(
            MeshServer::new(MeshService::new(
                handle.clone(),
                identity,
                tasks.clone(),
                stop.clone(),
            ))
            .max_decoding_message_size(MAX_PEER_FRAME),
        );

    let window = u32::try_from(cfg.tcpbuf_size.max(1 << 20)).unwrap_or(u32::MAX);
    let drain = {
        let handle = handle.clone();
        let health = health.clone();
        let stop = stop.clone();
        async move {
            health
                .set_service_status("", ServingStatus::NotServing)
                .await;
            health
                .set_service_status(BUS_HEALTH_NAME, ServingStatus::NotServing)
                .await;
            // The core stops first, so sessions ending because of the
            // shutdown do not leave their groups one by one: peers see this
            // server go (SERVER_LOST), as they would a crash.
            handle.send(CoreInput::Shutdown);
            stop.cancel();
        }
    };
    let router = tonic::transport::Server::builder()
        .initial_stream_window_size(window)
        .initial_connection_window_size(window)
        .http2_keepalive_interval(Some(cfg.keepalive_interval.max(Duration::from_secs(1))))
        .add_routes(routes);
    let result =
        service_kit::grpc::serve_until(router, listeners, shutdown, drain, SHUTDOWN_GRACE).await;
    stop.cancel();
    handle.send(CoreInput::Shutdown);
    tasks.close();
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, tasks.wait()).await;
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, core_task).await;
    result.map_err(ServeError::from)
}

/// Before a scrape, the driver sets the gauges that mirror live state.
fn refresh_from(handle: crate::driver::CoreHandle) -> service_kit::metrics::Refresh {
    Arc::new(move || {
        let handle = handle.clone();
        Box::pin(async move {
            let (tx, rx) = tokio::sync::oneshot::channel();
            if handle.send(crate::driver::Input::Query(crate::driver::Query::Metrics(
                tx,
            ))) {
                let _ = rx.await;
            }
        })
    })
}
