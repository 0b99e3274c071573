//! Structured logging and distributed traces.
//!
//! Every service logs through `tracing` with fields, as JSON lines in
//! production (`format = "json"`) or compact text for people. When
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is
//! set, the same spans also go to an OpenTelemetry collector by OTLP/gRPC,
//! configured by the standard `OTEL_*` variables (`OTEL_SERVICE_NAME`,
//! default `facepass-<service>`; `OTEL_TRACES_SAMPLER[_ARG]`;
//! `OTEL_BSP_SCHEDULE_DELAY`, …), and are flushed when the service stops.
//!
//! Trace context travels as W3C `traceparent`/`tracestate`: in gRPC metadata
//! (the internal clients' interceptor injects it, every gRPC server's span
//! takes it as its parent), in AMQP message headers, and in the outbox row a
//! photo's upload writes, so one photo is one trace from its upload to its
//! outcome (docs/operations.md, "Traces").

use std::collections::HashMap;

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use serde::{Deserialize, Serialize};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Logging settings, the `[log]` section of every service's config.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: String,
    /// An `EnvFilter` directive, e.g. `info,facepass_search=debug`.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: "text".into(),
            filter: "info".into(),
        }
    }
}

impl LogConfig {
    /// Problems with these settings, for the service's `Validate`.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !matches!(self.format.as_str(), "text" | "json") {
            problems.push(format!(
                "log.format must be text or json, not {:?}",
                self.format
            ));
        }
        if let Err(e) = EnvFilter::try_new(&self.filter) {
            problems.push(format!(
                "log.filter {:?} is not a valid filter: {e}",
                self.filter
            ));
        }
        problems
    }
}

/// Where traces go, from the standard variables; `None`: tracing is off.
pub fn otlp_endpoint() -> Option<String> {
    if std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true")) {
        return None;
    }
    [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    .iter()
    .filter_map(|name| std::env::var(name).ok())
    .find(|v| !v.trim().is_empty())
}

/// Keeps the trace exporter alive; dropping it (or [`Telemetry::shutdown`])
/// sends the spans still buffered.
#[must_use = "dropping the guard stops trace export"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Flushes and stops the exporter (idempotent).
    pub fn shutdown(&mut self) {
        if let Some(provider) = self.provider.take() {
            if let Err(e) = provider.shutdown() {
                eprintln!("trace export did not shut down cleanly: {e}");
            }
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Installs the global subscriber (and, when configured, the trace
/// exporter); call once at the top of `main`, inside the Tokio runtime, and
/// keep the guard until the service stops. `service` is recorded on every
/// log line so merged logs stay readable.
pub fn init(service: &'static str, config: &LogConfig) -> Telemetry {
    let filter = EnvFilter::try_new(&config.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(true);
    let fmt = if config.format == "json" {
        fmt.json().flatten_event(true).with_filter(filter).boxed()
    } else {
        fmt.compact().with_filter(filter).boxed()
    };
    let mut problem = None;
    let provider = otlp_endpoint().and_then(|endpoint| match exporter(service) {
        Ok(provider) => Some((provider, endpoint)),
        Err(e) => {
            problem = Some(format!("trace export to {endpoint} is off: {e}"));
            None
        }
    });
    let otel = provider.as_ref().map(|(provider, _)| {
        let tracer = provider.tracer(format!("facepass-{service}"));
        // Spans at INFO and above (every request, photo and search span);
        // the libraries' own DEBUG/TRACE spans stay out.
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(EnvFilter::new("info"))
    });
    let result = tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .try_init();
    if result.is_ok() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        tracing::info!(
            service,
            version = env!("CARGO_PKG_VERSION"),
            "logging started"
        );
        match (&provider, problem) {
            (Some((_, endpoint)), _) => tracing::info!(%endpoint, "traces exported by OTLP/gRPC"),
            (None, Some(why)) => tracing::warn!(%why, "traces not exported"),
            (None, None) => {}
        }
    }
    Telemetry {
        provider: provider.map(|(provider, _)| provider),
    }
}

fn exporter(service: &'static str) -> Result<SdkTracerProvider, String> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
        .map_err(|e| e.to_string())?;
    let resource = if std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.is_empty()) {
        Resource::builder().build()
    } else {
        Resource::builder()
            .with_service_name(format!("facepass-{service}"))
            .build()
    };
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

struct MapInjector<'a>(&'a mut Vec<(String, String)>);

impl Injector for MapInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.push((key.to_string(), value));
    }
}

struct PairsExtractor<'a>(HashMap<&'a str, &'a str>);

impl Extractor for PairsExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).copied()
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().copied().collect()
    }
}

/// The W3C trace headers (`traceparent`, `tracestate`) of `span`; empty when
/// tracing is off or the span is not recorded.
pub fn headers_of(span: &tracing::Span) -> Vec<(String, String)> {
    let context = span.context();
    let mut headers = Vec::new();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut MapInjector(&mut headers))
    });
    headers
}

/// [`headers_of`] the current span.
pub fn current_headers() -> Vec<(String, String)> {
    headers_of(&tracing::Span::current())
}

/// Makes the trace those headers carry the parent of `span` (nothing when
/// they carry none). Call before the span is first entered.
pub fn set_parent<'a>(span: &tracing::Span, headers: impl IntoIterator<Item = (&'a str, &'a str)>) {
    let extractor = PairsExtractor(headers.into_iter().collect());
    if extractor.0.is_empty() {
        return;
    }
    let context =
        opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&extractor));
    let _ = span.set_parent(context);
}

/// The current span's `traceparent` alone (kept with an outbox row).
pub fn current_traceparent() -> Option<String> {
    current_headers()
        .into_iter()
        .find(|(k, _)| k == "traceparent")
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_carry_a_parent_across() {
        // A subscriber with the OpenTelemetry layer and an in-memory
        // provider, for this thread only.
        let provider = SdkTracerProvider::builder().build();
        let tracer = provider.tracer("test");
        let subscriber =
            tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(tracer));
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        tracing::subscriber::with_default(subscriber, || {
            let upstream = tracing::info_span!("upload");
            let headers = headers_of(&upstream);
            let traceparent = headers
                .iter()
                .find(|(k, _)| k == "traceparent")
                .map(|(_, v)| v.clone())
                .expect("a traceparent");
            let trace_id = traceparent.split('-').nth(1).unwrap().to_string();
            assert_eq!(trace_id.len(), 32);

            let downstream = tracing::info_span!("index");
            set_parent(
                &downstream,
                headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            );
            let theirs = headers_of(&downstream);
            let their_parent = &theirs.iter().find(|(k, _)| k == "traceparent").unwrap().1;
            assert_eq!(
                their_parent.split('-').nth(1).unwrap(),
                trace_id,
                "same trace"
            );
            assert_ne!(their_parent, &traceparent, "its own span id");
        });
    }

    #[test]
    fn tracing_is_off_without_an_endpoint() {
        // The variables are not set in the test environment.
        if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_none()
            && std::env::var_os("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_none()
        {
            assert_eq!(otlp_endpoint(), None);
        }
    }
}
