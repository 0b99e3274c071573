//! The catalog: studios, API keys, events, photos and the outbox. Every
//! query that a caller can reach is scoped by studio; a photo row and its
//! `photo.uploaded` outbox row are written in one transaction.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::DatabaseErrorKind;
use diesel::IntoSql;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use facepass_core::{Error, ErrorCode, Result};
use facepass_db::{PgPool, PooledConnection};
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::schema::{events, outbox, pending_objects, photos, studios};
use crate::share_tokens::{self, ShareToken};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = events)]
pub struct EventRow {
    pub id: Uuid,
    pub studio_id: Uuid,
    pub name: String,
    pub external_id: Option<String>,
    /// The guest link's token, stored sealed (`share_tokens.rs`).
    #[diesel(column_name = share_token_sealed)]
    pub share_token: ShareToken,
    /// Its SHA-256, which a guest's link is looked up by.
    #[diesel(column_name = share_token)]
    pub share_token_hash: String,
    pub created_at: DateTime<Utc>,
    pub share_expires_at: Option<DateTime<Utc>>,
    pub share_disabled_at: Option<DateTime<Utc>>,
    pub retain_until: Option<DateTime<Utc>>,
    /// The day the event took place, as the studio gives it.
    pub event_date: Option<chrono::NaiveDate>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = photos)]
pub struct PhotoRow {
    pub id: Uuid,
    pub event_id: Uuid,
    pub studio_id: Uuid,
    pub external_id: Option<String>,
    pub object_key: String,
    pub owned_object: bool,
    pub size_bytes: i64,
    pub status: String,
    pub face_count: i32,
    pub failure_code: Option<String>,
    pub failure_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub indexed_at: Option<DateTime<Utc>>,
    /// The caller's file name, when it gave one.
    pub file_name: Option<String>,
    /// From the bytes' magic numbers (uploads), or the detector's decode.
    pub content_type: Option<String>,
    /// Hex SHA-256 of the uploaded bytes; a repeated upload compares it.
    pub content_sha256: Option<String>,
    /// Pixels, EXIF orientation applied: known once the photo is decoded.
    pub width: Option<i32>,
    pub height: Option<i32>,
    /// EXIF DateTimeOriginal, when the photo carries one.
    pub captured_at: Option<DateTime<Utc>>,
    /// When the status last changed (WatchEvent's order).
    pub updated_at: DateTime<Utc>,
    /// The error of the last failed attempt (retrying or failed).
    pub last_error_code: Option<String>,
    pub last_error_reason: Option<String>,
    /// Attempts that failed so far in the current indexing run.
    pub attempts: i32,
    /// While retrying: the next attempt, and the end of the retry window.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub retry_until: Option<DateTime<Utc>>,
    /// How often the photo was queued again after it failed.
    pub redrives: i32,
}

/// An event message waiting in the outbox.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = outbox)]
pub struct OutboxRow {
    pub id: i64,
    pub routing_key: String,
    pub message_type: String,
    pub payload: Vec<u8>,
    /// The W3C `traceparent` of the upload that wrote the row.
    pub trace_context: Option<String>,
    /// The message's AMQP priority (`facepass_queue::PRIORITY_*`).
    pub priority: i16,
}

#[derive(Insertable)]
#[diesel(table_name = outbox)]
struct NewOutbox<'a> {
    routing_key: &'a str,
    message_type: &'a str,
    payload: &'a [u8],
    trace_context: Option<&'a str>,
    priority: i16,
}

/// Photo counts of one event by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventCounts {
    pub total: u64,
    /// Waiting or being retried (`retrying` counted here too).
    pub pending: u64,
    pub retrying: u64,
    pub indexed: u64,
    pub failed: u64,
    pub faces: u64,
    /// Re-drives of the event's photos, summed: a new round of outcomes.
    pub redrives: u64,
}

/// What `photo.retrying` tells about a photo.
#[derive(Debug, Clone, PartialEq)]
pub struct Retrying {
    pub attempt: i32,
    pub error_code: String,
    pub error_reason: String,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub retry_until: Option<DateTime<Utc>>,
}

/// Which failed photos to index again; every filter given must match.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Redrive {
    pub studio_id: Option<Uuid>,
    pub event_id: Option<Uuid>,
    pub photo_id: Option<Uuid>,
    pub failure_code: Option<String>,
}

/// What `photo.indexed` tells about a photo.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Indexed {
    pub face_count: i32,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub content_type: Option<String>,
    pub captured_at: Option<DateTime<Utc>>,
}

/// A position in a listing: the last row of the previous page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
}

/// Now, to the microsecond: what PostgreSQL keeps, so that a resource reads
/// the same when it is created and when it is read back.
pub fn now() -> DateTime<Utc> {
    use chrono::SubsecRound;
    Utc::now().trunc_subsecs(6)
}

pub const STATUS_PENDING: &str = "pending";
pub const STATUS_RETRYING: &str = "retrying";
pub const STATUS_INDEXED: &str = "indexed";
pub const STATUS_FAILED: &str = "failed";

pub(crate) fn db(e: diesel::result::Error) -> Error {
    Error::internal(format!("catalog: {e}"))
}

fn is_unique_violation(e: &diesel::result::Error) -> bool {
    matches!(
        e,
        diesel::result::Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
    )
}

/// SHA-256 of an API key, the only form kept.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A fresh random token: `prefix` + 32 hex characters (128 bits).
pub fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

#[derive(Clone)]
pub struct Catalog {
    pool: PgPool,
}

impl Catalog {
    pub fn new(pool: PgPool) -> Self {
        Catalog { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub(crate) async fn conn(&self) -> Result<PooledConnection<AsyncPgConnection>> {
        self.pool.get().await.map_err(|e| {
            // The pool's error may name the database host: logs only.
            tracing::warn!(error = %e, "catalog database unavailable");
            Error::unavailable("the catalog database is unavailable, try again")
        })
    }

    /// Creates an event; with an `external_id` the studio already used, the
    /// existing event when it is the same (same name: a retry), else
    /// ALREADY_EXISTS naming it. Returns (event, whether it was created).
    /// Concurrent duplicates create one: the unique key decides.
    pub async fn create_event(
        &self,
        studio_id: Uuid,
        name: &str,
        external_id: Option<String>,
        retain_until: Option<DateTime<Utc>>,
    ) -> Result<(EventRow, bool)> {
        let mut conn = self.conn().await?;
        let token = random_token("");
        let row = EventRow {
            id: Uuid::new_v4(),
            studio_id,
            name: name.to_string(),
            external_id,
            share_token_hash: share_tokens::hash(&token),
            share_token: ShareToken(token),
            created_at: now(),
            share_expires_at: None,
            share_disabled_at: None,
            retain_until,
            event_date: None,
        };
        let inserted = diesel::insert_into(events::table)
            .values(&row)
            .execute(&mut conn)
            .await;
        match inserted {
            Ok(_) => Ok((row, true)),
            Err(e) if is_unique_violation(&e) && row.external_id.is_some() => {
                let external_id = row.external_id.clone().unwrap_or_default();
                let existing: EventRow = events::table
                    .filter(events::studio_id.eq(studio_id))
                    .filter(events::external_id.eq(&external_id))
                    .select(EventRow::as_select())
                    .first(&mut conn)
                    .await
                    .map_err(db)?;
                if existing.name == row.name {
                    Ok((existing, false))
                } else {
                    Err(Error::new(
                        ErrorCode::AlreadyExists,
                        format!(
                            "event {} already has external_id {external_id:?} with another name ({:?})",
                            existing.id, existing.name
                        ),
                    )
                    .with_field("external_id")
                    .with_info("existing_id", existing.id.to_string()))
                }
            }
            Err(e) => Err(db(e)),
        }
    }

    /// The studio's event; NOT_FOUND for another studio's, and for one
    /// being deleted.
    pub async fn get_event(&self, studio_id: Uuid, event_id: Uuid) -> Result<EventRow> {
        let mut conn = self.conn().await?;
        events::table
            .filter(events::id.eq(event_id))
            .filter(events::studio_id.eq(studio_id))
            .filter(events::deleting_at.is_null())
            .select(EventRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(db)?
            .ok_or_else(|| Error::not_found(format!("event {event_id} not found")))
    }

    /// The event behind a share link. The token comes from anyone with a
    /// browser, so it is checked as a token before it reaches a query.
    /// Turned off (by the studio, or with the studio) is LINK_DISABLED,
    /// past its expiry LINK_EXPIRED.
    pub async fn event_by_share_token(&self, token: &str) -> Result<EventRow> {
        facepass_core::text::token("token", token, facepass_core::text::MAX_TOKEN_CHARS)?;
        let mut conn = self.conn().await?;
        let hashed = share_tokens::hash(token);
        let mut query = events::table
            .inner_join(studios::table)
            .filter(events::deleting_at.is_null())
            .into_boxed();
        // By its hash. A token not sealed yet (written before sealing, or by a
        // gateway of an older version during an upgrade) is still there in
        // the clear, in a token's own form: a hash from a dump opens nothing.
        query = if share_tokens::looks_clear(token) {
            query.filter(
                events::share_token.eq(hashed).or(events::share_token_sealed
                    .eq("")
                    .and(events::share_token.eq(token))),
            )
        } else {
            query.filter(events::share_token.eq(hashed))
        };
        let (event, studio_disabled) = query
            .select((EventRow::as_select(), studios::disabled_at))
            .first::<(EventRow, Option<DateTime<Utc>>)>(&mut conn)
            .await
            .optional()
            .map_err(db)?
            .ok_or_else(|| Error::not_found("no event behind this link"))?;
        if event.share_disabled_at.is_some() || studio_disabled.is_some() {
            return Err(Error::new(
                ErrorCode::LinkDisabled,
                "the studio has turned this link off",
            ));
        }
        if event.share_expires_at.is_some_and(|at| at <= Utc::now()) {
            return Err(Error::new(ErrorCode::LinkExpired, "this link has expired"));
        }
        Ok(event)
    }

    /// Seals the share tokens still stored in the clear (events created
    /// before tokens were sealed, or by an older gateway during an
    /// upgrade), and with `all`, seals again with the first `share_link_key`
    /// those that only an older key opens. Returns how many it changed. Run
    /// at start-up (`all`) and by the sweeper.
    pub async fn reseal_share_tokens(&self, all: bool) -> Result<usize> {
        let mut conn = self.conn().await?;
        let mut query = events::table.into_boxed();
        if !all {
            query = query.filter(events::share_token_sealed.eq(""));
        }
        let rows: Vec<(Uuid, String, String)> = query
            .select((events::id, events::share_token, events::share_token_sealed))
            .load(&mut conn)
            .await
            .map_err(db)?;
        let mut changed = 0;
        for (id, stored, sealed) in rows {
            let token = if sealed.is_empty() {
                // In the clear: the column holds the token itself, in a
                // token's form (a hash there, say after the migration was
                // reverted and applied again, is no token to seal).
                if !share_tokens::looks_clear(&stored) {
                    continue;
                }
                stored.clone()
            } else {
                match share_tokens::unseal(&sealed) {
                    Some(_) if share_tokens::sealed_with_first_key(&sealed) => continue,
                    Some(token) => token,
                    None => continue,
                }
            };
            let updated = diesel::update(
                events::table
                    .filter(events::id.eq(id))
                    .filter(events::share_token.eq(&stored)),
            )
            .set((
                events::share_token.eq(share_tokens::hash(&token)),
                events::share_token_sealed.eq(ShareToken(token)),
            ))
            .execute(&mut conn)
            .await
            .map_err(db)?;
            changed += updated;
        }
        Ok(changed)
    }

    /// A new share token for the event: the old link stops working.
    pub async fn rotate_share_token(&self, studio_id: Uuid, event_id: Uuid) -> Result<EventRow> {
        let mut conn = self.conn().await?;
        diesel::update(
            events::table
                .filter(events::id.eq(event_id))
                .filter(events::studio_id.eq(studio_id))
                .filter(events::deleting_at.is_null()),
        )
        .set({
            let token = random_token("");
            (
                events::share_token.eq(share_tokens::hash(&token)),
                events::share_token_sealed.eq(ShareToken(token)),
            )
        })
        .returning(EventRow::as_returning())
        .get_result(&mut conn)
        .await
        .optional()
        .map_err(db)?
        .ok_or_else(|| Error::not_found(format!("event {event_id} not found")))
    }

    /// Turns the share link on or off and sets its expiry (None: never).
    pub async fn update_share_link(
        &self,
        studio_id: Uuid,
        event_id: Uuid,
        enabled: bool,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<EventRow> {
        let mut conn = self.conn().await?;
        // Keeps the first time it was turned off.
        let disabled = if enabled {
            diesel::dsl::sql::<diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>>("NULL")
        } else {
            diesel::dsl::sql("COALESCE(share_disabled_at, now())")
        };
        diesel::update(
            events::table
                .filter(events::id.eq(event_id))
                .filter(events::studio_id.eq(studio_id))
                .filter(events::deleting_at.is_null()),
        )
        .set((
            events::share_expires_at.eq(expires_at),
            events::share_disabled_at.eq(disabled),
        ))
        .returning(EventRow::as_returning())
        .get_result(&mut conn)
        .await
        .optional()
        .map_err(db)?
        .ok_or_else(|| Error::not_found(format!("event {event_id} not found")))
    }

    /// Up to `limit` of the studio's events, newest first, after `after`.
    pub async fn list_events(
        &self,
        studio_id: Uuid,
        limit: i64,
        after: Option<Cursor>,
    ) -> Result<Vec<EventRow>> {
        let mut conn = self.conn().await?;
        let mut query = events::table
            .filter(events::studio_id.eq(studio_id))
            .filter(events::deleting_at.is_null())
            .into_boxed();
        if let Some(Cursor { created_at, id }) = after {
            // Newest first, ties by id: the rows after (created_at, id).
            query = query.filter(
                events::created_at
                    .lt(created_at)
                    .or(events::created_at.eq(created_at).and(events::id.gt(id))),
            );
        }
        query
            .order((events::created_at.desc(), events::id))
            .limit(limit)
            .select(EventRow::as_select())
            .load(&mut conn)
            .await
            .map_err(db)
    }

    /// Photo counts per status (and faces) for the given events.
    pub async fn event_counts(&self, event_ids: &[Uuid]) -> Result<HashMap<Uuid, EventCounts>> {
        let mut conn = self.conn().await?;
        counts_on(&mut conn, event_ids).await.map_err(db)
    }

    /// Stores a new photo and its `photo.uploaded` event atomically. False
    /// (and nothing written) when the event already has a photo with the
    /// row's `external_id`.
    pub async fn insert_photo(
        &self,
        row: &PhotoRow,
        routing_key: &str,
        message_type: &str,
        payload: &[u8],
        pending_key: Option<&str>,
        priority: u8,
    ) -> Result<bool> {
        let mut conn = self.conn().await?;
        let row = row.clone();
        let trace_context = facepass_server::telemetry::current_traceparent();
        let (routing_key, message_type, payload) = (
            routing_key.to_string(),
            message_type.to_string(),
            payload.to_vec(),
        );
        let result = conn
            .transaction::<_, diesel::result::Error, _>(async |conn| {
                diesel::insert_into(photos::table)
                    .values(&row)
                    .execute(conn)
                    .await?;
                // The object is referred to now: no longer an orphan to be.
                if let Some(key) = pending_key {
                    diesel::delete(pending_objects::table.find(key))
                        .execute(conn)
                        .await?;
                }
                diesel::insert_into(outbox::table)
                    .values(NewOutbox {
                        routing_key: &routing_key,
                        message_type: &message_type,
                        payload: &payload,
                        trace_context: trace_context.as_deref(),
                        priority: priority as i16,
                    })
                    .execute(conn)
                    .await?;
                Ok(())
            })
            .await;
        match result {
            Ok(()) => Ok(true),
            Err(e) if is_unique_violation(&e) && row.external_id.is_some() => Ok(false),
            Err(e) => Err(db(e)),
        }
    }

    /// The event's photo with this `external_id`, if any.
    pub async fn photo_by_external_id(
        &self,
        event_id: Uuid,
        external_id: &str,
    ) -> Result<Option<PhotoRow>> {
        let mut conn = self.conn().await?;
        photos::table
            .filter(photos::event_id.eq(event_id))
            .filter(photos::external_id.eq(external_id))
            .select(PhotoRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(db)
    }

    pub async fn get_photo(&self, studio_id: Uuid, photo_id: Uuid) -> Result<PhotoRow> {
        let mut conn = self.conn().await?;
        photos::table
            .filter(photos::id.eq(photo_id))
            .filter(photos::studio_id.eq(studio_id))
            .select(PhotoRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(db)?
            .ok_or_else(|| Error::not_found(format!("photo {photo_id} not found")))
    }

    /// The given photos that belong to `event_id`, by id.
    pub async fn photos_in_event(
        &self,
        event_id: Uuid,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, PhotoRow>> {
        let mut conn = self.conn().await?;
        let rows: Vec<PhotoRow> = photos::table
            .filter(photos::event_id.eq(event_id))
            .filter(photos::id.eq_any(ids))
            .select(PhotoRow::as_select())
            .load(&mut conn)
            .await
            .map_err(db)?;
        Ok(rows.into_iter().map(|r| (r.id, r)).collect())
    }

    /// Up to `limit` of the event's photos, oldest first, after `after`.
    pub async fn list_photos(
        &self,
        event_id: Uuid,
        status: Option<&str>,
        limit: i64,
        after: Option<Cursor>,
    ) -> Result<Vec<PhotoRow>> {
        let mut conn = self.conn().await?;
        let mut query = photos::table
            .filter(photos::event_id.eq(event_id))
            .into_boxed();
        if let Some(status) = status {
            query = query.filter(photos::status.eq(status.to_string()));
        }
        if let Some(Cursor { created_at, id }) = after {
            query = query.filter(
                photos::created_at
                    .gt(created_at)
                    .or(photos::created_at.eq(created_at).and(photos::id.gt(id))),
            );
        }
        query
            .order((photos::created_at, photos::id))
            .limit(limit)
            .select(PhotoRow::as_select())
            .load(&mut conn)
            .await
            .map_err(db)
    }

    /// Up to `limit` photos of the event whose status changed after
    /// `after` (updated_at, id), in that order; pending ones left out.
    pub async fn photo_outcomes(
        &self,
        event_id: Uuid,
        after: Cursor,
        limit: i64,
    ) -> Result<Vec<PhotoRow>> {
        let mut conn = self.conn().await?;
        outcomes_on(&mut conn, event_id, after, limit)
            .await
            .map_err(db)
    }

    /// [`photo_outcomes`](Self::photo_outcomes) and the event's counts as
    /// one snapshot (a repeatable-read transaction): every photo the counts
    /// call done is among the outcomes read, or was read before.
    pub async fn outcomes_and_counts(
        &self,
        event_id: Uuid,
        after: Cursor,
        limit: i64,
    ) -> Result<(Vec<PhotoRow>, EventCounts)> {
        let mut conn = self.conn().await?;
        conn.build_transaction()
            .repeatable_read()
            .read_only()
            .run::<_, diesel::result::Error, _>(async |conn| {
                let outcomes = outcomes_on(conn, event_id, after, limit).await?;
                let counts = counts_on(conn, &[event_id]).await?;
                Ok((outcomes, counts.get(&event_id).copied().unwrap_or_default()))
            })
            .await
            .map_err(db)
    }

    /// Every photo of an event (for deletion).
    pub async fn event_photos(&self, event_id: Uuid) -> Result<Vec<PhotoRow>> {
        let mut conn = self.conn().await?;
        photos::table
            .filter(photos::event_id.eq(event_id))
            .select(PhotoRow::as_select())
            .load(&mut conn)
            .await
            .map_err(db)
    }

    pub async fn delete_photo_row(&self, photo_id: Uuid) -> Result<bool> {
        let mut conn = self.conn().await?;
        let n = diesel::delete(photos::table.filter(photos::id.eq(photo_id)))
            .execute(&mut conn)
            .await
            .map_err(db)?;
        Ok(n > 0)
    }

    /// Marks the studio's event as being deleted (hidden from then on) and
    /// returns it; NOT_FOUND when it is not the studio's or already going.
    pub async fn begin_event_deletion(
        &self,
        studio_id: Uuid,
        event_id: Uuid,
        actor: &str,
    ) -> Result<EventRow> {
        let mut conn = self.conn().await?;
        diesel::update(
            events::table
                .filter(events::id.eq(event_id))
                .filter(events::studio_id.eq(studio_id))
                .filter(events::deleting_at.is_null()),
        )
        .set((
            events::deleting_at.eq(Some(Utc::now())),
            events::deleting_by.eq(Some(actor)),
        ))
        .returning(EventRow::as_returning())
        .get_result(&mut conn)
        .await
        .optional()
        .map_err(db)?
        .ok_or_else(|| Error::not_found(format!("event {event_id} not found")))
    }

    /// Deletions begun before `before` and not finished (their gateway
    /// stopped or failed halfway), with the actor that began each.
    pub async fn unfinished_deletions(
        &self,
        before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<(EventRow, String)>> {
        let mut conn = self.conn().await?;
        events::table
            .filter(events::deleting_at.lt(before))
            .order(events::deleting_at)
            .limit(limit)
            .select((EventRow::as_select(), events::deleting_by.assume_not_null()))
            .load(&mut conn)
            .await
            .map_err(db)
    }

    /// Notes that `key` is about to be written for an upload whose photo
    /// row is not committed yet.
    pub async fn journal_object(&self, key: &str) -> Result<()> {
        let mut conn = self.conn().await?;
        diesel::insert_into(pending_objects::table)
            .values(pending_objects::key.eq(key))
            .on_conflict_do_nothing()
            .execute(&mut conn)
            .await
            .map_err(db)?;
        Ok(())
    }

    /// The upload of `key` ended (its object removed, or never written).
    pub async fn forget_object(&self, key: &str) -> Result<()> {
        let mut conn = self.conn().await?;
        diesel::delete(pending_objects::table.find(key))
            .execute(&mut conn)
            .await
            .map_err(db)?;
        Ok(())
    }

    /// Journaled objects older than `before`: uploads that never committed.
    pub async fn stale_objects(&self, before: DateTime<Utc>, limit: i64) -> Result<Vec<String>> {
        let mut conn = self.conn().await?;
        pending_objects::table
            .filter(pending_objects::created_at.lt(before))
            .order(pending_objects::created_at)
            .limit(limit)
            .select(pending_objects::key)
            .load(&mut conn)
            .await
            .map_err(db)
    }

    /// Whether a photo refers to the object `key`.
    pub async fn object_in_use(&self, key: &str) -> Result<bool> {
        let mut conn = self.conn().await?;
        diesel::select(diesel::dsl::exists(
            photos::table.filter(photos::object_key.eq(key)),
        ))
        .get_result(&mut conn)
        .await
        .map_err(db)
    }

    /// Deletes the event; its photo rows go with it (ON DELETE CASCADE).
    pub async fn delete_event_row(&self, event_id: Uuid) -> Result<bool> {
        let mut conn = self.conn().await?;
        let n = diesel::delete(events::table.filter(events::id.eq(event_id)))
            .execute(&mut conn)
            .await
            .map_err(db)?;
        Ok(n > 0)
    }

    /// Records `photo.indexed` with what the detector read; false when the
    /// photo no longer exists.
    pub async fn mark_indexed(&self, photo_id: Uuid, indexed: &Indexed) -> Result<bool> {
        let mut conn = self.conn().await?;
        let n = diesel::update(photos::table.filter(photos::id.eq(photo_id)))
            .set((
                photos::status.eq(STATUS_INDEXED),
                photos::face_count.eq(indexed.face_count),
                photos::failure_code.eq(None::<String>),
                photos::failure_reason.eq(None::<String>),
                photos::indexed_at.eq(Some(now())),
                photos::updated_at.eq(now()),
                photos::last_error_code.eq(None::<String>),
                photos::last_error_reason.eq(None::<String>),
                photos::next_attempt_at.eq(None::<DateTime<Utc>>),
                photos::retry_until.eq(None::<DateTime<Utc>>),
                photos::width.eq(indexed.width),
                photos::height.eq(indexed.height),
                photos::captured_at.eq(indexed.captured_at),
                photos::content_type.eq(indexed.content_type.as_deref()),
            ))
            .execute(&mut conn)
            .await
            .map_err(db)?;
        Ok(n > 0)
    }

    /// Lowers a photo's face count after faces were forgotten.
    pub async fn subtract_faces(&self, photo_id: Uuid, n: i32) -> Result<()> {
        let mut conn = self.conn().await?;
        diesel::update(photos::table.filter(photos::id.eq(photo_id)))
            .set(
                photos::face_count.eq(diesel::dsl::sql::<diesel::sql_types::Int4>(
                    "GREATEST(face_count - ",
                )
                .bind::<diesel::sql_types::Int4, _>(n)
                .sql(", 0)")),
            )
            .execute(&mut conn)
            .await
            .map_err(db)?;
        Ok(())
    }

    /// Records `photo.failed`; false when the photo no longer exists.
    pub async fn mark_failed(
        &self,
        photo_id: Uuid,
        code: &str,
        reason: &str,
        attempts: i32,
    ) -> Result<bool> {
        let mut conn = self.conn().await?;
        let n = diesel::update(photos::table.filter(photos::id.eq(photo_id)))
            .set((
                photos::status.eq(STATUS_FAILED),
                photos::face_count.eq(0),
                photos::failure_code.eq(Some(code)),
                photos::failure_reason.eq(Some(reason)),
                photos::last_error_code.eq(Some(code)),
                photos::last_error_reason.eq(Some(reason)),
                photos::attempts.eq(diesel::dsl::sql::<diesel::sql_types::Int4>(
                    "GREATEST(attempts, ",
                )
                .bind::<diesel::sql_types::Int4, _>(attempts)
                .sql(")")),
                photos::next_attempt_at.eq(None::<DateTime<Utc>>),
                photos::retry_until.eq(None::<DateTime<Utc>>),
                photos::updated_at.eq(now()),
            ))
            .execute(&mut conn)
            .await
            .map_err(db)?;
        Ok(n > 0)
    }

    /// Records `photo.retrying`: only while the photo waits for indexing
    /// and for an attempt later than the one recorded (a late or repeated
    /// message changes nothing). False when nothing changed.
    pub async fn mark_retrying(&self, photo_id: Uuid, retrying: &Retrying) -> Result<bool> {
        let mut conn = self.conn().await?;
        let n = diesel::update(
            photos::table
                .filter(photos::id.eq(photo_id))
                .filter(photos::status.eq_any([STATUS_PENDING, STATUS_RETRYING]))
                .filter(photos::attempts.lt(retrying.attempt)),
        )
        .set((
            photos::status.eq(STATUS_RETRYING),
            photos::attempts.eq(retrying.attempt),
            photos::last_error_code.eq(Some(&retrying.error_code)),
            photos::last_error_reason.eq(Some(&retrying.error_reason)),
            photos::next_attempt_at.eq(retrying.next_attempt_at),
            photos::retry_until.eq(retrying.retry_until),
            photos::updated_at.eq(now()),
        ))
        .execute(&mut conn)
        .await
        .map_err(db)?;
        Ok(n > 0)
    }

    /// Queues failed photos for indexing again, `batch` at a time: each
    /// batch sets them pending (clearing the failure, counting the
    /// re-drive) and writes their `photo.uploaded` outbox rows (`message`
    /// builds the payload) in one transaction. Returns the photos queued.
    pub async fn redrive<F>(
        &self,
        filter: &Redrive,
        batch: i64,
        routing_key: &str,
        message_type: &str,
        message: F,
    ) -> Result<Vec<PhotoRow>>
    where
        F: Fn(&PhotoRow) -> Vec<u8> + Send + Sync,
    {
        let mut conn = self.conn().await?;
        let trace_context = facepass_server::telemetry::current_traceparent();
        let mut queued = Vec::new();
        loop {
            let message = &message;
            let trace_context = trace_context.as_deref();
            let rows = conn
                .transaction::<_, diesel::result::Error, _>(async |conn| {
                    // Each filter is "not given, or matches" (a locking
                    // query cannot be boxed to add filters one by one).
                    let none = |absent: bool| absent.into_sql::<diesel::sql_types::Bool>();
                    let ids = photos::table
                        .filter(photos::status.eq(STATUS_FAILED))
                        .filter(
                            none(filter.studio_id.is_none())
                                .or(photos::studio_id.eq(filter.studio_id.unwrap_or_default())),
                        )
                        .filter(
                            none(filter.event_id.is_none())
                                .or(photos::event_id.eq(filter.event_id.unwrap_or_default())),
                        )
                        .filter(
                            none(filter.photo_id.is_none())
                                .or(photos::id.eq(filter.photo_id.unwrap_or_default())),
                        )
                        .filter(
                            none(filter.failure_code.is_none()).or(photos::failure_code
                                .eq(filter.failure_code.clone().unwrap_or_default())),
                        )
                        .select(photos::id)
                        .order(photos::id)
                        .limit(batch)
                        .for_update()
                        .skip_locked();
                    let ids: Vec<Uuid> = ids.load(conn).await?;
                    if ids.is_empty() {
                        return Ok(Vec::new());
                    }
                    let rows: Vec<PhotoRow> =
                        diesel::update(photos::table.filter(photos::id.eq_any(&ids)))
                            .set((
                                photos::status.eq(STATUS_PENDING),
                                photos::failure_code.eq(None::<String>),
                                photos::failure_reason.eq(None::<String>),
                                photos::attempts.eq(0),
                                photos::next_attempt_at.eq(None::<DateTime<Utc>>),
                                photos::retry_until.eq(None::<DateTime<Utc>>),
                                photos::redrives.eq(photos::redrives + 1),
                                photos::updated_at.eq(now()),
                            ))
                            .returning(PhotoRow::as_returning())
                            .get_results(conn)
                            .await?;
                    let payloads: Vec<Vec<u8>> = rows.iter().map(message).collect();
                    let outbox_rows: Vec<NewOutbox> = payloads
                        .iter()
                        .map(|payload| NewOutbox {
                            routing_key,
                            message_type,
                            payload,
                            trace_context,
                            // A re-drive is work done again, not a photo
                            // just taken: it waits behind live uploads.
                            priority: facepass_queue::PRIORITY_BULK as i16,
                        })
                        .collect();
                    diesel::insert_into(outbox::table)
                        .values(&outbox_rows)
                        .execute(conn)
                        .await?;
                    Ok(rows)
                })
                .await
                .map_err(db)?;
            let done = (rows.len() as i64) < batch;
            queued.extend(rows);
            if done {
                return Ok(queued);
            }
        }
    }

    /// Locks up to `batch` unsent outbox rows, hands them to `publish` in
    /// order and marks those it confirms as sent, all in one transaction;
    /// concurrent relays skip each other's rows. Returns how many were sent.
    pub async fn relay_outbox<F, Fut>(&self, batch: i64, publish: F) -> Result<usize>
    where
        F: Fn(OutboxRow) -> Fut + Send + Sync,
        Fut: std::future::Future<Output = Result<()>> + Send,
    {
        let mut conn = self.conn().await?;
        let publish = &publish;
        let result = conn
            .transaction::<_, diesel::result::Error, _>(async |conn| {
                let rows: Vec<OutboxRow> = outbox::table
                    .filter(outbox::sent_at.is_null())
                    .order(outbox::id)
                    .limit(batch)
                    .for_update()
                    .skip_locked()
                    .select(OutboxRow::as_select())
                    .load(conn)
                    .await?;
                let mut sent = Vec::new();
                let mut failure = None;
                for row in rows {
                    let id = row.id;
                    match publish(row).await {
                        Ok(()) => sent.push(id),
                        Err(e) => {
                            failure = Some(e);
                            break;
                        }
                    }
                }
                if !sent.is_empty() {
                    diesel::update(outbox::table.filter(outbox::id.eq_any(&sent)))
                        .set(outbox::sent_at.eq(Some(Utc::now())))
                        .execute(conn)
                        .await?;
                }
                Ok((sent.len(), failure))
            })
            .await
            .map_err(db)?;
        match result {
            (_, Some(e)) => Err(e),
            (n, None) => Ok(n),
        }
    }

    /// Deletes sent outbox rows older than `hours`.
    pub async fn prune_outbox(&self, hours: i64) -> Result<usize> {
        let mut conn = self.conn().await?;
        let cutoff = Utc::now() - chrono::Duration::hours(hours);
        diesel::delete(
            outbox::table
                .filter(outbox::sent_at.is_not_null())
                .filter(outbox::sent_at.lt(cutoff)),
        )
        .execute(&mut conn)
        .await
        .map_err(db)
    }
}

async fn counts_on(
    conn: &mut AsyncPgConnection,
    event_ids: &[Uuid],
) -> diesel::QueryResult<HashMap<Uuid, EventCounts>> {
    // (event, status, photos, faces, re-drives)
    type Row = (Uuid, String, i64, Option<i64>, Option<i64>);
    let rows: Vec<Row> = photos::table
        .filter(photos::event_id.eq_any(event_ids))
        .group_by((photos::event_id, photos::status))
        .select((
            photos::event_id,
            photos::status,
            diesel::dsl::count_star(),
            diesel::dsl::sum(photos::face_count),
            diesel::dsl::sum(photos::redrives),
        ))
        .load(conn)
        .await?;
    let mut counts: HashMap<Uuid, EventCounts> = HashMap::new();
    for (event_id, status, n, faces, redrives) in rows {
        let c = counts.entry(event_id).or_default();
        let n = n as u64;
        c.total += n;
        c.faces += faces.unwrap_or(0) as u64;
        c.redrives += redrives.unwrap_or(0) as u64;
        match status.as_str() {
            STATUS_PENDING => c.pending += n,
            STATUS_RETRYING => {
                c.pending += n;
                c.retrying += n;
            }
            STATUS_INDEXED => c.indexed += n,
            _ => c.failed += n,
        }
    }
    Ok(counts)
}

async fn outcomes_on(
    conn: &mut AsyncPgConnection,
    event_id: Uuid,
    after: Cursor,
    limit: i64,
) -> diesel::QueryResult<Vec<PhotoRow>> {
    photos::table
        .filter(photos::event_id.eq(event_id))
        .filter(photos::status.ne_all([STATUS_PENDING, STATUS_RETRYING]))
        .filter(
            photos::updated_at
                .gt(after.created_at)
                .or(photos::updated_at
                    .eq(after.created_at)
                    .and(photos::id.gt(after.id))),
        )
        .order((photos::updated_at, photos::id))
        .limit(limit)
        .select(PhotoRow::as_select())
        .load(conn)
        .await
}
