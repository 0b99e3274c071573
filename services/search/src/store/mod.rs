//! The face store: every query is scoped to one studio and one event.
//!
//! Each event's faces live in their own list partition of
//! `faces.event_faces` (named in `faces.events`). Events up to
//! `exact_max_faces` are searched by an exact scan of their partition; larger
//! events, once their HNSW index is built, by an iterative HNSW scan of their
//! own index (never a global index filtered afterwards). Both scan the
//! inline half-precision copy `embedding_half` with the threshold loosened
//! by [`HALF_MARGIN`] and re-score what passes on the float32 `embedding`,
//! so results equal a float32 brute-force search. Writes keep
//! `faces.events.face_count` and `faces.photos` in step in the same
//! transaction, so statistics and the strategy choice are never stale.
//!
//! The parts, each read on its own:
//! - `registry.rs`: `faces.events`, one row per event; its partition is
//!   created on the first write and dropped with the event; the model
//!   check; statistics.
//! - `writes.rs`: replacing a photo's faces, failed photos, deletions and
//!   "forget me", each in one transaction with the counts it changes.
//! - `strategy.rs`: the one place that decides how a search runs (memory
//!   copy, exact scan or HNSW) and dispatches it.
//! - `exact.rs`, `hnsw.rs`, `memory.rs`: the three ways of searching.
//! - `index_build.rs`: building an event's HNSW index in the background.
//! - `cache.rs`: the in-memory copies themselves.
//!
//! Ranking faces into photos is not the store's business: see
//! `crate::rank`.

mod cache;
mod exact;
mod hnsw;
mod index_build;
mod memory;
mod reads;
mod registry;
mod strategy;
mod writes;

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel_async::AsyncPgConnection;
use facepass_core::{Error, Result};
use facepass_db::PgPool;
use pgvector::Vector;
use std::sync::Arc;
use uuid::Uuid;

use cache::EventCache;

pub use reads::StoredFace;
pub use registry::EventInfo;
pub use strategy::Strategy;
pub use writes::Forgotten;

type HalfVec = pgvector::sql_types::HalfVector;
type Vec32 = pgvector::sql_types::Vector;

/// The most half precision can move a cosine similarity of two unit
/// vectors. Rounding to binary16 changes each component by at most 2^-11
/// of itself, so the dot product moves by at most (2*2^-11 + 2^-22) * sum
/// |a_i b_i| <= 9.8e-4, and renormalising (|a'|, |b'| within 2^-11 of 1)
/// by at most as much again; float32 accumulation adds ~1e-6. A face whose
/// float32 similarity reaches a threshold therefore reaches it minus this
/// margin in half precision, so loosened scans miss nothing.
pub const HALF_MARGIN: f64 = 0.0025;

mod schema {
    diesel::table! {
        use diesel::sql_types::*;
        use pgvector::sql_types::{HalfVector, Vector};

        faces.event_faces (event_id, photo_id, face_index) {
            event_id -> Uuid,
            photo_id -> Uuid,
            face_index -> Int4,
            studio_id -> Uuid,
            model -> Text,
            embedding -> Vector,
            embedding_half -> HalfVector,
            bbox -> Array<Float4>,
            landmarks -> Array<Float4>,
            det_score -> Float4,
            quality -> Float4,
        }
    }
}

use schema::event_faces;

/// One face to store.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = event_faces)]
pub struct NewFace {
    pub event_id: Uuid,
    pub photo_id: Uuid,
    pub face_index: i32,
    pub studio_id: Uuid,
    pub model: String,
    /// L2-normalised; `embedding_half` is generated from it.
    pub embedding: Vector,
    pub bbox: Vec<f32>,
    pub landmarks: Vec<f32>,
    pub det_score: f32,
    pub quality: f32,
}

/// The faces of one photo, for (bulk) replacement.
#[derive(Debug, Clone)]
pub struct PhotoFaces {
    pub photo_id: Uuid,
    pub faces: Vec<NewFace>,
}

/// A face close enough to at least one of the queries.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub photo_id: Uuid,
    pub face_index: i32,
    pub bbox: Vec<f32>,
    /// Cosine similarity to each query, `None` where below the threshold
    /// (or not returned by the index).
    pub similarities: Vec<Option<f32>>,
}

/// Counts for one event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventStats {
    pub faces: i64,
    pub photos_with_faces: i64,
    pub photos: i64,
    pub photos_indexed: i64,
    pub photos_failed: i64,
    pub model: String,
    pub strategy: Strategy,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Tuning of the search strategies.
#[derive(Debug, Clone)]
pub struct StoreTuning {
    /// Events with more faces are searched through their HNSW index.
    pub exact_max_faces: i64,
    /// hnsw.ef_search for iterative scans.
    pub hnsw_ef_search: u32,
    /// hnsw.max_scan_tuples: how far one iterative scan may go.
    pub hnsw_max_scan_tuples: u64,
    /// work_mem of an iterative scan (MiB).
    pub hnsw_scan_mem_mb: u32,
    /// First LIMIT of an HNSW threshold query; quadrupled while every
    /// returned face is above the threshold.
    pub hnsw_first_limit: i64,
    /// HNSW build parameters.
    pub hnsw_m: u32,
    pub hnsw_ef_construction: u32,
    /// maintenance_work_mem for index builds.
    pub build_memory: String,
    /// Memory for in-memory copies of busy events (0 turns them off).
    pub cache_max_bytes: usize,
    /// Events with fewer faces are always scanned in PostgreSQL.
    pub cache_min_faces: i64,
}

impl Default for StoreTuning {
    fn default() -> Self {
        StoreTuning {
            exact_max_faces: 50_000,
            hnsw_ef_search: 200,
            hnsw_max_scan_tuples: 400_000,
            hnsw_scan_mem_mb: 256,
            hnsw_first_limit: 500,
            hnsw_m: 24,
            hnsw_ef_construction: 128,
            build_memory: "1GB".into(),
            cache_max_bytes: 1 << 30,
            cache_min_faces: 2_000,
        }
    }
}

#[derive(Clone)]
pub struct FaceStore {
    pool: PgPool,
    tuning: StoreTuning,
    cache: Arc<EventCache>,
}

fn db_error(e: impl std::fmt::Display) -> Error {
    Error::internal(format!("database: {e}"))
}

/// Errors raised inside transactions: either ours or the database's.
enum TxError {
    Db(diesel::result::Error),
    App(Error),
}

impl From<diesel::result::Error> for TxError {
    fn from(e: diesel::result::Error) -> Self {
        TxError::Db(e)
    }
}

impl From<TxError> for Error {
    fn from(e: TxError) -> Self {
        match e {
            TxError::Db(e) => db_error(e),
            TxError::App(e) => e,
        }
    }
}

impl FaceStore {
    pub fn new(pool: PgPool, tuning: StoreTuning) -> Self {
        let cache = Arc::new(EventCache::new(
            tuning.cache_max_bytes,
            tuning.cache_min_faces,
        ));
        FaceStore {
            pool,
            tuning,
            cache,
        }
    }

    async fn conn(&self) -> Result<facepass_db::PooledConnection<AsyncPgConnection>> {
        self.pool.get().await.map_err(|e| {
            // The pool's error may name the database host: logs only.
            tracing::warn!(error = %e, "face store database unavailable");
            Error::unavailable("the face store database is unavailable, try again")
        })
    }
}
