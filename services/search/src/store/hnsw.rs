//! HNSW search of large events: each event has its own index on its own
//! partition (never one global index filtered by event afterwards, which
//! loses matches). Each query runs an iterative scan of the index in half
//! precision with the threshold loosened by [`HALF_MARGIN`]; the faces
//! found are re-scored on the float32 `embedding`. The index is built by
//! index_build.rs; strategy.rs decides when it is used.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::sql_types::{Array, Float4, Float8, Int4, Int8, Nullable, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use facepass_core::Result;
use pgvector::{HalfVector, Vector};
use uuid::Uuid;

use super::{db_error, Candidate, FaceStore, HalfVec, Vec32, HALF_MARGIN};

impl FaceStore {
    /// Every face of the partition `part` within `max_distance` of at least
    /// one query through its HNSW index, one scan per query, merged by face.
    pub(super) async fn hnsw_candidates(
        &self,
        conn: &mut AsyncPgConnection,
        part: &str,
        dimension: i32,
        queries: &[Vec<f32>],
        max_distance: f64,
    ) -> Result<Vec<Candidate>> {
        let mut merged: HashMap<(Uuid, i32), Candidate> = HashMap::new();
        for (qi, q) in queries.iter().enumerate() {
            for (photo_id, face_index, bbox, sim) in self
                .hnsw_within(conn, part, dimension, q, max_distance)
                .await?
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
        Ok(merged.into_values().collect())
    }

    /// Faces within `max_distance` of `query` through the partition's HNSW
    /// index. An iterative scan (relaxed order: each batch of ef_search
    /// candidates is sorted, batches may overlap) goes on past ef_search;
    /// the LIMIT grows until at least ef_search faces beyond the loosened
    /// threshold have shown up, so the threshold, not a top-k, bounds the
    /// answer. Strict order would drop faces the graph reaches late. The
    /// scan gets its own work_mem: pgvector ends an iterative scan quietly
    /// when it runs out. Returned faces are re-scored in float32. The
    /// index is on `embedding_half::halfvec(dimension)` (index_build.rs);
    /// the scan orders by that same expression.
    async fn hnsw_within(
        &self,
        conn: &mut AsyncPgConnection,
        part: &str,
        dimension: i32,
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
                       SELECT photo_id, face_index, bbox, \
                         embedding_half::halfvec({dimension}) <=> $1 AS distance, embedding \
                       FROM faces.{part} ORDER BY embedding_half::halfvec({dimension}) <=> $1 LIMIT $2) nearest"
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
}
