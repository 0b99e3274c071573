//! Searching this process's float32 copy of an event (the copies
//! themselves, their versions and memory budget are cache.rs): the exact
//! scan of a copy, off the async runtime, and loading a copy in the
//! background as of one snapshot, with that snapshot's version. strategy.rs
//! decides when a copy is used or loaded.

use std::sync::Arc;

use diesel::prelude::*;
use diesel::sql_types::{Array, Float4, Int4, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use facepass_core::{Error, Result};
use pgvector::Vector;
use uuid::Uuid;

use super::cache::{EventMatrix, RELOAD_COOLDOWN};
use super::registry::{checked_partition, unknown_event, EVENT_COLUMNS};
use super::{Candidate, EventInfo, FaceStore, TxError, Vec32};

/// Every face of `copy` at least `min_similarity` similar to at least one
/// query, with its similarity to each query (`None` below the threshold).
pub(super) async fn candidates(
    copy: Arc<EventMatrix>,
    queries: &[Vec<f32>],
    min_similarity: f32,
) -> Result<Vec<Candidate>> {
    let queries = queries.to_vec();
    tokio::task::spawn_blocking(move || {
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
    .map_err(|e| Error::internal(format!("scan task: {e}")))
}

impl FaceStore {
    /// Loads a copy of `event_id` in the background (after the reload
    /// cooldown), unless a load is already under way or scheduled.
    pub(super) fn copy_in_background(&self, event_id: Uuid) {
        if let Some(delay) = self.cache.begin_load(event_id, RELOAD_COOLDOWN) {
            let store = self.clone();
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

    /// Loads a float32 copy of an event (rows renormalised, so a dot
    /// product is the cosine similarity) as of one snapshot, with the
    /// version of that snapshot, into the cache. Returns (faces, kept).
    async fn load_copy(&self, event_id: Uuid) -> Result<(usize, bool)> {
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
            // (Not `rows.first()`: diesel's QueryDsl::first is in scope.)
            let dim = rows
                .as_slice()
                .first()
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
}
