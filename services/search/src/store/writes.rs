//! Writes: replacing the faces of photos, recording failed photos, deleting
//! faces, photos, and "forget me". Each runs in one transaction that also
//! keeps `faces.photos` and the event's face count and version in step, so
//! statistics and the strategy choice are never stale and in-memory copies
//! of the event are retired. Deleting a whole event is the registry's
//! (registry.rs): it drops the partition.

use diesel::prelude::*;
use diesel::sql_types::{Array, Float4, Float8, Int4, Int8, Text, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use facepass_core::Result;
use pgvector::{HalfVector, Vector};
use uuid::Uuid;

use super::registry::{checked_partition, ensure_event, load_event, unknown_event};
use super::schema::event_faces;
use super::{FaceStore, HalfVec, NewFace, PhotoFaces, TxError, Vec32, HALF_MARGIN};

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

#[derive(QueryableByName)]
struct PhotoId {
    #[diesel(sql_type = SqlUuid)]
    photo_id: Uuid,
}

#[derive(QueryableByName)]
struct Suppression {
    #[diesel(sql_type = Vec32)]
    embedding: Vector,
    #[diesel(sql_type = Float4)]
    min_similarity: f32,
}

/// The event's "forget me" entries made with `model`.
async fn load_suppressions(
    conn: &mut AsyncPgConnection,
    studio_id: Uuid,
    event_id: Uuid,
    model: &str,
) -> std::result::Result<Vec<Suppression>, diesel::result::Error> {
    diesel::sql_query(
        "SELECT embedding, min_similarity FROM faces.suppressions \
         WHERE event_id = $1 AND studio_id = $2 AND model = $3",
    )
    .bind::<SqlUuid, _>(event_id)
    .bind::<SqlUuid, _>(studio_id)
    .bind::<Text, _>(model)
    .load(conn)
    .await
}

/// Whether a face (L2-normalised) is a forgotten guest's.
fn suppressed(suppressions: &[Suppression], embedding: &[f32]) -> bool {
    suppressions.iter().any(|s| {
        let e = s.embedding.as_slice();
        e.len() == embedding.len()
            && e.iter().zip(embedding).map(|(a, b)| a * b).sum::<f32>() >= s.min_similarity
    })
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

/// The one dimension of every embedding of a write (0 when it has no
/// faces): one model pack made them all.
fn same_dimension(photos: &[PhotoFaces]) -> Result<usize> {
    let mut dims = photos
        .iter()
        .flat_map(|p| &p.faces)
        .map(|f| f.embedding.as_slice().len());
    let first = dims.next().unwrap_or(0);
    if dims.any(|d| d != first) {
        return Err(facepass_core::Error::invalid(
            "the faces of one write carry embeddings of different dimensions",
        ));
    }
    Ok(first)
}

/// Rows per INSERT statement (11 parameters a row, PostgreSQL allows 65535).
const INSERT_CHUNK: usize = 2_000;

impl FaceStore {
    /// Replaces every face of each photo with the given faces and records
    /// the photos as indexed, in one transaction. Returns (stored, replaced).
    pub async fn replace_faces(
        &self,
        studio_id: Uuid,
        event_id: Uuid,
        model: &str,
        photos: Vec<PhotoFaces>,
    ) -> Result<(usize, usize)> {
        let dimension = same_dimension(&photos)?;
        let mut conn = self.conn().await?;
        let model = model.to_string();
        let result = conn
            .transaction::<_, TxError, _>(async |conn| {
                let event = ensure_event(conn, studio_id, event_id, &model, dimension).await?;
                let part = checked_partition(&event.partition_name).map_err(TxError::App)?;
                let suppressions = load_suppressions(conn, studio_id, event_id, &model).await?;
                let photos: Vec<PhotoFaces> = photos
                    .into_iter()
                    .map(|mut p| {
                        p.faces.retain(|f| !suppressed(&suppressions, f.embedding.as_slice()));
                        p
                    })
                    .collect();
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
                let event = ensure_event(conn, studio_id, event_id, "", 0).await?;
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
        suppress: bool,
    ) -> Result<Vec<Forgotten>> {
        let mut conn = self.conn().await?;
        let model = model.to_string();
        let half = HalfVector::from_f32_slice(query);
        let full = Vector::from(query.to_vec());
        let forgotten = conn
            .transaction::<_, TxError, _>(async |conn| {
                if suppress {
                    // Kept even before the event has faces: photos indexed
                    // later are checked against it.
                    diesel::sql_query(
                        "INSERT INTO faces.suppressions (studio_id, event_id, model, embedding, min_similarity) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind::<SqlUuid, _>(studio_id)
                    .bind::<SqlUuid, _>(event_id)
                    .bind::<Text, _>(&model)
                    .bind::<Vec32, _>(&full)
                    .bind::<Float4, _>(min_similarity)
                    .execute(conn)
                    .await?;
                }
                let Some(event) = load_event(conn, studio_id, event_id).await? else {
                    if suppress {
                        return Ok(Vec::new());
                    }
                    return Err(TxError::App(unknown_event(event_id)));
                };
                event.check_model(&model).map_err(TxError::App)?;
                event
                    .check_dimension("the query", query.len())
                    .map_err(TxError::App)?;
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
}
