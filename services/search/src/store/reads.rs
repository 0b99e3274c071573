//! Reads of stored faces for the public API: one photo's faces (geometry
//! and quality, never embeddings), and the embeddings of given faces for a
//! "more photos of this person" query, which stay inside the search service.

use diesel::prelude::*;
use diesel::sql_types::{Array, Float4, Int4, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use facepass_core::{Error, Result};
use pgvector::Vector;
use uuid::Uuid;

use super::registry::{checked_partition, load_event};
use super::{db_error, FaceStore, Vec32};

/// A stored face without its embedding.
#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct StoredFace {
    #[diesel(sql_type = Int4)]
    pub face_index: i32,
    #[diesel(sql_type = Array<Float4>)]
    pub bbox: Vec<f32>,
    #[diesel(sql_type = Array<Float4>)]
    pub landmarks: Vec<f32>,
    #[diesel(sql_type = Float4)]
    pub det_score: f32,
    #[diesel(sql_type = Float4)]
    pub quality: f32,
}

#[derive(QueryableByName)]
struct EmbeddingRow {
    #[diesel(sql_type = SqlUuid)]
    photo_id: Uuid,
    #[diesel(sql_type = Int4)]
    face_index: i32,
    #[diesel(sql_type = Vec32)]
    embedding: Vector,
}

impl FaceStore {
    /// The faces of one photo in detection order, and the event's model;
    /// none when the store has no faces of the photo (or of the event).
    pub async fn photo_faces(
        &self,
        studio_id: Uuid,
        event_id: Uuid,
        photo_id: Uuid,
    ) -> Result<(Vec<StoredFace>, String)> {
        let mut conn = self.conn().await?;
        let Some(event) = load_event(&mut conn, studio_id, event_id)
            .await
            .map_err(db_error)?
        else {
            return Ok((Vec::new(), String::new()));
        };
        let part = checked_partition(&event.partition_name)?;
        let faces = diesel::sql_query(format!(
            "SELECT face_index, bbox, landmarks, det_score, quality FROM faces.{part} \
             WHERE event_id = $1 AND photo_id = $2 ORDER BY face_index"
        ))
        .bind::<SqlUuid, _>(event_id)
        .bind::<SqlUuid, _>(photo_id)
        .load(&mut conn)
        .await
        .map_err(db_error)?;
        Ok((faces, event.model))
    }

    /// The embeddings of the given faces of one event, in the order asked;
    /// NOT_FOUND naming the first face the event does not have.
    pub async fn face_embeddings(
        &self,
        studio_id: Uuid,
        event_id: Uuid,
        faces: &[(Uuid, i32)],
    ) -> Result<Vec<Vec<f32>>> {
        let mut conn = self.conn().await?;
        let event = load_event(&mut conn, studio_id, event_id)
            .await
            .map_err(db_error)?
            .ok_or_else(|| {
                Error::not_found(format!("event {event_id} has no faces in the store"))
            })?;
        let part = checked_partition(&event.partition_name)?;
        let photos: Vec<Uuid> = faces.iter().map(|f| f.0).collect();
        let indexes: Vec<i32> = faces.iter().map(|f| f.1).collect();
        let rows: Vec<EmbeddingRow> = diesel::sql_query(format!(
            "SELECT f.photo_id, f.face_index, f.embedding FROM faces.{part} f \
             JOIN unnest($1::uuid[], $2::int[]) AS q(p, i) ON f.photo_id = q.p AND f.face_index = q.i \
             WHERE f.event_id = $3"
        ))
        .bind::<Array<SqlUuid>, _>(&photos)
        .bind::<Array<Int4>, _>(&indexes)
        .bind::<SqlUuid, _>(event_id)
        .load(&mut conn)
        .await
        .map_err(db_error)?;
        faces
            .iter()
            .map(|(photo, index)| {
                rows.iter()
                    .find(|r| r.photo_id == *photo && r.face_index == *index)
                    .map(|r| r.embedding.to_vec())
                    .ok_or_else(|| {
                        Error::not_found(format!(
                            "face {index} of photo {photo} is not in the event"
                        ))
                    })
            })
            .collect()
    }
}
