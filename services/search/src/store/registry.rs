//! The event registry: one row per event in `faces.events` (studio, model
//! pack, partition, face count, HNSW state, version), and the event's list
//! partition of `faces.event_faces`, created on its first write and
//! detached and dropped with the event. Also the model-pack check every
//! request goes through, the photo records' lookups and the statistics.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Int4, Int8, Nullable, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use facepass_core::{Error, ErrorCode, Result};
use uuid::Uuid;

use super::{db_error, Count, EventStats, FaceStore, TxError};

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
    /// Dimension of every embedding of the event (its model pack's); 0
    /// until its first face.
    #[diesel(sql_type = Int4)]
    pub dimension: i32,
}

/// The partition of an event: `ev_` and the id's 32 hex digits.
pub(super) fn partition_name(event_id: Uuid) -> String {
    format!("ev_{}", event_id.simple())
}

pub(super) fn checked_partition(name: &str) -> Result<&str> {
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

pub(super) fn unknown_event(event_id: Uuid) -> Error {
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

    /// Vectors compared with the event's faces must have their dimension:
    /// a request of another pack is refused before any SQL compares them.
    pub fn check_dimension(&self, what: &str, dimension: usize) -> Result<()> {
        if self.dimension > 0 && self.dimension as usize != dimension {
            return Err(Error::new(
                ErrorCode::ModelMismatch,
                format!(
                    "event {} holds {}-dimensional embeddings of model pack {:?}; {what} has {dimension}",
                    self.event_id, self.dimension, self.model
                ),
            ));
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

pub(super) const EVENT_COLUMNS: &str =
    "event_id, studio_id, model, partition_name, face_count, ann_index, version, dimension";

pub(super) async fn load_event(
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
/// is new, and recording its model pack and embedding dimension with its
/// first faces (`model` empty and `dimension` 0: a write without faces).
/// Runs inside the caller's transaction; a transaction-scoped advisory lock
/// makes concurrent first writes of one event safe.
pub(super) async fn ensure_event(
    conn: &mut AsyncPgConnection,
    studio_id: Uuid,
    event_id: Uuid,
    model: &str,
    dimension: usize,
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
        if dimension > 0 {
            if event.dimension == 0 {
                diesel::sql_query("UPDATE faces.events SET dimension = $2 WHERE event_id = $1")
                    .bind::<SqlUuid, _>(event_id)
                    .bind::<Int4, _>(dimension as i32)
                    .execute(conn)
                    .await?;
                event.dimension = dimension as i32;
            } else {
                event
                    .check_dimension("the new faces' embeddings", dimension)
                    .map_err(TxError::App)?;
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
        "INSERT INTO faces.events (event_id, studio_id, model, partition_name, dimension) \
         VALUES ($1, $2, $3, $4, $5) RETURNING {EVENT_COLUMNS}"
    ))
    .bind::<SqlUuid, _>(event_id)
    .bind::<SqlUuid, _>(studio_id)
    .bind::<Text, _>(model)
    .bind::<Text, _>(&part)
    .bind::<Int4, _>(dimension as i32)
    .get_result::<EventInfo>(conn)
    .await?;
    Ok(event)
}

impl FaceStore {
    /// The event's registry row; NOT_FOUND when the store has never heard
    /// of it (or it belongs to another studio).
    pub async fn event(&self, studio_id: Uuid, event_id: Uuid) -> Result<EventInfo> {
        let mut conn = self.conn().await?;
        load_event(&mut conn, studio_id, event_id)
            .await
            .map_err(db_error)?
            .ok_or_else(|| unknown_event(event_id))
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

    /// Deletes an event completely: its "forget me" suppression entries,
    /// its partition (detached and dropped: no dead tuples, no vacuum wait)
    /// and its records. Safe to repeat after a crash half-way.
    pub async fn delete_event(&self, studio_id: Uuid, event_id: Uuid) -> Result<usize> {
        let mut conn = self.conn().await?;
        diesel::sql_query("DELETE FROM faces.suppressions WHERE event_id = $1 AND studio_id = $2")
            .bind::<SqlUuid, _>(event_id)
            .bind::<SqlUuid, _>(studio_id)
            .execute(&mut conn)
            .await
            .map_err(db_error)?;
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
            strategy: self.strategy_now(&event),
            model: event.model,
        })
    }
}
