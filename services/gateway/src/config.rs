//! The gateway's configuration (`FACEPASS_*`, see docs/ARCHITECTURE.md).

use facepass_core::config::Validate;
use facepass_queue::AmqpConfig;
use facepass_server::client::PeerConfig;
use facepass_server::metrics::MetricsConfig;
use facepass_server::storage::{self, S3Config};
use facepass_server::telemetry::LogConfig;
use facepass_server::GrpcServerConfig;
use serde::{Deserialize, Serialize};

pub use crate::limits::Rate;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// The public gRPC API (facepass.v1) for Pixora.
    pub grpc: GrpcServerConfig,
    /// REST/JSON and the web UI for browsers.
    pub http_listen: String,
    /// HTTPS for the REST API and web app (`[http_tls]`): a certificate and
    /// key; a client CA here would make browsers present certificates.
    pub http_tls: facepass_server::tls::ServerTls,
    pub log: LogConfig,
    /// The Prometheus endpoint (`metrics.listen`, off when empty).
    pub metrics: MetricsConfig,
    /// PostgreSQL; the `catalog` schema lives here.
    pub database_url: String,
    pub pool_size: usize,
    /// Apply migrations/catalog at start-up.
    pub migrate_on_start: bool,
    pub amqp: AmqpConfig,
    /// Where photos are stored (shared with the detector): a folder, or
    /// `s3://bucket/prefix` with the `[s3]` section (docs/operations.md).
    pub storage_root: String,
    pub s3: S3Config,
    /// Token presented to detector, embedder and search.
    pub internal_token: String,
    pub detector: PeerConfig,
    pub embedder: PeerConfig,
    pub search: PeerConfig,
    /// Largest photo accepted, in bytes.
    pub max_upload_bytes: usize,
    /// Largest selfie accepted, in bytes (a phone selfie is a few MB): a
    /// larger body is refused, IMAGE_TOO_LARGE, before it is read.
    pub max_selfie_bytes: usize,
    /// Selfie bytes held at once (all searches and "forget me" requests
    /// together): the ceiling on the memory they take. A request that
    /// cannot get its share within `overload_wait_ms` is OVERLOADED (429
    /// with Retry-After).
    pub selfie_memory_bytes: usize,
    /// How long a request waits for a share of `selfie_memory_bytes`.
    pub overload_wait_ms: u64,
    /// A selfie search expected to wait longer than this (the selfies in
    /// flight over the rate they complete at, `shed.rs`) is shed at once:
    /// OVERLOADED, 429 with Retry-After the expected wait. 0: never shed.
    pub selfie_max_wait_ms: u64,
    /// Per-client rate limits (`[rate_limits]`).
    pub rate_limits: RateLimits,
    /// Take a guest's address from the first `X-Forwarded-For` entry (set
    /// this behind an ingress or load balancer that sets it; never when
    /// clients reach the gateway directly, or they choose their address).
    pub trust_forwarded_for: bool,
    /// How often the outbox relay looks for unsent events.
    pub outbox_poll_ms: u64,
    /// The operator credential of facepass.admin.v1 (studios, API keys);
    /// empty turns the admin API off. Set it from a secret
    /// (`FACEPASS_ADMIN_TOKEN`), never in a committed file.
    pub admin_token: String,
    /// Seals the guest links' tokens at rest (docs/security.md §4): at least
    /// 16 characters, the same on every gateway (from the secret
    /// `FACEPASS_SHARE_LINK_KEY`). Several, separated by commas, while
    /// rotating: the first seals, each opens. Required to serve (not for
    /// `migrate` and `create-studio`).
    pub share_link_key: String,
    /// How often expired events (retain_until) are looked for and purged.
    pub retention_poll_ms: u64,
    /// An upload's object whose photo row has not committed this long after
    /// the upload began is an orphan and is removed; an event deletion begun
    /// this long ago and not finished is finished. Must exceed
    /// `grpc.request_timeout_ms`, the longest an upload can take.
    pub orphan_grace_ms: u64,
    /// How often the sweeper looks for orphans and unfinished deletions.
    pub sweep_poll_ms: u64,
    /// The version of the privacy policy guests agree to before a search;
    /// the guest page shows it and sends it back with the consent.
    pub privacy_policy_version: String,
    /// Webhooks: the first retry's wait (then doubling, at most an hour).
    pub webhook_retry_base_ms: u64,
    /// Webhooks: a delivery is retried until this long after it was made.
    pub webhook_max_age_hours: u64,
    /// Webhooks: how long one attempt may take.
    pub webhook_timeout_ms: u64,
    /// Webhooks: how often due deliveries are looked for.
    pub webhook_poll_ms: u64,
    /// Webhooks may be plain http:// (development and tests only).
    pub webhook_allow_http: bool,
    /// Dashboard session cookies carry `Secure` (behind HTTPS, as in
    /// production; off for http://localhost development).
    pub secure_cookies: bool,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            grpc: GrpcServerConfig::with_listen("127.0.0.1:50051"),
            http_listen: "127.0.0.1:8080".into(),
            http_tls: facepass_server::tls::ServerTls::default(),
            log: LogConfig::default(),
            metrics: MetricsConfig::default(),
            database_url: "postgres://postgres@127.0.0.1:5432/facepass".into(),
            pool_size: 8,
            migrate_on_start: true,
            amqp: AmqpConfig::default(),
            storage_root: ".facepass/objects".into(),
            s3: S3Config::default(),
            internal_token: String::new(),
            detector: PeerConfig::new("http://127.0.0.1:50052", 30_000),
            embedder: PeerConfig::new("http://127.0.0.1:50053", 30_000),
            search: PeerConfig::new("http://127.0.0.1:50054", 30_000),
            max_upload_bytes: 50 * 1024 * 1024,
            max_selfie_bytes: 10 * 1024 * 1024,
            selfie_memory_bytes: 128 * 1024 * 1024,
            overload_wait_ms: 1_000,
            selfie_max_wait_ms: 5_000,
            rate_limits: RateLimits::default(),
            trust_forwarded_for: false,
            outbox_poll_ms: 500,
            admin_token: String::new(),
            share_link_key: String::new(),
            retention_poll_ms: 60_000,
            orphan_grace_ms: 15 * 60 * 1000,
            sweep_poll_ms: 60_000,
            privacy_policy_version: "2026-12-01".into(),
            webhook_retry_base_ms: 30_000,
            webhook_max_age_hours: 25,
            webhook_timeout_ms: 10_000,
            webhook_poll_ms: 1_000,
            webhook_allow_http: false,
            secure_cookies: false,
        }
    }
}

/// Per-client rate limits, per gateway (docs/reliability.md).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimits {
    /// Every request made with one API key (or a dashboard session of it).
    pub api_key: Rate,
    /// A guest link's searches, "forget me" requests and downloads, all
    /// guests together.
    pub guest_link: Rate,
    /// The same, from one guest address.
    pub guest_address: Rate,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            api_key: Rate::new(50.0, 100),
            guest_link: Rate::new(10.0, 30),
            guest_address: Rate::new(2.0, 10),
        }
    }
}

/// What a multipart selfie form may add to its selfies (boundaries,
/// headers, a face id).
pub const SELFIE_FORM_OVERHEAD: usize = 64 * 1024;

impl Validate for GatewayConfig {
    fn validate(&self) -> Vec<String> {
        let mut problems = self.grpc.problems();
        problems.extend(self.log.problems());
        problems.extend(self.metrics.problems());
        problems.extend(self.amqp.problems());
        problems.extend(self.detector.problems("detector"));
        problems.extend(self.embedder.problems("embedder"));
        problems.extend(self.search.problems("search"));
        problems.extend(storage::problems(&self.storage_root, &self.s3));
        problems.extend(self.http_tls.problems("http_tls"));
        if self.http_listen.parse::<std::net::SocketAddr>().is_err() {
            problems.push(format!(
                "http_listen {:?} is not an address",
                self.http_listen
            ));
        }
        if !self.database_url.starts_with("postgres") {
            problems.push("database_url must be a postgres:// URL".into());
        }
        if self.pool_size == 0 {
            problems.push("pool_size must be at least 1".into());
        }
        if self.max_upload_bytes == 0 || self.max_upload_bytes > self.grpc.max_message_bytes {
            problems.push(
                "max_upload_bytes must be positive and at most grpc.max_message_bytes".into(),
            );
        }
        problems.extend(self.rate_limits.api_key.problems("rate_limits.api_key"));
        problems.extend(
            self.rate_limits
                .guest_link
                .problems("rate_limits.guest_link"),
        );
        problems.extend(
            self.rate_limits
                .guest_address
                .problems("rate_limits.guest_address"),
        );
        if self.max_selfie_bytes == 0 || self.max_selfie_bytes > self.max_upload_bytes {
            problems.push("max_selfie_bytes must be positive and at most max_upload_bytes".into());
        }
        // A "me and a friend" search holds two selfies and its form.
        if self.selfie_memory_bytes < 2 * self.max_selfie_bytes + SELFIE_FORM_OVERHEAD {
            problems.push(
                "selfie_memory_bytes must hold at least two selfies of max_selfie_bytes".into(),
            );
        }
        if !self.admin_token.is_empty() && self.admin_token.len() < 16 {
            problems.push(
                "admin_token must be at least 16 characters (or empty: admin API off)".into(),
            );
        }
        if self.webhook_retry_base_ms == 0
            || self.webhook_poll_ms == 0
            || self.webhook_timeout_ms == 0
        {
            problems.push(
                "webhook_retry_base_ms, webhook_poll_ms and webhook_timeout_ms must be positive"
                    .into(),
            );
        }
        if self.webhook_max_age_hours < 24 {
            problems.push("webhook_max_age_hours must be at least 24".into());
        }
        if self.retention_poll_ms == 0 {
            problems.push("retention_poll_ms must be positive".into());
        }
        if self.sweep_poll_ms == 0 {
            problems.push("sweep_poll_ms must be positive".into());
        }
        if self.orphan_grace_ms <= self.grpc.request_timeout_ms {
            problems.push(format!(
                "orphan_grace_ms ({}) must be longer than grpc.request_timeout_ms ({}): \
                 an upload still running must not be taken for an orphan",
                self.orphan_grace_ms, self.grpc.request_timeout_ms
            ));
        }
        if self.privacy_policy_version.trim().is_empty() || self.privacy_policy_version.len() > 64 {
            problems.push("privacy_policy_version must be 1 to 64 characters".into());
        }
        if self.outbox_poll_ms == 0 {
            problems.push("outbox_poll_ms must be positive".into());
        }
        problems
    }
}
