//! The indexer's configuration (`FACEPASS_*`, see docs/ARCHITECTURE.md).

use facepass_core::config::Validate;
use facepass_queue::AmqpConfig;
use facepass_server::client::PeerConfig;
use facepass_server::metrics::MetricsConfig;
use facepass_server::telemetry::LogConfig;
use facepass_server::GrpcServerConfig;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IndexerConfig {
    /// Serves only grpc.health.v1 and reflection.
    pub grpc: GrpcServerConfig,
    pub log: LogConfig,
    /// The Prometheus endpoint (`metrics.listen`, off when empty).
    pub metrics: MetricsConfig,
    pub amqp: AmqpConfig,
    /// Token presented to detector, embedder and search.
    pub internal_token: String,
    pub detector: PeerConfig,
    pub embedder: PeerConfig,
    pub search: PeerConfig,
    /// Unacknowledged deliveries at once (also the photos processed at once).
    pub prefetch: u16,
    /// How long transient failures (a dependency unreachable, overloaded or
    /// timing out) are retried, from the first attempt, before the photo is
    /// failed: an outage of hours does not fail photos.
    pub retry_for_ms: u64,
    /// A cap on attempts as well; 0 (the default): none, only `retry_for_ms`.
    pub max_attempts: u32,
    /// First retry delay; doubles with each attempt up to retry_max_ms.
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
}

impl Default for IndexerConfig {
    fn default() -> Self {
        IndexerConfig {
            grpc: GrpcServerConfig::with_listen("127.0.0.1:50055"),
            log: LogConfig::default(),
            metrics: MetricsConfig::default(),
            amqp: AmqpConfig::default(),
            internal_token: String::new(),
            detector: PeerConfig::new("http://127.0.0.1:50052", 60_000),
            embedder: PeerConfig::new("http://127.0.0.1:50053", 60_000),
            search: PeerConfig::new("http://127.0.0.1:50054", 30_000),
            prefetch: 4,
            retry_for_ms: 6 * 3_600_000,
            max_attempts: 0,
            retry_base_ms: 1_000,
            retry_max_ms: 60_000,
        }
    }
}

impl Validate for IndexerConfig {
    fn validate(&self) -> Vec<String> {
        let mut problems = self.grpc.problems();
        problems.extend(self.log.problems());
        problems.extend(self.metrics.problems());
        problems.extend(self.amqp.problems());
        problems.extend(self.detector.problems("detector"));
        problems.extend(self.embedder.problems("embedder"));
        problems.extend(self.search.problems("search"));
        if self.prefetch == 0 {
            problems.push("prefetch must be at least 1".into());
        }
        if self.retry_for_ms < self.retry_base_ms {
            problems.push("retry_for_ms must be at least retry_base_ms".into());
        }
        if self.retry_base_ms == 0 || self.retry_max_ms < self.retry_base_ms {
            problems.push("retry_base_ms must be positive and at most retry_max_ms".into());
        }
        problems
    }
}
