//! Prometheus metrics: one registry per process, served as text at
//! `http://<metrics.listen>/metrics` (off when `metrics.listen` is empty).
//!
//! Every service gets the RPC metrics of its gRPC server from
//! [`RpcMetricsLayer`] (requests by method and status code, latency, work in
//! flight); services add their own (queue depth, batch sizes, decode time…)
//! with [`register`]. docs/operations.md lists them all with the alerts to
//! set.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Metric, Registry};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::Shutdown;

/// The metric types, for services' own metrics without a dependency of their own.
pub use prometheus_client;

/// The `[metrics]` section of every service's config.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Address of the Prometheus endpoint, e.g. `0.0.0.0:9464`; empty
    /// turns it off.
    pub listen: String,
}

impl MetricsConfig {
    pub fn problems(&self) -> Vec<String> {
        if !self.listen.is_empty() && self.listen.parse::<SocketAddr>().is_err() {
            return vec![format!(
                "metrics.listen {:?} is not an address like 0.0.0.0:9464",
                self.listen
            )];
        }
        Vec::new()
    }
}

fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(Registry::default()))
}

/// Adds `metric` to the process's registry under `name` (without the
/// `_total` suffix counters get) and returns it. Metrics are cheap clones
/// of shared counters, so the caller keeps its handle.
pub fn register<M: Metric + Clone>(name: &str, help: &str, metric: M) -> M {
    registry()
        .lock()
        .unwrap()
        .register(name, help, metric.clone());
    metric
}

/// The registry in the OpenMetrics text format (Prometheus reads it).
pub fn render() -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry().lock().unwrap())
        .expect("writing to a String cannot fail");
    out
}

/// Buckets for durations in seconds: 1 ms to about 33 s.
pub fn seconds_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.001, 2.0, 16)
}

/// A histogram of seconds with [`seconds_buckets`].
pub fn seconds_histogram() -> Histogram {
    Histogram::new(seconds_buckets())
}

/// The exposition format `render` writes (what Prometheus negotiates).
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves `/metrics` until `shutdown`; returns the bound address (`None`
/// when turned off). A plain HTTP/1.1 responder: Prometheus asks one GET per
/// scrape, and nothing else is served here.
pub async fn serve(
    config: &MetricsConfig,
    shutdown: Shutdown,
) -> anyhow::Result<Option<SocketAddr>> {
    if config.listen.is_empty() {
        return Ok(None);
    }
    let listener = TcpListener::bind(&config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen for metrics on {}: {e}", config.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "metrics at http://{addr}/metrics");
    tokio::spawn(async move {
        // A few scrapes at a time; a client that never reads cannot pile
        // up connections.
        let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(16));
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = shutdown.wait() => return,
            };
            let Ok((mut socket, _)) = accepted else {
                // Out of file descriptors, say: do not spin.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                continue;
            };
            tokio::spawn(async move {
                let _slot = slot;
                let mut head = Vec::with_capacity(512);
                let mut buf = [0u8; 1024];
                let read = tokio::time::timeout(std::time::Duration::from_secs(5), async {
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
                        let n = socket.read(&mut buf).await?;
                        if n == 0 {
                            break;
                        }
                        head.extend_from_slice(&buf[..n]);
                    }
                    Ok::<_, std::io::Error>(())
                })
                .await;
                if !matches!(read, Ok(Ok(()))) {
                    return;
                }
                let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
                let ready = crate::health::process_readiness().map(|r| r.get());
                let (status, kind, body) = answer(line, ready);
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
                    socket.write_all(response.as_bytes()).await?;
                    socket.shutdown().await
                })
                .await;
            });
        }
    });
    Ok(Some(addr))
}

const TEXT: &str = "text/plain; charset=utf-8";

/// What the metrics port answers to a request line: the metrics, and the
/// probes (`/livez`, `/readyz`: the same verdict as grpc.health.v1), which
/// stay plain HTTP when the service's gRPC speaks TLS.
fn answer(line: &[u8], ready: Option<Result<(), String>>) -> (&'static str, &'static str, String) {
    let path = |p: &str| {
        line.strip_prefix(b"GET ")
            .and_then(|rest| rest.strip_prefix(p.as_bytes()))
            .is_some_and(|rest| rest.starts_with(b" ") || rest.starts_with(b"?"))
    };
    if path("/metrics") {
        ("200 OK", OPENMETRICS, render())
    } else if path("/livez") || path("/healthz") {
        ("200 OK", TEXT, "ok\n".into())
    } else if path("/readyz") {
        match ready {
            Some(Ok(())) => ("200 OK", TEXT, "ready\n".into()),
            Some(Err(why)) => (
                "503 Service Unavailable",
                TEXT,
                format!("not ready: {why}\n"),
            ),
            None => (
                "503 Service Unavailable",
                TEXT,
                "not ready: starting\n".into(),
            ),
        }
    } else {
        (
            "404 Not Found",
            TEXT,
            "GET /metrics, /livez and /readyz are served here\n".into(),
        )
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    service: String,
    method: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    service: String,
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    service: String,
}

#[derive(Clone)]
struct RpcMetrics {
    requests: Family<RpcLabels, Counter>,
    seconds: Family<MethodLabels, Histogram>,
    in_flight: Family<ServiceLabels, Gauge>,
}

fn rpc_metrics() -> &'static RpcMetrics {
    static RPC: OnceLock<RpcMetrics> = OnceLock::new();
    RPC.get_or_init(|| RpcMetrics {
        requests: register(
            "facepass_rpc_server_requests",
            "gRPC requests handled, by method and status code (OK, UNAVAILABLE, ...)",
            Family::default(),
        ),
        seconds: register(
            "facepass_rpc_server_duration_seconds",
            "Time from a request's arrival to its response headers, by method",
            Family::new_with_constructor(seconds_histogram),
        ),
        in_flight: register(
            "facepass_rpc_server_in_flight",
            "gRPC requests being handled now (the embedder's autoscaling signal)",
            Family::default(),
        ),
    })
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    method: String,
}

struct HttpMetrics {
    requests: Family<HttpLabels, Counter>,
    seconds: Family<RouteLabels, Histogram>,
}

fn http_metrics() -> &'static HttpMetrics {
    static HTTP: OnceLock<HttpMetrics> = OnceLock::new();
    HTTP.get_or_init(|| HttpMetrics {
        requests: register(
            "facepass_http_server_requests",
            "REST requests handled by the gateway, by route template, method and status",
            Family::default(),
        ),
        seconds: register(
            "facepass_http_server_duration_seconds",
            "REST requests' time to the response headers, by route template and method",
            Family::new_with_constructor(seconds_histogram),
        ),
    })
}

/// Records one REST request. `route` is the route's template
/// (`/api/v1/events/{event_id}`), never the path itself, so ids never become
/// label values.
pub fn http_request(route: &str, method: &str, status: u16, seconds: f64) {
    let metrics = http_metrics();
    metrics
        .seconds
        .get_or_create(&RouteLabels {
            route: route.to_string(),
            method: method.to_string(),
        })
        .observe(seconds);
    metrics
        .requests
        .get_or_create(&HttpLabels {
            route: route.to_string(),
            method: method.to_string(),
            status,
        })
        .inc();
}

/// Counts and times every request of a gRPC server.
#[derive(Clone)]
pub struct RpcMetricsLayer {
    service: &'static str,
}

impl RpcMetricsLayer {
    /// `service`: the label value, e.g. `embedder`.
    pub fn new(service: &'static str) -> Self {
        rpc_metrics();
        RpcMetricsLayer { service }
    }
}

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetricsService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RpcMetricsService {
            inner,
            service: self.service,
        }
    }
}

#[derive(Clone)]
pub struct RpcMetricsService<S> {
    inner: S,
    service: &'static str,
}

/// Keeps a call counted in flight until it ends, however it ends.
struct CallGuard {
    gauge: Gauge,
    service: String,
    method: String,
    started: Instant,
    finished: bool,
}

impl CallGuard {
    fn new(gauge: Gauge, service: String, method: String, started: Instant) -> Self {
        gauge.inc();
        CallGuard {
            gauge,
            service,
            method,
            started,
            finished: false,
        }
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.gauge.dec();
        if !self.finished {
            let metrics = rpc_metrics();
            metrics
                .seconds
                .get_or_create(&MethodLabels {
                    service: self.service.clone(),
                    method: self.method.clone(),
                })
                .observe(self.started.elapsed().as_secs_f64());
            metrics
                .requests
                .get_or_create(&RpcLabels {
                    service: self.service.clone(),
                    method: self.method.clone(),
                    code: "CANCELLED".into(),
                })
                .inc();
        }
    }
}

/// The status name of a gRPC status code number.
pub fn code_name(code: &str) -> &'static str {
    match code.parse::<i32>().map(tonic::Code::from) {
        Ok(tonic::Code::Ok) => "OK",
        Ok(tonic::Code::Cancelled) => "CANCELLED",
        Ok(tonic::Code::Unknown) => "UNKNOWN",
        Ok(tonic::Code::InvalidArgument) => "INVALID_ARGUMENT",
        Ok(tonic::Code::DeadlineExceeded) => "DEADLINE_EXCEEDED",
        Ok(tonic::Code::NotFound) => "NOT_FOUND",
        Ok(tonic::Code::AlreadyExists) => "ALREADY_EXISTS",
        Ok(tonic::Code::PermissionDenied) => "PERMISSION_DENIED",
        Ok(tonic::Code::ResourceExhausted) => "RESOURCE_EXHAUSTED",
        Ok(tonic::Code::FailedPrecondition) => "FAILED_PRECONDITION",
        Ok(tonic::Code::Aborted) => "ABORTED",
        Ok(tonic::Code::OutOfRange) => "OUT_OF_RANGE",
        Ok(tonic::Code::Unimplemented) => "UNIMPLEMENTED",
        Ok(tonic::Code::Internal) => "INTERNAL",
        Ok(tonic::Code::Unavailable) => "UNAVAILABLE",
        Ok(tonic::Code::DataLoss) => "DATA_LOSS",
        Ok(tonic::Code::Unauthenticated) => "UNAUTHENTICATED",
        Err(_) => "UNKNOWN",
    }
}

impl<S, B, R> tower::Service<http::Request<B>> for RpcMetricsService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let metrics = rpc_metrics();
        let service = self.service.to_string();
        // Method paths are the server's own routes; anything else is one label.
        let path = request.uri().path();
        let method = if path.starts_with("/facepass.") || path.starts_with("/grpc.") {
            path.to_string()
        } else {
            "other".to_string()
        };
        let gauge = metrics
            .in_flight
            .get_or_create(&ServiceLabels {
                service: service.clone(),
            })
            .clone();
        let started = Instant::now();
        let future = self.inner.call(request);
        // Decrements the gauge and counts the call as CANCELLED if the
        // caller goes away before the response (its future is dropped).
        let guard = CallGuard::new(gauge, service.clone(), method.clone(), started);
        Box::pin(async move {
            // The whole guard moves in (not only the field written below).
            let mut guard = guard;
            let result = future.await;
            guard.finished = true;
            // A unary call's error is a trailers-only response: its status is
            // in the headers. A success carries grpc-status in the trailers.
            let code = match &result {
                Ok(response) => response
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .map(code_name)
                    .unwrap_or("OK"),
                Err(_) => "UNAVAILABLE",
            };
            metrics
                .seconds
                .get_or_create(&MethodLabels {
                    service: service.clone(),
                    method: method.clone(),
                })
                .observe(started.elapsed().as_secs_f64());
            metrics
                .requests
                .get_or_create(&RpcLabels {
                    service,
                    method,
                    code: code.to_string(),
                })
                .inc();
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_metrics_are_rendered() {
        let counter = register(
            "facepass_test_things",
            "Things counted in a test",
            Counter::<u64>::default(),
        );
        counter.inc_by(3);
        let text = render();
        assert!(
            text.contains("# HELP facepass_test_things Things counted in a test"),
            "{text}"
        );
        assert!(text.contains("facepass_test_things_total 3"), "{text}");
    }

    #[test]
    fn the_probes_answer_beside_the_metrics() {
        let status =
            |line: &str, ready: Option<Result<(), String>>| answer(line.as_bytes(), ready).0;
        assert_eq!(status("GET /livez HTTP/1.1", None), "200 OK");
        assert_eq!(status("GET /healthz HTTP/1.1", None), "200 OK");
        assert_eq!(status("GET /readyz HTTP/1.1", Some(Ok(()))), "200 OK");
        let (code, _, body) = answer(
            b"GET /readyz HTTP/1.1",
            Some(Err("database: timeout".into())),
        );
        assert_eq!(
            (code, body.as_str()),
            ("503 Service Unavailable", "not ready: database: timeout\n")
        );
        assert_eq!(
            status("GET /readyz HTTP/1.1", None),
            "503 Service Unavailable"
        );
        assert_eq!(status("GET /metrics?x=1 HTTP/1.1", None), "200 OK");
        assert_eq!(status("GET /metricsx HTTP/1.1", None), "404 Not Found");
        assert_eq!(
            status("POST /readyz HTTP/1.1", Some(Ok(()))),
            "404 Not Found"
        );
    }

    #[test]
    fn status_codes_have_their_names() {
        assert_eq!(code_name("0"), "OK");
        assert_eq!(code_name("14"), "UNAVAILABLE");
        assert_eq!(code_name("x"), "UNKNOWN");
    }

    #[test]
    fn the_listen_address_is_checked() {
        assert!(MetricsConfig::default().problems().is_empty());
        let bad = MetricsConfig {
            listen: "metrics".into(),
        };
        assert_eq!(bad.problems().len(), 1);
    }

    #[tokio::test]
    async fn a_call_the_caller_drops_leaves_the_gauge_and_counts_as_cancelled() {
        use tower::{Layer, Service};
        let mut svc = RpcMetricsLayer::new("unit-test").layer(tower::service_fn(
            |_request: http::Request<()>| async {
                std::future::pending::<Result<http::Response<()>, std::convert::Infallible>>().await
            },
        ));
        let request = http::Request::builder()
            .uri("/facepass.test.v1.Test/Hang")
            .body(())
            .unwrap();
        let call = svc.call(request);
        let in_flight = r#"facepass_rpc_server_in_flight{service="unit-test"}"#;
        assert!(render().contains(&format!("{in_flight} 1")), "{}", render());
        drop(call);
        let text = render();
        assert!(text.contains(&format!("{in_flight} 0")), "{text}");
        assert!(
            text.contains(r#"facepass_rpc_server_requests_total{service="unit-test",method="/facepass.test.v1.Test/Hang",code="CANCELLED"} 1"#),
            "{text}"
        );
    }

    #[tokio::test]
    async fn the_endpoint_serves_metrics_and_nothing_else() {
        register(
            "facepass_test_served",
            "A gauge served in a test",
            Gauge::<i64>::default(),
        )
        .set(7);
        let shutdown = Shutdown::new();
        let config = MetricsConfig {
            listen: "127.0.0.1:0".into(),
        };
        let addr = serve(&config, shutdown.clone()).await.unwrap().unwrap();
        let get = |path: &'static str| async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
                .await
                .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        };
        let ok = get("/metrics").await;
        assert!(ok.starts_with("HTTP/1.1 200 OK"), "{ok}");
        assert!(ok.contains("facepass_test_served 7"), "{ok}");
        assert!(get("/").await.starts_with("HTTP/1.1 404"));
        shutdown.trigger();
    }
}
