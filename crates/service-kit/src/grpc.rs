//! The services every server of ours carries besides its own: gRPC health
//! (`grpc.health.v1`) and server reflection (v1 and v1alpha, since grpcurl
//! 1.8.6 speaks only v1alpha), plus the client side of a health check.

use std::time::Duration;

use tonic::service::Routes;
use tonic_health::ServingStatus;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::server::HealthReporter;

use crate::tls::ClientTls;

/// Builds routes holding health and both reflection versions, with
/// `descriptor_set` (the service's own protos) and health's registered. The
/// overall service `""` starts SERVING; each name in `not_yet_serving` starts
/// NOT_SERVING until the caller says otherwise.
pub async fn standard_routes(
    descriptor_set: &'static [u8],
    not_yet_serving: &[&str],
) -> Result<(HealthReporter, Routes), tonic_reflection::server::Error> {
    let (reporter, health) = tonic_health::server::health_reporter();
    for name in not_yet_serving {
        reporter
            .set_service_status(*name, ServingStatus::NotServing)
            .await;
    }
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(descriptor_set)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let routes = Routes::new(health)
        .add_service(reflection().build_v1()?)
        .add_service(reflection().build_v1alpha()?);
    Ok((reporter, routes))
}

/// An error and its sources, `: `-separated (tonic's transport errors say
/// only "transport error" themselves; the cause, e.g. a refused
/// certificate, is in the chain).
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}

/// Why a service stopped serving with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Reflection could not be built from the descriptor set.
    #[error("building reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// TLS files for the service's own dials could not be loaded.
    #[error("{0}")]
    Tls(#[from] crate::tls::TlsError),
    /// The admin HTTP listener (`admin_listen`) could not be bound.
    #[error("admin_listen: {0}")]
    Admin(#[from] crate::listen::BindError),
}

/// What a health check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// The service answered SERVING.
    Serving,
    /// The service answered, but not SERVING.
    NotServing,
}

/// Why a health check could not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum HealthCheckError {
    /// The address could not be reached.
    #[error("cannot reach {addr}: {}", error_chain(source))]
    Connect {
        /// The address tried.
        addr: String,
        /// Transport error.
        #[source]
        source: tonic::transport::Error,
    },
    /// The server answered with an error status (e.g. NOT_FOUND for an unknown service).
    #[error("probe failed: {0}")]
    Status(#[from] tonic::Status),
}

async fn connect(
    addr: &str,
    tls: Option<&ClientTls>,
    timeout: Duration,
) -> Result<tonic::transport::Channel, HealthCheckError> {
    let fail = |source| HealthCheckError::Connect {
        addr: addr.to_owned(),
        source,
    };
    crate::endpoint::endpoint_with_timeout(addr, tls, timeout)
        .map_err(|e| fail(e.source))?
        .connect()
        .await
        .map_err(fail)
}

/// Asks `addr` (`host:port`, plaintext) for the health of `service` (`""` =
/// the whole server).
pub async fn check_health(
    addr: &str,
    service: &str,
    timeout: Duration,
) -> Result<Health, HealthCheckError> {
    check_health_over(addr, None, service, timeout).await
}

/// [`check_health`] over TLS when `tls` is given.
pub async fn check_health_over(
    addr: &str,
    tls: Option<&ClientTls>,
    service: &str,
    timeout: Duration,
) -> Result<Health, HealthCheckError> {
    let channel = connect(addr, tls, timeout).await?;
    let reply = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await?
        .into_inner();
    Ok(
        if reply.status == tonic_health::pb::health_check_response::ServingStatus::Serving as i32 {
            Health::Serving
        } else {
            Health::NotServing
        },
    )
}

/// The services `addr` lists through reflection v1alpha, the version grpcurl
/// 1.8.6 speaks (what `grpcurl -plaintext ADDR list` prints).
pub async fn reflection_services(
    addr: &str,
    timeout: Duration,
) -> Result<Vec<String>, HealthCheckError> {
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
    let mut client = ServerReflectionClient::new(connect(addr, None, timeout).await?);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut replies = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await?
        .into_inner();
    match replies.message().await?.and_then(|r| r.message_response) {
        Some(MessageResponse::ListServicesResponse(list)) => {
            Ok(list.service.into_iter().map(|s| s.name).collect())
        }
        other => {
            Err(tonic::Status::internal(format!("unexpected reflection answer: {other:?}")).into())
        }
    }
}

/// How many file descriptors reflection v1 returns for `symbol` (what newer
/// tools ask to describe a service); 0 if it answers with anything else.
pub async fn reflection_files_v1(
    addr: &str,
    symbol: &str,
    timeout: Duration,
) -> Result<usize, HealthCheckError> {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let mut client = ServerReflectionClient::new(connect(addr, None, timeout).await?);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(symbol.to_owned())),
    };
    let mut replies = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await?
        .into_inner();
    Ok(
        match replies.message().await?.and_then(|r| r.message_response) {
            Some(MessageResponse::FileDescriptorResponse(files)) => {
                files.file_descriptor_proto.len()
            }
            _ => 0,
        },
    )
}

/// Serves `router` on `listeners` until `shutdown` is cancelled. On shutdown
/// `drain` runs first (e.g. health goes NOT_SERVING, streams are told to end),
/// then open connections get `grace` to finish; past it the call returns
/// anyway, with a warning.
pub async fn serve_until(
    router: tonic::transport::server::Router,
    listeners: Vec<crate::listen::BoundListener>,
    shutdown: tokio_util::sync::CancellationToken,
    drain: impl std::future::Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> Result<(), tonic::transport::Error> {
    let token = shutdown.clone();
    let signal = async move {
        token.cancelled().await;
        drain.await;
    };
    let server = router.serve_with_incoming_shutdown(crate::listen::incoming(listeners), signal);
    let mut server = std::pin::pin!(server);
    tokio::select! {
        result = &mut server => result,
        _ = async {
            shutdown.cancelled().await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!("shutdown grace of {grace:?} passed with connections still open");
            Ok(())
        }
    }
}
