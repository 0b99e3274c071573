//! The search service's configuration (`FACEPASS_*`, see docs/ARCHITECTURE.md).

use facepass_core::config::Validate;
use facepass_server::telemetry::LogConfig;
use facepass_server::GrpcServerConfig;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SearchConfig {
    pub grpc: GrpcServerConfig,
    pub log: LogConfig,
    /// PostgreSQL with pgvector; the `faces` schema lives here.
    pub database_url: String,
    pub pool_size: usize,
    /// Apply migrations/faces at start-up.
    pub migrate_on_start: bool,
    /// Shared token internal callers must present; empty disables the check.
    pub internal_token: String,
    /// Most photos one search may return.
    pub max_results: u32,
    /// Most faces one photo may carry.
    pub max_faces_per_photo: usize,
    /// Embedding dimension of the face table.
    pub dimension: usize,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            grpc: GrpcServerConfig::with_listen("127.0.0.1:50054"),
            log: LogConfig::default(),
            database_url: "postgres://postgres@127.0.0.1:5432/facepass".into(),
            pool_size: 8,
            migrate_on_start: true,
            internal_token: String::new(),
            max_results: 5_000,
            max_faces_per_photo: 512,
            dimension: 512,
        }
    }
}

impl Validate for SearchConfig {
    fn validate(&self) -> Vec<String> {
        let mut problems = self.grpc.problems();
        problems.extend(self.log.problems());
        if !self.database_url.starts_with("postgres") {
            problems.push("database_url must be a postgres:// URL".into());
        }
        if self.pool_size == 0 {
            problems.push("pool_size must be at least 1".into());
        }
        if self.max_results == 0 {
            problems.push("max_results must be at least 1".into());
        }
        if self.dimension != 512 {
            problems.push("dimension must be 512 (the faces table is vector(512))".into());
        }
        problems
    }
}
