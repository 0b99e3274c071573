//! The search service's configuration (`FACEPASS_*`, see docs/ARCHITECTURE.md).

use facepass_core::config::Validate;
use facepass_server::auth::InternalCallers;
use facepass_server::metrics::MetricsConfig;
use facepass_server::telemetry::LogConfig;
use facepass_server::GrpcServerConfig;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SearchConfig {
    pub grpc: GrpcServerConfig,
    pub log: LogConfig,
    /// The Prometheus endpoint (`metrics.listen`, off when empty).
    pub metrics: MetricsConfig,
    /// PostgreSQL with pgvector; the `faces` schema lives here.
    pub database_url: String,
    pub pool_size: usize,
    /// Apply migrations/faces at start-up.
    pub migrate_on_start: bool,
    /// A token any internal caller may present for any RPC (development,
    /// single-secret set-ups); empty with no `internal_callers` disables
    /// the check.
    pub internal_token: String,
    /// Each internal caller's own tokens (docs/security.md §4).
    pub internal_callers: InternalCallers,
    /// Most photos per page of search results (100 when a request says 0).
    pub max_page_size: u32,
    /// Most people in one "me and them" query.
    pub max_people: usize,
    /// Most selfies of one person in one query.
    pub max_selfies_per_person: usize,
    /// Most faces one photo may carry.
    pub max_faces_per_photo: usize,
    /// Most photos in one bulk upsert.
    pub max_bulk_photos: usize,
    /// Most faces named in one DeleteFaces call.
    pub max_delete_faces: usize,
    pub model: ModelConfig,
    pub store: StoreConfig,
}

/// Which model pack the stored faces come from; its thresholds make the
/// "match" and "possible match" tiers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Folder with the pack's manifest.toml; when set, the model id is
    /// `name@version` and the thresholds are the pack's.
    pub pack: String,
    /// Without a pack: the model id requests must carry ("" accepts any).
    pub name: String,
    /// Without a pack: the tier thresholds (cosine similarity).
    pub match_similarity: f32,
    pub possible_similarity: f32,
    /// Without a pack: the embeddings' dimension (with one, the pack's).
    /// The face store keeps each event at its own pack's dimension.
    pub dimension: usize,
}

/// The largest embedding dimension: pgvector's HNSW over halfvec.
pub const MAX_DIMENSION: usize = 4000;

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            pack: String::new(),
            name: String::new(),
            match_similarity: 0.5,
            possible_similarity: 0.4,
            dimension: 512,
        }
    }
}

/// Search strategy tuning (docs/face-store.md has the measurements).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Events with more faces get an HNSW index and are searched through it.
    pub exact_max_faces: i64,
    pub hnsw_ef_search: u32,
    pub hnsw_max_scan_tuples: u64,
    /// work_mem of one iterative HNSW scan (MiB).
    pub hnsw_scan_mem_mb: u32,
    pub hnsw_m: u32,
    pub hnsw_ef_construction: u32,
    /// maintenance_work_mem for HNSW builds.
    pub build_memory: String,
    /// How often to look for events that outgrew exact search (seconds;
    /// 0 turns background index builds off).
    pub index_check_secs: u64,
    /// Memory for float32 copies of busy events, searched exactly without
    /// PostgreSQL (MiB; 0 turns them off).
    pub cache_mb: usize,
    /// Events with fewer faces are always searched in PostgreSQL.
    pub cache_min_faces: i64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        let t = crate::store::StoreTuning::default();
        StoreConfig {
            exact_max_faces: t.exact_max_faces,
            hnsw_ef_search: t.hnsw_ef_search,
            hnsw_max_scan_tuples: t.hnsw_max_scan_tuples,
            hnsw_scan_mem_mb: t.hnsw_scan_mem_mb,
            hnsw_m: t.hnsw_m,
            hnsw_ef_construction: t.hnsw_ef_construction,
            build_memory: t.build_memory,
            index_check_secs: 30,
            cache_mb: t.cache_max_bytes >> 20,
            cache_min_faces: t.cache_min_faces,
        }
    }
}

impl StoreConfig {
    pub fn tuning(&self) -> crate::store::StoreTuning {
        crate::store::StoreTuning {
            exact_max_faces: self.exact_max_faces,
            hnsw_ef_search: self.hnsw_ef_search,
            hnsw_max_scan_tuples: self.hnsw_max_scan_tuples,
            hnsw_scan_mem_mb: self.hnsw_scan_mem_mb,
            hnsw_first_limit: 500,
            hnsw_m: self.hnsw_m,
            hnsw_ef_construction: self.hnsw_ef_construction,
            build_memory: self.build_memory.clone(),
            cache_max_bytes: self.cache_mb << 20,
            cache_min_faces: self.cache_min_faces,
        }
    }
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            grpc: GrpcServerConfig::with_listen("127.0.0.1:50054"),
            log: LogConfig::default(),
            metrics: MetricsConfig::default(),
            database_url: "postgres://postgres@127.0.0.1:5432/facepass".into(),
            pool_size: 8,
            migrate_on_start: true,
            internal_token: String::new(),
            internal_callers: InternalCallers::default(),
            max_page_size: 1_000,
            max_people: 4,
            max_selfies_per_person: 5,
            max_faces_per_photo: 512,
            max_bulk_photos: 1_000,
            max_delete_faces: 10_000,
            model: ModelConfig::default(),
            store: StoreConfig::default(),
        }
    }
}

impl Validate for SearchConfig {
    fn validate(&self) -> Vec<String> {
        let mut problems = self.grpc.problems();
        problems.extend(self.log.problems());
        problems.extend(self.metrics.problems());
        problems.extend(self.internal_callers.problems(&self.internal_token));
        if !self.database_url.starts_with("postgres") {
            problems.push("database_url must be a postgres:// URL".into());
        }
        if self.pool_size == 0 {
            problems.push("pool_size must be at least 1".into());
        }
        if self.max_page_size == 0 || self.max_people == 0 || self.max_selfies_per_person == 0 {
            problems.push(
                "max_page_size, max_people and max_selfies_per_person must be at least 1".into(),
            );
        }
        if self.max_bulk_photos == 0 || self.max_delete_faces == 0 {
            problems.push("max_bulk_photos and max_delete_faces must be at least 1".into());
        }
        if !(1..=MAX_DIMENSION).contains(&self.model.dimension) {
            problems.push(format!(
                "model.dimension must be 1 to {MAX_DIMENSION} (an HNSW index over halfvec takes at most {MAX_DIMENSION})"
            ));
        }
        let m = &self.model;
        if !(-1.0..=1.0).contains(&m.possible_similarity)
            || m.possible_similarity > m.match_similarity
            || m.match_similarity > 1.0
        {
            problems.push(
                "model thresholds must satisfy -1 <= possible_similarity <= match_similarity <= 1"
                    .into(),
            );
        }
        if self.store.exact_max_faces < 0 || self.store.hnsw_ef_search == 0 || self.store.hnsw_m < 2
        {
            problems.push(
                "store: exact_max_faces >= 0, hnsw_ef_search >= 1 and hnsw_m >= 2 are required"
                    .into(),
            );
        }
        problems
    }
}
