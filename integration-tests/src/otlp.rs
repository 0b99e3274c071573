//! A minimal OTLP/gRPC trace receiver for the tests: it accepts what the
//! services export (the collector's `TraceService/Export`) and keeps every
//! span with its service's name, so a test can rebuild whole traces.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;

/// One received span, its ids in hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// `service.name` of the resource that sent it.
    pub service: String,
    pub name: String,
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a trace's root.
    pub parent_span_id: String,
}

#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Span>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut received = Vec::new();
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|r| r.attributes.iter())
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                    Value::StringValue(s) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    received.push(Span {
                        service: service.clone(),
                        name: span.name,
                        trace_id: hex::encode(span.trace_id),
                        span_id: hex::encode(span.span_id),
                        parent_span_id: hex::encode(span.parent_span_id),
                    });
                }
            }
        }
        self.spans.lock().unwrap().extend(received);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

pub struct OtlpReceiver {
    pub port: u16,
    collector: Collector,
    task: tokio::task::JoinHandle<()>,
}

impl OtlpReceiver {
    pub async fn start() -> anyhow::Result<OtlpReceiver> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let collector = Collector::default();
        let service = TraceServiceServer::new(collector.clone());
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        let task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming)
                .await;
        });
        Ok(OtlpReceiver {
            port,
            collector,
            task,
        })
    }

    /// `OTEL_EXPORTER_OTLP_ENDPOINT` for the services.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn spans(&self) -> Vec<Span> {
        self.collector.spans.lock().unwrap().clone()
    }

    /// Every span of the trace that holds a span named `name`, once `ready`
    /// says the trace is complete, or what there is after `timeout`.
    pub async fn trace_of(
        &self,
        name: &str,
        timeout: Duration,
        ready: impl Fn(&[Span]) -> bool,
    ) -> Vec<Span> {
        let deadline = Instant::now() + timeout;
        loop {
            let spans = self.spans();
            let trace = spans
                .iter()
                .find(|s| s.name == name)
                .map(|root| {
                    spans
                        .iter()
                        .filter(|s| s.trace_id == root.trace_id)
                        .cloned()
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            if (!trace.is_empty() && ready(&trace)) || Instant::now() > deadline {
                return trace;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The services a trace's spans came from.
pub fn services(trace: &[Span]) -> BTreeSet<String> {
    trace.iter().map(|s| s.service.clone()).collect()
}

/// What is wrong with a trace's parent links: it must have exactly one
/// root, and every other span's parent must be a span of the trace.
pub fn link_problems(trace: &[Span]) -> Vec<String> {
    let ids: HashMap<&str, &Span> = trace.iter().map(|s| (s.span_id.as_str(), s)).collect();
    let mut problems = Vec::new();
    let roots: Vec<&Span> = trace
        .iter()
        .filter(|s| s.parent_span_id.is_empty())
        .collect();
    if roots.len() != 1 {
        problems.push(format!("{} roots: {roots:?}", roots.len()));
    }
    for span in trace {
        if !span.parent_span_id.is_empty() && !ids.contains_key(span.parent_span_id.as_str()) {
            problems.push(format!(
                "{} ({}) has a parent {} that is not in the trace",
                span.name, span.service, span.parent_span_id
            ));
        }
    }
    problems
}
