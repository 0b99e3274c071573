//! The gRPC server bootstrap every service uses: bind, one tower stack,
//! health and reflection, graceful shutdown with a grace period.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::LoadShedLayer;
use tower::ServiceBuilder;
use tower_http::trace::TraceLayer;

use crate::Shutdown;

/// The `[grpc]` section of every service's config.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcServerConfig {
    /// Address to listen on; port 0 picks a free port (tests).
    pub listen: String,
    /// Upper bound on any one request's handling.
    pub request_timeout_ms: u64,
    /// Requests handled at once across all connections; more are refused
    /// with RESOURCE_EXHAUSTED instead of queueing without bound.
    pub concurrency_limit: usize,
    /// Largest request or response message.
    pub max_message_bytes: usize,
    /// How long in-flight requests may finish after SIGTERM.
    pub shutdown_grace_ms: u64,
    /// TLS, and mutual TLS with a client CA (`[grpc.tls]`); off when empty.
    pub tls: crate::tls::ServerTls,
}

impl GrpcServerConfig {
    pub fn with_listen(listen: &str) -> Self {
        GrpcServerConfig {
            listen: listen.to_string(),
            ..GrpcServerConfig::default()
        }
    }

    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.listen.parse::<SocketAddr>().is_err() {
            problems.push(format!(
                "grpc.listen {:?} is not an address like 127.0.0.1:50051",
                self.listen
            ));
        }
        if self.request_timeout_ms == 0 {
            problems.push("grpc.request_timeout_ms must be positive".into());
        }
        if self.concurrency_limit == 0 {
            problems.push("grpc.concurrency_limit must be at least 1".into());
        }
        if self.max_message_bytes < 1024 {
            problems.push("grpc.max_message_bytes must be at least 1024".into());
        }
        problems.extend(self.tls.problems("grpc.tls"));
        problems
    }
}

impl Default for GrpcServerConfig {
    fn default() -> Self {
        GrpcServerConfig {
            listen: "127.0.0.1:0".into(),
            request_timeout_ms: 30_000,
            concurrency_limit: 256,
            max_message_bytes: 64 * 1024 * 1024,
            shutdown_grace_ms: 10_000,
            tls: crate::tls::ServerTls::default(),
        }
    }
}

/// A bound, not yet serving, gRPC server.
/// The service's label in metrics: `facepass.detector.v1.DetectorService`
/// is `detector`, the public `facepass.v1.FacePassService` is `gateway`.
pub fn short_name(service: &'static str) -> &'static str {
    let mut parts = service.split('.');
    match (parts.next(), parts.next()) {
        (Some("facepass"), Some("v1")) => "gateway",
        (Some("facepass"), Some(name)) => name,
        _ => service,
    }
}

/// The span of one gRPC request: named after its method, a child of the
/// trace the caller sent (`traceparent`); none for health checks and
/// reflection, which would drown the traces.
fn server_span<B>(request: &http::Request<B>) -> tracing::Span {
    let path = request.uri().path();
    if path.starts_with("/grpc.") {
        return tracing::Span::none();
    }
    let span =
        tracing::info_span!("grpc", otel.name = %path, otel.kind = "server", rpc.system = "grpc");
    crate::telemetry::set_parent(
        &span,
        request
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?))),
    );
    span
}

pub struct GrpcServer {
    listener: TcpListener,
    config: GrpcServerConfig,
}

impl GrpcServer {
    pub async fn bind(config: &GrpcServerConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(&config.listen).await?;
        Ok(GrpcServer {
            listener,
            config: config.clone(),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves `routes` plus health and reflection until `shutdown` fires,
    /// then lets in-flight requests finish within the grace period.
    pub async fn serve<H>(
        self,
        service: &'static str,
        routes: Routes,
        health: H,
        shutdown: Shutdown,
    ) -> anyhow::Result<()>
    where
        H: tonic::server::NamedService
            + tower::Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = std::convert::Infallible,
            > + Clone
            + Send
            + Sync
            + 'static,
        H::Future: Send + 'static,
    {
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(facepass_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let routes = routes.add_service(health).add_service(reflection);

        let addr = self.local_addr();
        let config = self.config;
        let grace = Duration::from_millis(config.shutdown_grace_ms);
        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = config.tls.tonic()? {
            builder = builder.tls_config(tls)?;
            tracing::info!(
                service,
                mutual = !config.tls.client_ca_path.is_empty(),
                "grpc over tls"
            );
        }
        let server = builder
            // Every handler is bounded in time; a stuck dependency cannot pin a request forever.
            .timeout(Duration::from_millis(config.request_timeout_ms))
            // Dead peers are noticed and their connections closed.
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .tcp_nodelay(true)
            .layer(
                ServiceBuilder::new()
                    // Outermost: a span for every request, the refused ones included,
                    // continuing the caller's trace (health checks get none).
                    .layer(TraceLayer::new_for_grpc().make_span_with(server_span))
                    // Counted and timed, the refused ones included (metrics.rs).
                    .layer(crate::metrics::RpcMetricsLayer::new(short_name(service)))
                    // Refuse at once (RESOURCE_EXHAUSTED) when the limit below is
                    // full, instead of queueing requests that would time out anyway.
                    .layer(LoadShedLayer::new())
                    // Bounds work in flight across all connections, protecting
                    // memory and the blocking pools behind the handlers.
                    .layer(GlobalConcurrencyLimitLayer::new(config.concurrency_limit)),
            )
            .add_routes(routes);

        tracing::info!(service, %addr, "grpc server listening");
        let incoming = TcpIncoming::from(self.listener).with_nodelay(Some(true));
        let serving = server.serve_with_incoming_shutdown(incoming, shutdown.wait());
        tokio::pin!(serving);
        let grace_over = async {
            shutdown.wait().await;
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            result = &mut serving => result?,
            _ = grace_over => tracing::warn!(service, "grace period over; closing remaining connections"),
        }
        tracing::info!(service, "grpc server stopped");
        Ok(())
    }
}
