//! FacePass's benchmarks, kept out of the production crates
//! (docs/benchmarks.md): `facepass-bench-vision`, the vision pipeline from
//! JPEG bytes to embeddings, and `facepass-bench-store`, the face store's
//! latency, throughput, recall and inserts. They link the service libraries
//! and the test harness (`facepass-integration-tests`: synthetic faces, the
//! ONNX Runtime library, health polling). What they need from the database
//! beyond the store's own API they read here, with their own SQL: the
//! services expose nothing for them.

use anyhow::ensure;
use diesel::sql_types::{Float8, Int4, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, RunQueryDsl, SimpleAsyncConnection};
use facepass_db::PgPool;
use facepass_search::store::EventInfo;
use pgvector::Vector;
use uuid::Uuid;

/// Exact brute-force reference, what recall is measured against: every face
/// of the event at least `min_similarity` similar to `query`, compared in
/// float32 one by one (no half precision, no index). Returns (photo, face
/// index, similarity).
pub async fn exact_reference(
    pool: &PgPool,
    event: &EventInfo,
    query: &[f32],
    min_similarity: f32,
) -> anyhow::Result<Vec<(Uuid, i32, f32)>> {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = SqlUuid)]
        photo_id: Uuid,
        #[diesel(sql_type = Int4)]
        face_index: i32,
        #[diesel(sql_type = Float8)]
        similarity: f64,
    }
    // The name is spliced into SQL: accept only the store's naming, `ev_`
    // and the event id's 32 hex digits (docs/face-store.md).
    let part = event.partition_name.clone();
    ensure!(
        part == format!("ev_{}", event.event_id.simple()),
        "unexpected partition name {part:?} for event {}",
        event.event_id
    );
    let query = Vector::from(query.to_vec());
    let mut conn = pool.get().await.map_err(|e| anyhow::anyhow!("{e}"))?;
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
            .bind::<pgvector::sql_types::Vector, _>(&query)
            .bind::<Float8, _>(1.0 - min_similarity as f64)
            .load::<Row>(conn)
            .await
        })
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.photo_id, r.face_index, r.similarity as f32))
        .collect())
}

/// A stored face in the search service's terms: `bbox` (x1, y1, x2, y2),
/// landmarks at the origin, score 0.9 (the benchmarks' synthetic faces).
pub fn stored_face(bbox: &[f32]) -> facepass_proto::types::v1::Face {
    use facepass_proto::types::v1 as types;
    types::Face {
        r#box: Some(types::FaceBox {
            x1: bbox[0],
            y1: bbox[1],
            x2: bbox[2],
            y2: bbox[3],
        }),
        landmarks: vec![types::Point { x: 0.0, y: 0.0 }; 5],
        score: 0.9,
    }
}
