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

use diesel::prelude::*;
use diesel::sql_types::{
    Array, BigInt, Float4, Float8, Int4, Int8, Nullable, Text, Uuid as SqlUuid,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use facepass_core::{Error, ErrorCode, Result};
use facepass_db::PgPool;
use pgvector::{HalfVector, Vector};
use std::sync::Arc;
use uuid::Uuid;

use crate::cache::{EventCache, EventMatrix};

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

/// How an event is searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Every face of the event's partition is compared.
    Exact,
    /// The event's own HNSW index, scanned iteratively.
    Hnsw,
    /// Exact, over this process's float32 copy of the event (cache.rs).
    Memory,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Exact => "exact",
            Strategy::Hnsw => "hnsw",
            Strategy::Memory => "memory",
        }
    }
}

/// A row of `faces.events`.
#[derive(Debug, Clone, QueryableByName, PartialEq)]
pub struct EventInfo {
    #[diesel(sql_type = SqlUuid)]
    pub event_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub studio_id: Uuid,
    #[diesel(sql_type = Text)]
    pub model: String,
    #[diesel(sql_type = Text)]
    pub partition_name: String,
    #[diesel(sql_type = Int8)]
    pub face_count: i64,
    #[diesel(sql_type = Text)]
    pub ann_index: String,
    /// Bumped by every write; in-memory copies must carry the same.
    #[diesel(sql_type = Int8)]
    pub version: i64,
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

#[derive(QueryableByName)]
struct CandidateRow {
    #[diesel(sql_type = SqlUuid)]
    photo_id: Uuid,
    #[diesel(sql_type = Int4)]
    face_index: i32,
    #[diesel(sql_type = Array<Float4>)]
    bbox: Vec<f32>,
    #[diesel(sql_type = Array<Float8>)]
    similarities: Vec<f64>,
}

/// A face deleted by "forget me".
#[derive(Debug, Clone, QueryableByName, PartialEq)]
pub struct Forgotten {
    #[diesel(sql_type = SqlUuid)]
    pub photo_id: Uuid,
    #[diesel(sql_type = Int4)]
    pub face_index: i32,
    #[diesel(sql_type = Float4)]
    pub similarity: f32,
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

impl Default for Strategy {
    fn default() -> Self {
        Strategy::Exact
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct PhotoId {
    #[diesel(sql_type = SqlUuid)]
    photo_id: Uuid,
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

/// The partition of an event: `ev_` and the id's 32 hex digits.
pub fn partition_name(event_id: Uuid) -> String {
    format!("ev_{}", event_id.simple())
}

fn checked_partition(name: &str) -> Result<&str> {
    // Names come from faces.events, which only this code writes; check
    // anyway, since they are spliced into SQL.
    let ok = name.len() == 35
        && name.starts_with("ev_")
        && name[3..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    if ok {
        Ok(name)
    } else {
        Err(Error::internal(format!("bad partition name {name:?}")))
    }
}

fn unknown_event(event_id: Uuid) -> Error {
    Error::not_found(format!("event {event_id} has no faces in the store"))
}

impl EventInfo {
    /// Requests must carry the event's model pack; an event with no pack
    /// yet (only failed photos so far) accepts any.
    pub fn check_model(&self, model: &str) -> Result<()> {
        if !self.model.is_empty() && self.model != model {
            return Err(model_mismatch(self, model));
        }
        Ok(())
    }
}

fn model_mismatch(event: &EventInfo, model: &str) -> Error {
    Error::new(
        ErrorCode::ModelMismatch,
        format!(
            "event {} was indexed with model pack {:?}, the request used {:?}; re-index the event or query with the same pack",
            event.event_id, event.model, model
        ),
    )
}

const EVENT_COLUMNS: &str =
    "event_id, studio_id, model, partition_name, face_count, ann_index, version";

async fn load_event(
    conn: &mut AsyncPgConnection,
    studio_id: Uuid,
    event_id: Uuid,
) -> std::result::Result<Option<EventInfo>, diesel::result::Error> {
    diesel::sql_query(format!(
        "SELECT {EVENT_COLUMNS} FROM faces.events WHERE event_id = $1 AND studio_id = $2"
    ))
    .bind::<SqlUuid, _>(event_id)
    .bind::<SqlUuid, _>(studio_id)
    .get_result::<EventInfo>(conn)
    .await
    .optional()
}

/// The event's registry row, creating the event and its partition when it
/// is new. Runs inside the caller's transaction; a transaction-scoped
/// advisory lock makes concurrent first writes of one event safe.
async fn ensure_event(
    conn: &mut AsyncPgConnection,
    studio_id: Uuid,
    event_id: Uuid,
    model: &str,
) -> std::result::Result<EventInfo, TxError> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 7331))")
        .bind::<SqlUuid, _>(event_id)
        .execute(conn)
        .await?;
    let existing = diesel::sql_query(format!(
        "SELECT {EVENT_COLUMNS} FROM faces.events WHERE event_id = $1 FOR UPDATE"
    ))
    .bind::<SqlUuid, _>(event_id)
    .get_result::<EventInfo>(conn)
    .await
    .optional()?;
    if let Some(mut event) = existing {
        if event.studio_id != studio_id {
            // Event ids are minted by the gateway and unique; another
            // studio's id is simply unknown here.
            return Err(TxError::App(unknown_event(event_id)));
        }
        if !model.is_empty() {
            if event.model.is_empty() {
                diesel::sql_query("UPDATE faces.events SET model = $2 WHERE event_id = $1")
                    .bind::<SqlUuid, _>(event_id)
                    .bind::<Text, _>(model)
                    .execute(conn)
                    .await?;
                event.model = model.to_string();
            } else if event.model != model {
                return Err(TxError::App(model_mismatch(&event, model)));
            }
        }
        return Ok(event);
    }
    let part = partition_name(event_id);
    // CREATE + ATTACH (not CREATE ... PARTITION OF) takes only SHARE UPDATE
    // EXCLUSIVE on the parent, so searches of other events do not wait.
    diesel::sql_query(format!(
        "CREATE TABLE faces.{part} (LIKE faces.event_faces INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED INCLUDING STORAGE)"
    ))
    .execute(conn)
    .await?;
    diesel::sql_query(format!(
        "ALTER TABLE faces.event_faces ATTACH PARTITION faces.{part} FOR VALUES IN ('{event_id}')"
    ))
    .execute(conn)
    .await?;
    let event = diesel::sql_query(format!(
        "INSERT INTO faces.events (event_id, studio_id, model, partition_name) \
         VALUES ($1, $2, $3, $4) RETURNING {EVENT_COLUMNS}"
    ))
    .bind::<SqlUuid, _>(event_id)
    .bind::<SqlUuid, _>(studio_id)
    .bind::<Text, _>(model)
    .bind::<Text, _>(&part)
    .get_result::<EventInfo>(conn)
    .await?;
    Ok(event)
}

/// Every write ends here: adjusts the face count and bumps the version,
/// which retires in-memory copies of the event.
async fn add_faces(
    conn: &mut AsyncPgConnection,
    event_id: Uuid,
    delta: i64,
) -> std::result::Result<(), diesel::result::Error> {
    diesel::sql_query(
        "UPDATE faces.events SET face_count = face_count + $2, version = version + 1 WHERE event_id = $1",
    )
    .bind::<SqlUuid, _>(event_id)
    .bind::<Int8, _>(delta)
    .execute(conn)
    .await?;
    Ok(())
}

/// Accounts for deleted faces, one entry in `photos` per face: lowers the
/// photos' face counts and the event's.
async fn faces_removed(
    conn: &mut AsyncPgConnection,
    event_id: Uuid,
    photos: &[Uuid],
) -> std::result::Result<(), diesel::result::Error> {
    diesel::sql_query(
        "UPDATE faces.photos p SET face_count = p.face_count - d.n, updated_at = now() \
         FROM (SELECT x AS photo_id, count(*)::int AS n FROM unnest($2::uuid[]) x GROUP BY x) d \
         WHERE p.event_id = $1 AND p.photo_id = d.photo_id",
    )
    .bind::<SqlUuid, _>(event_id)
    .bind::<Array<SqlUuid>, _>(photos)
    .execute(conn)
    .await?;
    add_faces(conn, event_id, -(photos.len() as i64)).await
}

/// Rows per INSERT statement (11 parameters a row, PostgreSQL allows 65535).
const INSERT_CHUNK: usize = 2_000;

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

    pub fn cache(&self) -> &EventCache {
        &self.cache
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn tuning(&self) -> &StoreTuning {
        &self.tuning
    }

    async fn conn(&self) -> Result<facepass_db::PooledConnection<AsyncPgConnection>> {
        self.pool
            .get()
            .await
            .map_err(|e| Error::unavailable(format!("database unavailable: {e}")))
    }

    /// The event's registry row; NOT_FOUND when the store has never heard
    /// of it (or it belongs to another studio).
    pub async fn event(&self, studio_id: Uuid, event_id: Uuid) -> Result<EventInfo> {
        let mut conn = self.conn().await?;
        load_event(&mut conn, studio_id, event_id)
            .await
            .map_err(db_error)?
            .ok_or_else(|| unknown_event(event_id))
    }

    /// How `event` is searched now.
    pub fn strategy(&self, event: &EventInfo) -> Strategy {
        if event.face_count > self.tuning.exact_max_faces && event.ann_index == "ready" {
            Strategy::Hnsw
        } else {
            Strategy::Exact
        }
    }

    /// Replaces every face of each photo with the given faces and records
    /// the photos as indexed, in one transaction. Returns (stored, replaced).
    pub async fn replace_faces(
        &self,
        studio_id: Uuid,
        event_id: Uuid,
        model: &str,
        photos: Vec<PhotoFaces>,
    ) -> Result<(usize, usize)> {
        let mut conn = self.conn().await?;
        let model = model.to_string();
        let result = conn
            .transaction::<_, TxError, _>(async |conn| {
                let event = ensure_event(conn, studio_id, event_id, &model).await?;
                let part = checked_partition(&event.partition_name).map_err(TxError::App)?;
                let ids: Vec<Uuid> = photos.iter().map(|p| p.photo_id).collect();
                let replaced = diesel::sql_query(format!(
                    // event_id (constant in the partition) lets the
                    // primary key (event_id, photo_id, face_index) serve.
                    "DELETE FROM faces.{part} WHERE event_id = $2 AND photo_id = ANY($1)"
                ))
                .bind::<Array<SqlUuid>, _>(&ids)
                .bind::<SqlUuid, _>(event_id)
                .execute(conn)
                .await?;
                let counts: Vec<i32> = photos.iter().map(|p| p.faces.len() as i32).collect();
                let rows: Vec<NewFace> = photos.into_iter().flat_map(|p| p.faces).collect();
                let mut stored = 0;
                for chunk in rows.chunks(INSERT_CHUNK) {
                    stored += diesel::insert_into(event_faces::table)
                        .values(chunk)
                        .execute(conn)
                        .await?;
                }
                diesel::sql_query(
                    "INSERT INTO faces.photos (event_id, photo_id, studio_id, state, face_count) \
                     SELECT $1, p, $2, 'indexed', n FROM unnest($3::uuid[], $4::int[]) AS t(p, n) \
                     ON CONFLICT (event_id, photo_id) DO UPDATE \
                     SET state = 'indexed', face_count = EXCLUDED.face_count, error = NULL, updated_at = now()",
                )
                .bind::<SqlUuid, _>(event_id)
                .bind::<SqlUuid, _>(studio_id)
                .bind::<Array<SqlUuid>, _>(&ids)
                .bind::<Array<Int4>, _>(&counts)
                .execute(conn)
                .await?;
                add_faces(conn, event_id, stored as i64 - replaced as i64).await?;
                Ok((stored, replaced))
            })
            .await?;
        Ok(result)
    }

    /// Records a photo that could not be indexed; removes faces it had.
    pub async fn mark_failed(
        &self,
        studio_id: Uuid,
        event_id: Uuid,
        photo_id: Uuid,
        reason: &str,
    ) -> Result<usize> {
        let mut conn = self.conn().await?;
        let reason = reason.to_string();
        let deleted = conn
            .transaction::<_, TxError, _>(async |conn| {
                let event = ensure_event(conn, studio_id, event_id, "").await?;
                let part = checked_partition(&event.partition_name).map_err(TxError::App)?;
                let deleted = diesel::sql_query(format!("DELETE FROM faces.{part} WHERE event_id = $2 AND photo_id = $1"))
                    .bind::<SqlUuid, _>(photo_id)
                    .bind::<SqlUuid, _>(event_id)
                    .execute(conn)
                    .await?;
                diesel::sql_query(
                    "INSERT INTO faces.photos (event_id, photo_id, studio_id, state, face_count, error) \
                     VALUES ($1, $2, $3, 'failed', 0, $4) \
                     ON CONFLICT (event_id, photo_id) DO UPDATE \
                     SET state = 'failed', face_count = 0, error = EXCLUDED.error, updated_at = now()",
                )
                .bind::<SqlUuid, _>(event_id)
                .bind::<SqlUuid, _>(photo_id)
                .bind::<SqlUuid, _>(studio_id)
                .bind::<Text, _>(&reason)
                .execute(conn)
                .await?;
                add_faces(conn, event_id, -(deleted as i64)).await?;
                Ok(deleted)
            })
            .await?;
        Ok(deleted)
    }

    /// Every face of `event` at least `min_similarity` similar to at least
    /// one query; similarities are reported per query. Queries must be
    /// L2-normalised, so cosine distance is `1 - dot`.
    pub async fn candidates(
        &self,
        event: &EventInfo,
        queries: &[Vec<f32>],
        min_similarity: f32,
    ) -> Result<(Strategy, Vec<Candidate>)> {
        if self.cache.enabled() && event.face_count >= self.cache.min_faces {
            if let Some(copy) = self.cache.get(event.event_id, event.version) {
                let queries = queries.to_vec();
                let found = tokio::task::spawn_blocking(move || {
                    let hits = copy.scan(&queries, min_similarity);
                    hits.into_iter()
                        .map(|(row, sims)| Candidate {
                            photo_id: copy.photo_ids[row],
                            face_index: copy.face_indexes[row],
                            bbox: copy.bboxes[row].to_vec(),
                            similarities: sims
                                .into_iter()
                                .map(|s| (s >= min_similarity).then_some(s))
                                .collect(),
                        })
                        .collect::<Vec<_>>()
                })
                .await
                .map_err(|e| Error::internal(format!("scan task: {e}")))?;
                return Ok((Strategy::Memory, found));
            }
            if let Some(delay) = self
                .cache
                .begin_load(event.event_id, crate::cache::RELOAD_COOLDOWN)
            {
                // This search takes the SQL path; later ones the copy.
                let store = self.clone();
                let event_id = event.event_id;
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let started = std::time::Instant::now();
                    match store.load_copy(event_id).await {
                        Ok((faces, kept)) => tracing::info!(%event_id, faces, kept,
                            ms = started.elapsed().as_millis() as u64, "event copied into memory"),
                        Err(e) => {
                            tracing::warn!(%event_id, error = %e, "copying an event into memory failed")
                        }
                    }
                    store.cache.end_load(event_id);
                });
            }
        }
        let strategy = self.strategy(event);
        let part = checked_partition(&event.partition_name)?;
        let mut conn = self.conn().await?;
        let max_distance = 1.0 - min_similarity as f64;
        let candidates = match strategy {
            // (`strategy()` picks between the two SQL paths only.)
            Strategy::Exact | Strategy::Memory => {
                // One pass over the partition compares every query in half
                // precision with the loosened threshold; the select list
                // (float32 similarities, read from TOAST) is evaluated only
                // for the rows that pass.
                let n = queries.len();
                let qual = (1..=n)
                    .map(|i| format!("(embedding_half <=> ${i}) <= ${}", 2 * n + 1))
                    .collect::<Vec<_>>()
                    .join(" OR ");
                let sims = (n + 1..=2 * n)
                    .map(|i| format!("1 - (embedding <=> ${i})"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let sql = format!(
                    "SELECT photo_id, face_index, bbox, ARRAY[{sims}]::float8[] AS similarities \
                     FROM faces.{part} WHERE {qual}"
                );
                let mut query = diesel::sql_query(sql).into_boxed();
                for q in queries {
                    query = query.bind::<HalfVec, _>(HalfVector::from_f32_slice(q));
                }
                for q in queries {
                    query = query.bind::<Vec32, _>(Vector::from(q.clone()));
                }
                let rows: Vec<CandidateRow> = query
                    .bind::<Float8, _>(max_distance + HALF_MARGIN)
                    .load(&mut conn)
                    .await
                    .map_err(db_error)?;
                rows.into_iter()
                    .map(|r| Candidate {
                        photo_id: r.photo_id,
                        face_index: r.face_index,
                        bbox: r.bbox,
                        similarities: r
                            .similarities
                            .into_iter()
                            .map(|s| (s >= min_similarity as f64).then_some(s as f32))
                            .collect(),
                    })
                    // Within the margin of every query but above none.
                    .filter(|c: &Candidate| c.similarities.iter().any(Option::is_some))
                    .collect()
            }
            Strategy::Hnsw => {
                let mut merged: std::collections::HashMap<(Uuid, i32), Candidate> =
                    std::collections::HashMap::new();
                for (qi, q) in queries.iter().enumerate() {
                    for (photo_id, face_index, bbox, sim) in
                        self.hnsw_within(&mut conn, part, q, max_distance).await?
                    {
                        merged
                            .entry((photo_id, face_index))
                            .or_insert_with(|| Candidate {
                                photo_id,
                                face_index,
                                bbox,
                                similarities: vec![None; queries.len()],
                            })
                            .similarities[qi] = Some(sim);
                    }
                }
                merged.into_values().collect()
            }
        };
        Ok((strategy, candidates))
    }

    /// Faces within `max_distance` of `query` through the partition's HNSW
    /// index. An iterative scan (relaxed order: each batch of ef_search
    /// candidates is sorted, batches may overlap) goes on past ef_search;
    /// the LIMIT grows until at least ef_search faces beyond the loosened
    /// threshold have shown up, so the threshold, not a top-k, bounds the
    /// answer. Strict order would drop faces the graph reaches late. The
    /// scan gets its own work_mem: pgvector ends an iterative scan quietly
    /// when it runs out. Returned faces are re-scored in float32.
    async fn hnsw_within(
        &self,
        conn: &mut AsyncPgConnection,
        part: &str,
        query: &[f32],
        max_distance: f64,
    ) -> Result<Vec<(Uuid, i32, Vec<f32>, f32)>> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = SqlUuid)]
            photo_id: Uuid,
            #[diesel(sql_type = Int4)]
            face_index: i32,
            #[diesel(sql_type = Array<Float4>)]
            bbox: Vec<f32>,
            #[diesel(sql_type = Float8)]
            distance: f64,
            /// Float32 distance, for faces within the loosened threshold.
            #[diesel(sql_type = Nullable<Float8>)]
            exact: Option<f64>,
        }
        let tuning = self.tuning.clone();
        let part = part.to_string();
        let half = HalfVector::from_f32_slice(query);
        let full = Vector::from(query.to_vec());
        let loose = max_distance + HALF_MARGIN;
        conn.transaction::<_, diesel::result::Error, _>(async |conn| {
            conn.batch_execute(&format!(
                "SET LOCAL hnsw.iterative_scan = relaxed_order; \
                 SET LOCAL hnsw.ef_search = {}; SET LOCAL hnsw.max_scan_tuples = {}; \
                 SET LOCAL work_mem = '{}MB'; SET LOCAL enable_seqscan = off",
                tuning.hnsw_ef_search, tuning.hnsw_max_scan_tuples, tuning.hnsw_scan_mem_mb
            ))
            .await?;
            let mut limit = tuning.hnsw_first_limit;
            loop {
                let rows: Vec<Row> = diesel::sql_query(format!(
                    "SELECT photo_id, face_index, bbox, distance, \
                       CASE WHEN distance <= $4 THEN embedding <=> $3 END AS exact FROM ( \
                       SELECT photo_id, face_index, bbox, embedding_half <=> $1 AS distance, embedding \
                       FROM faces.{part} ORDER BY embedding_half <=> $1 LIMIT $2) nearest"
                ))
                .bind::<HalfVec, _>(&half)
                .bind::<Int8, _>(limit)
                .bind::<Vec32, _>(&full)
                .bind::<Float8, _>(loose)
                .load(conn)
                .await?;
                let exhausted = (rows.len() as i64) < limit;
                let beyond = rows.iter().filter(|r| r.distance > loose).count();
                let capped = limit >= tuning.hnsw_max_scan_tuples as i64;
                if capped && beyond < tuning.hnsw_ef_search as usize && !exhausted {
                    // Every face returned so far is a match: the answer may
                    // be cut short. Say so; raise hnsw_max_scan_tuples.
                    tracing::warn!(part = %part, limit, "HNSW threshold scan reached hnsw.max_scan_tuples");
                }
                if beyond >= tuning.hnsw_ef_search as usize || exhausted || capped {
                    return Ok(rows
                        .into_iter()
                        .filter_map(|r| {
                            let exact = r.exact.filter(|d| *d <= max_distance)?;
                            Some((r.photo_id, r.face_index, r.bbox, (1.0 - exact) as f32))
                        })
                        .collect());
                }
                limit *= 4;
            }
        })
        .await
        .map_err(db_error)
    }

    /// Loads a float32 copy of an event (rows renormalised, so a dot
    /// product is the cosine similarity) as of one snapshot, with the
    /// version of that snapshot, into the cache. Returns (faces, kept).
    pub async fn load_copy(&self, event_id: Uuid) -> Result<(usize, bool)> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = SqlUuid)]
            photo_id: Uuid,
            #[diesel(sql_type = Int4)]
            face_index: i32,
            #[diesel(sql_type = Array<Float4>)]
            bbox: Vec<f32>,
            #[diesel(sql_type = Vec32)]
            embedding: Vector,
        }
        let mut conn = self.conn().await?;
        let (event, rows) = conn
            .build_transaction()
            .repeatable_read()
            .read_only()
            .run::<_, TxError, _>(async |conn| {
                let event = diesel::sql_query(format!(
                    "SELECT {EVENT_COLUMNS} FROM faces.events WHERE event_id = $1"
                ))
                .bind::<SqlUuid, _>(event_id)
                .get_result::<EventInfo>(conn)
                .await
                .optional()?
                .ok_or_else(|| TxError::App(unknown_event(event_id)))?;
                let part = checked_partition(&event.partition_name).map_err(TxError::App)?;
                let rows: Vec<Row> = diesel::sql_query(format!(
                    "SELECT photo_id, face_index, bbox, embedding FROM faces.{part}"
                ))
                .load(conn)
                .await?;
                Ok((event, rows))
            })
            .await?;
        let faces = rows.len();
        let matrix = tokio::task::spawn_blocking(move || {
            let dim = rows
                .get(0)
                .map(|r| r.embedding.as_slice().len())
                .unwrap_or(0);
            let mut embeddings = Vec::with_capacity(rows.len() * dim);
            let (mut photos, mut indexes, mut boxes) = (
                Vec::with_capacity(rows.len()),
                Vec::with_capacity(rows.len()),
                Vec::with_capacity(rows.len()),
            );
            for r in rows {
                let v = r.embedding.as_slice();
                let norm = v
                    .iter()
                    .map(|x| (*x as f64) * (*x as f64))
                    .sum::<f64>()
                    .sqrt();
                let norm = if norm > 0.0 { norm } else { 1.0 };
                embeddings.extend(v.iter().map(|x| (*x as f64 / norm) as f32));
                photos.push(r.photo_id);
                indexes.push(r.face_index);
                let b = &r.bbox;
                boxes.push([b[0], b[1], b[2], b[3]]);
            }
            EventMatrix::new(event.version, dim, photos, indexes, boxes, embeddings)
        })
        .await
        .map_err(|e| Error::internal(format!("copy task: {e}")))?;
        let kept = self.cache.insert(event_id, matrix);
        Ok((faces, kept))
    }

    /// Builds the HNSW index of an event's partition (CONCURRENTLY: writes
    /// and searches go on meanwhile) and marks the event `ready`. Returns
    /// false when another builder holds the event.
    pub async fn build_ann_index(&self, event_id: Uuid) -> Result<bool> {
        let mut conn = self.conn().await?;
        let part = partition_name(event_id);
        let index = format!("{part}_hnsw");
        let locked = diesel::sql_query(
            "SELECT count(*) AS n FROM (SELECT 1 WHERE pg_try_advisory_lock(hashtextextended($1::text, 7332))) t",
        )
        .bind::<SqlUuid, _>(event_id)
        .get_result::<Count>(&mut conn)
        .await
        .map_err(db_error)?
        .n == 1;
        if !locked {
            return Ok(false);
        }
        let result: Result<()> = async {
            diesel::sql_query(
                "UPDATE faces.events SET ann_index = 'building' WHERE event_id = $1 AND ann_index <> 'ready'",
            )
            .bind::<SqlUuid, _>(event_id)
            .execute(&mut conn)
            .await
            .map_err(db_error)?;
            // A build that died leaves an INVALID index behind.
            diesel::sql_query(format!(
                "DROP INDEX CONCURRENTLY IF EXISTS faces.{index}"
            ))
            .execute(&mut conn)
            .await
            .map_err(db_error)?;
            diesel::sql_query(format!(
                "SET maintenance_work_mem = '{}'",
                self.tuning.build_memory.replace('\'', "")
            ))
            .execute(&mut conn)
            .await
            .map_err(db_error)?;
            diesel::sql_query(format!(
                "CREATE INDEX CONCURRENTLY {index} ON faces.{part} \
                 USING hnsw (embedding_half halfvec_cosine_ops) WITH (m = {}, ef_construction = {})",
                self.tuning.hnsw_m, self.tuning.hnsw_ef_construction
            ))
            .execute(&mut conn)
            .await
            .map_err(db_error)?;
            diesel::sql_query("UPDATE faces.events SET ann_index = 'ready' WHERE event_id = $1")
                .bind::<SqlUuid, _>(event_id)
                .execute(&mut conn)
                .await
                .map_err(db_error)?;
            Ok(())
        }
        .await;
        if result.is_err() {
            let _ =
                diesel::sql_query("UPDATE faces.events SET ann_index = 'none' WHERE event_id = $1")
                    .bind::<SqlUuid, _>(event_id)
                    .execute(&mut conn)
                    .await;
        }
        // The connection goes back to the pool: leave no session setting.
        let _ = diesel::sql_query("RESET maintenance_work_mem")
            .execute(&mut conn)
            .await;
        let _ = diesel::sql_query("SELECT pg_advisory_unlock(hashtextextended($1::text, 7332))")
            .bind::<SqlUuid, _>(event_id)
            .execute(&mut conn)
            .await;
        result.map(|_| true)
    }

    /// Events large enough for an HNSW index that do not have one yet.
    pub async fn events_needing_index(&self) -> Result<Vec<Uuid>> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = SqlUuid)]
            event_id: Uuid,
        }
        let mut conn = self.conn().await?;
        let rows: Vec<Row> = diesel::sql_query(
            "SELECT event_id FROM faces.events WHERE face_count > $1 AND ann_index <> 'ready' \
             ORDER BY face_count DESC",
        )
        .bind::<Int8, _>(self.tuning.exact_max_faces)
        .load(&mut conn)
        .await
        .map_err(db_error)?;
        Ok(rows.into_iter().map(|r| r.event_id).collect())
    }

    /// Deletes the faces of one event at least `min_similarity` similar to
    /// `query`, returning what was deleted. Always an exact scan: deletion
    /// must be complete.
    pub async fn forget(
        &self,
        studio_id: Uuid,
        event_id: Uuid,
        model: &str,
        query: &[f32],
        min_similarity: f32,
    ) -> Result<Vec<Forgotten>> {
        let mut conn = self.conn().await?;
        let model = model.to_string();
        let half = HalfVector::from_f32_slice(query);
        let full = Vector::from(query.to_vec());
        let forgotten = conn
            .transaction::<_, TxError, _>(async |conn| {
                let event = load_event(conn, studio_id, event_id)
                    .await?
                    .ok_or_else(|| TxError::App(unknown_event(event_id)))?;
                event.check_model(&model).map_err(TxError::App)?;
                let part = checked_partition(&event.partition_name).map_err(TxError::App)?;
                let forgotten: Vec<Forgotten> = diesel::sql_query(format!(
                    "DELETE FROM faces.{part} \
                     WHERE (embedding_half <=> $1) <= $3 AND (embedding <=> $2) <= $4 \
                     RETURNING photo_id, face_index, (1 - (embedding <=> $2))::real AS similarity"
                ))
                .bind::<HalfVec, _>(&half)
                .bind::<Vec32, _>(&full)
                .bind::<Float8, _>(1.0 - min_similarity as f64 + HALF_MARGIN)
                .bind::<Float8, _>(1.0 - min_similarity as f64)
                .load(conn)
                .await?;
                let photos: Vec<Uuid> = forgotten.iter().map(|f| f.photo_id).collect();
                faces_removed(conn, event_id, &photos).await?;
                Ok(forgotten)
            })
            .await?;
        Ok(forgotten)
    }

    /// Deletes every face of one photo and its record.
    pub async fn delete_photo(
        &self,
        studio_id: Uuid,
        event_id: Uuid,
        photo_id: Uuid,
    ) -> Result<usize> {
        let mut conn = self.conn().await?;
        let deleted = conn
            .transaction::<_, TxError, _>(async |conn| {
                let Some(event) = load_event(conn, studio_id, event_id).await? else {
                    // Nothing was ever stored for the event: nothing to delete.
                    return Ok(0);
                };
                let part = checked_partition(&event.partition_name).map_err(TxError::App)?;
                let deleted = diesel::sql_query(format!(
                    "DELETE FROM faces.{part} WHERE event_id = $2 AND photo_id = $1"
                ))
                .bind::<SqlUuid, _>(photo_id)
                .bind::<SqlUuid, _>(event_id)
                .execute(conn)
                .await?;
                diesel::sql_query("DELETE FROM faces.photos WHERE event_id = $1 AND photo_id = $2")
                    .bind::<SqlUuid, _>(event_id)
                    .bind::<SqlUuid, _>(photo_id)
                    .execute(conn)
                    .await?;
                add_faces(conn, event_id, -(deleted as i64)).await?;
                Ok(deleted)
            })
            .await?;
        Ok(deleted)
    }

    /// The event a photo belongs to, from the photo records.
    pub async fn photo_event(&self, studio_id: Uuid, photo_id: Uuid) -> Result<Option<Uuid>> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = SqlUuid)]
            event_id: Uuid,
        }
        let mut conn = self.conn().await?;
        let row: Option<Row> = diesel::sql_query(
            "SELECT event_id FROM faces.photos WHERE photo_id = $1 AND studio_id = $2 LIMIT 1",
        )
        .bind::<SqlUuid, _>(photo_id)
        .bind::<SqlUuid, _>(studio_id)
        .get_result(&mut conn)
        .await
        .optional()
        .map_err(db_error)?;
        Ok(row.map(|r| r.event_id))
    }

    /// Deletes the given faces of one event; returns how many existed.
    pub async fn delete_faces(
        &self,
        studio_id: Uuid,
        event_id: Uuid,
        faces: Vec<(Uuid, i32)>,
    ) -> Result<usize> {
        let mut conn = self.conn().await?;
        let deleted = conn
            .transaction::<_, TxError, _>(async |conn| {
                let event = load_event(conn, studio_id, event_id)
                    .await?
                    .ok_or_else(|| TxError::App(unknown_event(event_id)))?;
                let part = checked_partition(&event.partition_name).map_err(TxError::App)?;
                let photos: Vec<Uuid> = faces.iter().map(|f| f.0).collect();
                let indexes: Vec<i32> = faces.iter().map(|f| f.1).collect();
                let gone: Vec<PhotoId> = diesel::sql_query(format!(
                    "DELETE FROM faces.{part} f USING unnest($1::uuid[], $2::int[]) AS d(p, i) \
                     WHERE f.event_id = $3 AND f.photo_id = d.p AND f.face_index = d.i RETURNING f.photo_id"
                ))
                .bind::<Array<SqlUuid>, _>(&photos)
                .bind::<Array<Int4>, _>(&indexes)
                .bind::<SqlUuid, _>(event_id)
                .load(conn)
                .await?;
                let gone_photos: Vec<Uuid> = gone.iter().map(|g| g.photo_id).collect();
                faces_removed(conn, event_id, &gone_photos).await?;
                Ok(gone.len())
            })
            .await?;
        Ok(deleted)
    }

    /// Deletes an event completely: its partition is detached and dropped
    /// (no dead tuples, no vacuum wait) and its records removed. Safe to
    /// repeat after a crash half-way.
    pub async fn delete_event(&self, studio_id: Uuid, event_id: Uuid) -> Result<usize> {
        let mut conn = self.conn().await?;
        let Some(event) = load_event(&mut conn, studio_id, event_id)
            .await
            .map_err(db_error)?
        else {
            return Ok(0);
        };
        let part = checked_partition(&event.partition_name)?.to_string();
        let attached = diesel::sql_query(
            "SELECT count(*) AS n FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'faces' AND c.relname = $1",
        )
        .bind::<Text, _>(&part)
        .get_result::<Count>(&mut conn)
        .await
        .map_err(db_error)?
        .n > 0;
        if attached {
            // CONCURRENTLY: other events' searches and writes never wait.
            diesel::sql_query(format!(
                "ALTER TABLE faces.event_faces DETACH PARTITION faces.{part} CONCURRENTLY"
            ))
            .execute(&mut conn)
            .await
            .map_err(db_error)?;
        }
        diesel::sql_query(format!("DROP TABLE IF EXISTS faces.{part}"))
            .execute(&mut conn)
            .await
            .map_err(db_error)?;
        diesel::sql_query("DELETE FROM faces.events WHERE event_id = $1")
            .bind::<SqlUuid, _>(event_id)
            .execute(&mut conn)
            .await
            .map_err(db_error)?;
        self.cache.remove(event_id);
        Ok(event.face_count.max(0) as usize)
    }

    /// Counts for one event.
    pub async fn event_stats(&self, studio_id: Uuid, event_id: Uuid) -> Result<EventStats> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = BigInt)]
            photos: i64,
            #[diesel(sql_type = BigInt)]
            indexed: i64,
            #[diesel(sql_type = BigInt)]
            failed: i64,
            #[diesel(sql_type = BigInt)]
            with_faces: i64,
            #[diesel(sql_type = Nullable<BigInt>)]
            faces: Option<i64>,
        }
        let event = self.event(studio_id, event_id).await?;
        let mut conn = self.conn().await?;
        let row: Row = diesel::sql_query(
            "SELECT count(*) AS photos, count(*) FILTER (WHERE state = 'indexed') AS indexed, \
             count(*) FILTER (WHERE state = 'failed') AS failed, \
             count(*) FILTER (WHERE face_count > 0) AS with_faces, sum(face_count)::bigint AS faces \
             FROM faces.photos WHERE event_id = $1",
        )
        .bind::<SqlUuid, _>(event_id)
        .get_result(&mut conn)
        .await
        .map_err(db_error)?;
        Ok(EventStats {
            faces: row.faces.unwrap_or(0),
            photos_with_faces: row.with_faces,
            photos: row.photos,
            photos_indexed: row.indexed,
            photos_failed: row.failed,
            strategy: if self.cache.get(event.event_id, event.version).is_some() {
                Strategy::Memory
            } else {
                self.strategy(&event)
            },
            model: event.model,
        })
    }

    /// Exact brute-force reference for tests and benchmarks: every face of
    /// the event at least `min_similarity` similar to `query`, compared in
    /// float32 one by one (no half precision, no index).
    pub async fn exact_reference(
        &self,
        event: &EventInfo,
        query: &[f32],
        min_similarity: f32,
    ) -> Result<Vec<(Uuid, i32, f32)>> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = SqlUuid)]
            photo_id: Uuid,
            #[diesel(sql_type = Int4)]
            face_index: i32,
            #[diesel(sql_type = Float8)]
            similarity: f64,
        }
        let part = checked_partition(&event.partition_name)?.to_string();
        let query = Vector::from(query.to_vec());
        let mut conn = self.conn().await?;
        let rows = conn
            .transaction::<_, diesel::result::Error, _>(async |conn| {
                conn.batch_execute(
                    "SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off",
                )
                .await?;
                diesel::sql_query(format!(
                    "SELECT photo_id, face_index, 1 - (embedding <=> $1) AS similarity \
                     FROM faces.{part} WHERE (embedding <=> $1) <= $2"
                ))
                .bind::<Vec32, _>(&query)
                .bind::<Float8, _>(1.0 - min_similarity as f64)
                .load::<Row>(conn)
                .await
            })
            .await
            .map_err(db_error)?;
        Ok(rows
            .into_iter()
            .map(|r| (r.photo_id, r.face_index, r.similarity as f32))
            .collect())
    }
}
