//! The face store: every query is scoped to one studio, and searches to one
//! event. Replacing a photo's faces is one transaction keyed by photo and
//! model, so a redelivered indexing message changes nothing.

use diesel::prelude::*;
use diesel::sql_types::{Array, Float4, Int4, Text, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, RunQueryDsl};
use facepass_core::{Error, Result};
use facepass_db::PgPool;
use pgvector::Vector;
use uuid::Uuid;

mod schema {
    diesel::table! {
        use diesel::sql_types::*;
        use pgvector::sql_types::Vector;

        faces.faces (id) {
            id -> Int8,
            studio_id -> Uuid,
            event_id -> Uuid,
            photo_id -> Uuid,
            face_index -> Int4,
            model -> Text,
            embedding -> Vector,
            bbox -> Array<Float4>,
            landmarks -> Array<Float4>,
            det_score -> Float4,
        }
    }
}

use schema::faces;

/// One face to store.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = faces)]
pub struct NewFace {
    pub studio_id: Uuid,
    pub event_id: Uuid,
    pub photo_id: Uuid,
    pub face_index: i32,
    pub model: String,
    pub embedding: Vector,
    pub bbox: Vec<f32>,
    pub landmarks: Vec<f32>,
    pub det_score: f32,
}

/// A photo found by a search, with its best face.
#[derive(Debug, Clone, QueryableByName, PartialEq)]
pub struct Hit {
    #[diesel(sql_type = SqlUuid)]
    pub photo_id: Uuid,
    #[diesel(sql_type = Int4)]
    pub face_index: i32,
    #[diesel(sql_type = Array<Float4>)]
    pub bbox: Vec<f32>,
    #[diesel(sql_type = Float4)]
    pub similarity: f32,
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

#[derive(Clone)]
pub struct FaceStore {
    pool: PgPool,
}

fn db_error(e: impl std::fmt::Display) -> Error {
    Error::internal(format!("database: {e}"))
}

impl FaceStore {
    pub fn new(pool: PgPool) -> Self {
        FaceStore { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn conn(&self) -> Result<facepass_db::PooledConnection<diesel_async::AsyncPgConnection>> {
        self.pool
            .get()
            .await
            .map_err(|e| Error::unavailable(format!("database unavailable: {e}")))
    }

    /// Replaces every face of `photo_id` made by `model` with `new_faces`.
    /// Returns (stored, replaced).
    pub async fn replace_photo_faces(
        &self,
        studio_id: Uuid,
        photo_id: Uuid,
        model: &str,
        new_faces: Vec<NewFace>,
    ) -> Result<(usize, usize)> {
        let mut conn = self.conn().await?;
        let model = model.to_string();
        conn.transaction::<_, diesel::result::Error, _>(async |conn| {
            let replaced = diesel::delete(
                faces::table
                    .filter(faces::photo_id.eq(photo_id))
                    .filter(faces::studio_id.eq(studio_id))
                    .filter(faces::model.eq(&model)),
            )
            .execute(conn)
            .await?;
            let stored = if new_faces.is_empty() {
                0
            } else {
                diesel::insert_into(faces::table)
                    .values(&new_faces)
                    .execute(conn)
                    .await?
            };
            Ok((stored, replaced))
        })
        .await
        .map_err(db_error)
    }

    /// Photos of one event with a face at least `min_similarity` (cosine)
    /// to `query`, best first; exact (every face of the event is compared).
    pub async fn search_event(
        &self,
        studio_id: Uuid,
        event_id: Uuid,
        model: &str,
        query: Vec<f32>,
        min_similarity: f32,
        limit: u32,
    ) -> Result<Vec<Hit>> {
        let mut conn = self.conn().await?;
        // DISTINCT ON keeps each photo's best face; the outer query ranks photos.
        let sql = "SELECT photo_id, face_index, bbox, similarity FROM ( \
                     SELECT DISTINCT ON (photo_id) photo_id, face_index, bbox, \
                            (1 - (embedding <=> $1))::real AS similarity \
                     FROM faces.faces \
                     WHERE studio_id = $2 AND event_id = $3 AND model = $4 \
                       AND (embedding <=> $1) <= $5 \
                     ORDER BY photo_id, embedding <=> $1 \
                   ) best ORDER BY similarity DESC, photo_id LIMIT $6";
        diesel::sql_query(sql)
            .bind::<pgvector::sql_types::Vector, _>(Vector::from(query))
            .bind::<SqlUuid, _>(studio_id)
            .bind::<SqlUuid, _>(event_id)
            .bind::<Text, _>(model)
            .bind::<diesel::sql_types::Float8, _>(1.0 - min_similarity as f64)
            .bind::<diesel::sql_types::Int8, _>(limit as i64)
            .load::<Hit>(&mut conn)
            .await
            .map_err(db_error)
    }

    /// Deletes the faces of one event at least `min_similarity` similar to
    /// `query`, returning what was deleted.
    pub async fn forget(
        &self,
        studio_id: Uuid,
        event_id: Uuid,
        model: &str,
        query: Vec<f32>,
        min_similarity: f32,
    ) -> Result<Vec<Forgotten>> {
        let mut conn = self.conn().await?;
        diesel::sql_query(
            "DELETE FROM faces.faces \
             WHERE studio_id = $2 AND event_id = $3 AND model = $4 AND (embedding <=> $1) <= $5 \
             RETURNING photo_id, face_index, (1 - (embedding <=> $1))::real AS similarity",
        )
        .bind::<pgvector::sql_types::Vector, _>(Vector::from(query))
        .bind::<SqlUuid, _>(studio_id)
        .bind::<SqlUuid, _>(event_id)
        .bind::<Text, _>(model)
        .bind::<diesel::sql_types::Float8, _>(1.0 - min_similarity as f64)
        .load::<Forgotten>(&mut conn)
        .await
        .map_err(db_error)
    }

    pub async fn delete_photo(&self, studio_id: Uuid, photo_id: Uuid) -> Result<usize> {
        let mut conn = self.conn().await?;
        diesel::delete(
            faces::table
                .filter(faces::photo_id.eq(photo_id))
                .filter(faces::studio_id.eq(studio_id)),
        )
        .execute(&mut conn)
        .await
        .map_err(db_error)
    }

    pub async fn delete_event(&self, studio_id: Uuid, event_id: Uuid) -> Result<usize> {
        let mut conn = self.conn().await?;
        diesel::delete(
            faces::table
                .filter(faces::event_id.eq(event_id))
                .filter(faces::studio_id.eq(studio_id)),
        )
        .execute(&mut conn)
        .await
        .map_err(db_error)
    }

    /// (faces, distinct photos with faces) of one event.
    pub async fn event_stats(&self, studio_id: Uuid, event_id: Uuid) -> Result<(i64, i64)> {
        let mut conn = self.conn().await?;
        faces::table
            .filter(faces::event_id.eq(event_id))
            .filter(faces::studio_id.eq(studio_id))
            .select((
                diesel::dsl::count_star(),
                diesel::dsl::sql::<diesel::sql_types::BigInt>("count(DISTINCT photo_id)"),
            ))
            .first::<(i64, i64)>(&mut conn)
            .await
            .map_err(db_error)
    }
}
