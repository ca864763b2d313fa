//! Prometheus metrics, shared by both services: the `admin_listen` option of
//! a listener scope, a lock-free latency [`Histogram`], and the admin HTTP
//! listener that serves `GET /metrics` in the text exposition format.
//!
//! Each service owns one [`Registry`] (no global recorder: tests run several
//! servers in one process) and registers its counters once at start; a
//! counter is an `Arc<AtomicU64>`, so counting on a hot path is one atomic
//! add. Values that are cheaper to read than to track (queue depths, link
//! state) are set by a [`Refresh`] hook just before each scrape.
//!
//! The listener is HTTP/1.1 over the hyper that tonic already brings.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use prometheus_client;
pub use prometheus_client::registry::Registry;

use crate::listen::{BindError, ListenAddr};

/// The listener-scope option naming the admin HTTP address (unset: off).
pub const ADMIN_LISTEN: &str = "admin_listen";

/// The content type of the exposition (OpenMetrics text, which Prometheus
/// reads natively).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Reads `admin_listen = "host:port"` from the listener scope `scope`:
/// `None` when unset or empty. The address forms are those of `Listen`
/// (`*:p`, `:p`, `ip:p`, `[v6]:p`), TCP only; a bad one is refused at its
/// file:line.
pub fn read_admin_listen(
    root: confparse::ScopeRef<'_>,
    scope: &str,
) -> Result<Option<SocketAddr>, confparse::Diagnostic> {
    let Some(listener) = root.scope(scope) else {
        return Ok(None);
    };
    let Some(text) = listener.get_str(ADMIN_LISTEN)?.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let refuse = |reason: String| {
        let at = listener
            .lookup(ADMIN_LISTEN)
            .map(|o| o.location().clone())
            .unwrap_or_else(|| listener.location().clone());
        confparse::Diagnostic::error(format!("{scope} {ADMIN_LISTEN} {text:?}: {reason}")).at(at)
    };
    match ListenAddr::parse(&text) {
        Ok(ListenAddr::Tcp(addr)) => Ok(Some(addr)),
        Ok(ListenAddr::Unix(_)) => Err(refuse("must be a TCP address, not a path".into())),
        Err(err) => Err(refuse(err.reason.to_owned())),
    }
}

/// Binds the admin listener.
pub fn bind(addr: SocketAddr) -> Result<TcpListener, BindError> {
    let fail = |source| BindError {
        addr: ListenAddr::Tcp(addr),
        source,
    };
    let std = std::net::TcpListener::bind(addr).map_err(fail)?;
    std.set_nonblocking(true).map_err(fail)?;
    TcpListener::from_std(std).map_err(fail)
}

/// Called before each scrape to set the gauges read from live state.
pub type Refresh = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// A refresh that does nothing.
pub fn no_refresh() -> Refresh {
    Arc::new(|| Box::pin(async {}))
}

/// Serves `GET /metrics` on `listener` until `shutdown`; connections run on
/// `tasks` (so a drain can wait for them). Other paths are 404.
pub fn spawn(
    listener: TcpListener,
    registry: Arc<Registry>,
    refresh: Refresh,
    shutdown: CancellationToken,
    tasks: &TaskTracker,
) {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "admin HTTP listening (/metrics)");
    }
    let conns = tasks.clone();
    tasks.spawn(async move {
        loop {
            let stream = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(err) => {
                        tracing::warn!(error = %err, "admin accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let (registry, refresh, stop) = (registry.clone(), refresh.clone(), shutdown.clone());
            conns.spawn(serve_conn(stream, registry, refresh, stop));
        }
    });
}

async fn serve_conn(
    stream: tokio::net::TcpStream,
    registry: Arc<Registry>,
    refresh: Refresh,
    shutdown: CancellationToken,
) {
    let service = hyper::service::service_fn(move |req| {
        let (registry, refresh) = (registry.clone(), refresh.clone());
        async move { Ok::<_, std::convert::Infallible>(answer(req, &registry, &refresh).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = shutdown.cancelled() => conn.as_mut().graceful_shutdown(),
    }
}

async fn answer(
    req: Request<Incoming>,
    registry: &Registry,
    refresh: &Refresh,
) -> Response<Full<Bytes>> {
    let reply = |status, content_type, body: String| {
        Response::builder()
            .status(status)
            .header(hyper::header::CONTENT_TYPE, content_type)
            .body(Full::new(Bytes::from(body)))
            .unwrap_or_default()
    };
    if req.uri().path() != "/metrics" {
        return reply(StatusCode::NOT_FOUND, "text/plain", "try /metrics\n".into());
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET /metrics\n".into(),
        );
    }
    refresh().await;
    let mut body = String::with_capacity(16 << 10);
    match prometheus_client::encoding::text::encode(&mut body, registry) {
        Ok(()) => reply(StatusCode::OK, CONTENT_TYPE, body),
        Err(_) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            "encoding failed\n".into(),
        ),
    }
}

/// Bucket upper bounds (seconds) for latencies on a LAN bus: 100 µs to 10 s.
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// A histogram of durations with the fixed [`LATENCY_BUCKETS`], recorded
/// with atomic adds only (prometheus-client's own takes a mutex per
/// observation). Sum and count are read without a snapshot, so a scrape may
/// see them one observation apart, which Prometheus tolerates.
#[derive(Debug, Clone, Default)]
pub struct Histogram {
    inner: Arc<HistogramInner>,
}

#[derive(Debug, Default)]
struct HistogramInner {
    /// One per bound, then +Inf.
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_ns: AtomicU64,
}

impl Histogram {
    /// Records one duration.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = LATENCY_BUCKETS.partition_point(|b| *b < secs);
        self.inner.buckets[i].fetch_add(1, Ordering::Relaxed);
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.inner.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.inner
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .sum()
    }
}

impl TypedMetric for Histogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Histogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let mut buckets = [(0.0, 0u64); LATENCY_BUCKETS.len() + 1];
        for (i, slot) in buckets.iter_mut().enumerate() {
            let bound = LATENCY_BUCKETS.get(i).copied().unwrap_or(f64::INFINITY);
            *slot = (bound, self.inner.buckets[i].load(Ordering::Relaxed));
        }
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = self.inner.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_in_the_text() {
        let mut registry = Registry::default();
        let h = Histogram::default();
        registry.register("lat_seconds", "test", h.clone());
        h.observe(Duration::from_micros(50));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(60));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains("lat_seconds_count 3\n"), "{text}");
        assert!(
            text.contains("lat_seconds_bucket{le=\"0.0001\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("lat_seconds_bucket{le=\"0.005\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("lat_seconds_bucket{le=\"+Inf\"} 3\n"),
            "{text}"
        );
        assert_eq!(h.count(), 3);
    }

    fn admin_of(text: &str) -> Result<Option<SocketAddr>, String> {
        let conf = confparse::Loader::new()
            .load_str("admin.conf", text, None)
            .map_err(|e| e.to_string())?;
        read_admin_listen(conf.root(), "msgcserver_listener").map_err(|d| d.to_string())
    }

    #[test]
    fn admin_listen_is_off_unless_set_and_refused_where_written() {
        assert_eq!(admin_of("msgcserver_listener { }\n").unwrap(), None);
        assert_eq!(
            admin_of("msgcserver_listener {\n  admin_listen = \"127.0.0.1:9809\"\n}\n").unwrap(),
            Some("127.0.0.1:9809".parse().unwrap())
        );
        let err =
            admin_of("msgcserver_listener {\n  admin_listen = \"localhost:x\"\n}\n").unwrap_err();
        assert!(err.contains("admin.conf:2"), "{err}");
        assert!(err.contains("admin_listen"), "{err}");
        let err =
            admin_of("msgcserver_listener {\n\n  admin_listen = \"/tmp/a.sock\"\n}\n").unwrap_err();
        assert!(err.contains("admin.conf:3") && err.contains("TCP"), "{err}");
    }

    #[tokio::test]
    async fn serves_metrics_and_404_elsewhere() {
        let mut registry = Registry::default();
        let c = prometheus_client::metrics::counter::Counter::<u64>::default();
        registry.register("things", "things seen", c.clone());
        c.inc_by(7);
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let tasks = TaskTracker::new();
        spawn(
            listener,
            Arc::new(registry),
            no_refresh(),
            stop.clone(),
            &tasks,
        );
        let body = http_get(addr, "/metrics").await;
        assert!(body.starts_with("HTTP/1.1 200"), "{body}");
        assert!(body.contains("things_total 7\n"), "{body}");
        assert!(http_get(addr, "/nope").await.starts_with("HTTP/1.1 404"));
        stop.cancel();
        tasks.close();
        tokio::time::timeout(Duration::from_secs(5), tasks.wait())
            .await
            .unwrap();
    }

    async fn http_get(addr: SocketAddr, path: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }
}
