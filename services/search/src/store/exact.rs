//! Exact search in PostgreSQL: one sequential pass over the event's
//! partition compares every query with the inline half-precision copy
//! `embedding_half`, the threshold loosened by [`HALF_MARGIN`]; the faces
//! that pass are re-scored on the float32 `embedding`, so the answer equals
//! a float32 brute-force search.

use diesel::prelude::*;
use diesel::sql_types::{Array, Float4, Float8, Int4, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use facepass_core::Result;
use pgvector::{HalfVector, Vector};
use uuid::Uuid;

use super::{db_error, Candidate, HalfVec, Vec32, HALF_MARGIN};

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

/// Every face of the partition `part` within `max_distance` (`1 -
/// min_similarity`) of at least one query, with its float32 similarity to
/// each query (`None` below `min_similarity`).
pub(super) async fn candidates(
    conn: &mut AsyncPgConnection,
    part: &str,
    queries: &[Vec<f32>],
    min_similarity: f32,
    max_distance: f64,
) -> Result<Vec<Candidate>> {
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
        .load(conn)
        .await
        .map_err(db_error)?;
    Ok(rows
        .into_iter()
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
        .collect())
}
