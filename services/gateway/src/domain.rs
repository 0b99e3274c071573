//! What the gateway does, independent of how it is asked: the gRPC API for
//! Pixora and the REST API for browsers are thin adapters over this.

use std::sync::Arc;

use bytes::Bytes;
use facepass_analysis::{peer, AnalyzedFace, FaceAnalysis};
use facepass_core::{preview, text, Error, ErrorCode, Result};
use facepass_proto::events::v1::PhotoUploaded;
use facepass_proto::search::v1 as srch;
use facepass_queue::Event;
use facepass_server::auth::AttachToken;
use facepass_server::balance::PeerChannel as Channel;
use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;
use prost::Message;
use tokio::sync::Notify;
use tonic::service::interceptor::InterceptedService;
use uuid::Uuid;

use crate::catalog::{
    Catalog, Cursor, EventCounts, EventRow, PhotoRow, Redrive, STATUS_INDEXED, STATUS_PENDING,
};
use crate::privacy::Audit;
use crate::GatewayConfig;

type Authed = InterceptedService<Channel, AttachToken>;

/// Clients of the internal services: the shared face-analysis client
/// (detector and embedder) and the face store.
#[derive(Clone)]
pub struct Peers {
    pub faces: FaceAnalysis,
    pub search: srch::search_service_client::SearchServiceClient<Authed>,
}

impl Peers {
    pub fn connect(config: &GatewayConfig) -> anyhow::Result<Self> {
        Ok(Peers {
            faces: FaceAnalysis::new(
                config.detector.channel_named("detector")?,
                config.embedder.channel_named("embedder")?,
                &config.internal_token,
                config.grpc.max_message_bytes,
            ),
            search: srch::search_service_client::SearchServiceClient::with_interceptor(
                config.search.channel_named("search")?,
                AttachToken::new(&config.internal_token),
            ),
        })
    }
}

/// A page asked for: its size (0 = the default) and the token of the
/// previous page ("" = the first). Read the same way by gRPC and REST.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest<'a> {
    pub page_size: u32,
    pub page_token: &'a str,
}

/// Items a page holds when the caller does not say.
pub const DEFAULT_PAGE: u32 = 50;

impl<'a> PageRequest<'a> {
    pub fn new(page_size: u32, page_token: &'a str) -> Self {
        PageRequest {
            page_size,
            page_token,
        }
    }

    /// The page size asked for: `default` when zero, at most `max`.
    pub fn limit(&self, default: u32, max: u32) -> Result<i64> {
        match self.page_size {
            0 => Ok(default.min(max) as i64),
            n if n > max => Err(Error::invalid_field(
                "page_size",
                format!("page_size is at most {max}"),
            )),
            n => Ok(n as i64),
        }
    }

    /// The token decoded by `decode`; None on the first page.
    pub fn after<C>(&self, decode: impl Fn(&str) -> Option<C>) -> Result<Option<C>> {
        if self.page_token.is_empty() {
            return Ok(None);
        }
        decode(self.page_token).map(Some).ok_or_else(|| {
            Error::invalid_field("page_token", "page_token is not one this API issued")
        })
    }

    /// (limit, the keyset cursor to continue after), with at most `max` a page.
    fn limit_after(&self, max: u32) -> Result<(i64, Option<Cursor>)> {
        Ok((self.limit(DEFAULT_PAGE, max)?, self.after(decode_cursor)?))
    }
}

/// A page token: the last item's (created_at in microseconds, id), 24 bytes
/// in hex. Keyset pagination: rows inserted or deleted between two pages
/// neither repeat nor skip the others.
pub fn encode_cursor(cursor: &Cursor) -> String {
    let mut bytes = Vec::with_capacity(24);
    bytes.extend_from_slice(&cursor.created_at.timestamp_micros().to_be_bytes());
    bytes.extend_from_slice(cursor.id.as_bytes());
    hex::encode(bytes)
}

pub fn decode_cursor(token: &str) -> Option<Cursor> {
    let bytes = hex::decode(token).ok()?;
    if bytes.len() != 24 {
        return None;
    }
    let micros = i64::from_be_bytes(bytes[..8].try_into().ok()?);
    Some(Cursor {
        created_at: chrono::DateTime::from_timestamp_micros(micros)?,
        id: Uuid::from_slice(&bytes[8..]).ok()?,
    })
}

/// One page of a listing and the token of the next ("" on the last).
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_page_token: String,
}

impl<T> Page<T> {
    /// `items` were fetched with one more than `limit`: that one only says
    /// whether a next page exists; `token` makes the next page's token from
    /// the last item.
    pub fn of(mut items: Vec<T>, limit: i64, token: impl Fn(&T) -> String) -> Self {
        let more = items.len() as i64 > limit;
        items.truncate(limit as usize);
        let next_page_token = match items.last() {
            Some(last) if more => token(last),
            _ => String::new(),
        };
        Page {
            items,
            next_page_token,
        }
    }
}

/// Where a new photo waits for indexing (`IndexingPriority`): a photo
/// uploaded live is indexed before the waiting photos of a bulk import.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Priority {
    #[default]
    Live,
    Bulk,
}

impl Priority {
    /// The `photo.uploaded` message's AMQP priority.
    pub fn amqp(self) -> u8 {
        match self {
            Priority::Live => facepass_queue::PRIORITY_LIVE,
            Priority::Bulk => facepass_queue::PRIORITY_BULK,
        }
    }

    /// From the API's `IndexingPriority`; `unspecified` is the call's own
    /// default (live for one photo, bulk for a bulk registration).
    pub fn from_pb(value: i32, unspecified: Priority) -> Result<Priority> {
        use facepass_proto::v1::IndexingPriority as P;
        match P::try_from(value) {
            Ok(P::Unspecified) => Ok(unspecified),
            Ok(P::Live) => Ok(Priority::Live),
            Ok(P::Bulk) => Ok(Priority::Bulk),
            Err(_) => Err(Error::invalid_field(
                "priority",
                format!("{value} is not an IndexingPriority (LIVE = 1, BULK = 2)"),
            )),
        }
    }

    /// From REST's `priority` (`live` or `bulk`; empty: `unspecified`).
    pub fn from_text(value: &str, unspecified: Priority) -> Result<Priority> {
        match value {
            "" => Ok(unspecified),
            "live" => Ok(Priority::Live),
            "bulk" => Ok(Priority::Bulk),
            other => Err(Error::invalid_field(
                "priority",
                format!("{other:?} is not a priority: live or bulk"),
            )),
        }
    }
}

/// What an upload says about itself besides its bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct NewUpload<'a> {
    pub external_id: &'a str,
    pub file_name: &'a str,
    pub priority: Priority,
}

/// A photo registered by its key in the object store.
#[derive(Debug, Clone, Copy, Default)]
pub struct NewRegistration<'a> {
    pub external_id: &'a str,
    pub object_key: &'a str,
    pub file_name: &'a str,
    pub priority: Priority,
}

/// Most events in one page.
pub const MAX_EVENTS_PAGE: u32 = 500;
/// Most photos in one page.
pub const MAX_PHOTOS_PAGE: u32 = 1000;

/// An object-store failure as callers see it: the detail (the store's paths
/// included) goes to the log, the caller gets a retryable UNAVAILABLE.
pub(crate) fn storage_unavailable(operation: &'static str, e: object_store::Error) -> Error {
    tracing::warn!(operation, error = %e, "object store failed");
    Error::unavailable("photo storage is unavailable, try again")
}

pub struct Gateway {
    pub catalog: Catalog,
    pub store: Arc<dyn ObjectStore>,
    pub peers: Peers,
    pub config: GatewayConfig,
    /// Wakes the outbox relay when a photo is written.
    pub outbox_ready: Arc<Notify>,
    /// Whether the catalog database and the broker answer (`/readyz`).
    pub readiness: facepass_server::health::Readiness,
    /// Shares of `selfie_memory_bytes`, in KiB ([`Gateway::selfie_permit`]).
    pub selfie_memory: Arc<tokio::sync::Semaphore>,
    /// The selfies in flight and the rate they complete at: sheds those
    /// that would wait past `selfie_max_wait_ms`.
    pub selfie_queue: Arc<crate::shed::SelfieQueue>,
    /// Per-client rate limits.
    pub rate: crate::limits::RateLimiters,
}

/// The KiB a body of `bytes` holds, for [`Gateway::selfie_memory`].
fn kib(bytes: usize) -> u32 {
    bytes.div_ceil(1024).min(u32::MAX as usize) as u32
}

/// [`Gateway::selfie_queue`] for a configuration.
pub fn selfie_queue(config: &GatewayConfig) -> Arc<crate::shed::SelfieQueue> {
    crate::shed::SelfieQueue::new(std::time::Duration::from_millis(config.selfie_max_wait_ms))
}

/// [`Gateway::selfie_memory`] for a configuration.
pub fn selfie_memory(config: &GatewayConfig) -> Arc<tokio::sync::Semaphore> {
    Arc::new(tokio::sync::Semaphore::new(
        kib(config.selfie_memory_bytes) as usize
    ))
}

impl Gateway {
    /// Creates an event, or returns the one a retry refers to (same
    /// `external_id`, same name): (event, whether it was created).
    pub async fn create_event(
        &self,
        studio: Uuid,
        name: &str,
        external_id: &str,
        retain_until: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<(EventRow, bool)> {
        let name = name.trim();
        text::required_text("name", name, text::MAX_NAME_CHARS)?;
        let external_id = Self::check_external_id(external_id)?;
        self.catalog
            .create_event(studio, name, external_id, retain_until)
            .await
    }

    pub async fn event_with_counts(
        &self,
        studio: Uuid,
        event_id: Uuid,
    ) -> Result<(EventRow, EventCounts)> {
        let event = self.catalog.get_event(studio, event_id).await?;
        let counts = self.catalog.event_counts(&[event.id]).await?;
        Ok((event, counts.get(&event_id).copied().unwrap_or_default()))
    }

    /// A page of the studio's events, newest first, with their counts.
    pub async fn list_events(
        &self,
        studio: Uuid,
        page: PageRequest<'_>,
    ) -> Result<Page<(EventRow, EventCounts)>> {
        let (limit, after) = page.limit_after(MAX_EVENTS_PAGE)?;
        let events = self.catalog.list_events(studio, limit + 1, after).await?;
        let ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
        let counts = self.catalog.event_counts(&ids).await?;
        let items = events
            .into_iter()
            .map(|e| {
                let c = counts.get(&e.id).copied().unwrap_or_default();
                (e, c)
            })
            .collect();
        Ok(Page::of(items, limit, |(e, _)| {
            encode_cursor(&Cursor {
                created_at: e.created_at,
                id: e.id,
            })
        }))
    }

    /// A page of an event's photos, optionally only those in `status`.
    pub async fn list_photos(
        &self,
        studio: Uuid,
        event_id: Uuid,
        status: Option<&str>,
        page: PageRequest<'_>,
    ) -> Result<Page<PhotoRow>> {
        let (limit, after) = page.limit_after(MAX_PHOTOS_PAGE)?;
        // Scopes the listing to the caller's studio.
        let event = self.catalog.get_event(studio, event_id).await?;
        let photos = self
            .catalog
            .list_photos(event.id, status, limit + 1, after)
            .await?;
        Ok(Page::of(photos, limit, |p| {
            encode_cursor(&Cursor {
                created_at: p.created_at,
                id: p.id,
            })
        }))
    }

    /// Deletes an event completely: faces, every object under its prefix
    /// (photos, previews), rows. Returns (photos deleted, faces deleted).
    /// `actor` goes into the audit entry (`key:<prefix>`, `retention`).
    ///
    /// The event is first marked as being deleted (hidden at once); if this
    /// gateway stops or a dependency fails halfway, the sweeper finishes the
    /// deletion after `orphan_grace_ms` ([`crate::sweeper`]).
    pub async fn delete_event(
        &self,
        studio: Uuid,
        event_id: Uuid,
        actor: &str,
    ) -> Result<(u64, u64)> {
        let event = self
            .catalog
            .begin_event_deletion(studio, event_id, actor)
            .await?;
        self.finish_event_deletion(&event, actor).await
    }

    /// The rest of [`Gateway::delete_event`], safe to repeat: each step is
    /// idempotent, and the audit entry is written by whoever removes the row.
    pub(crate) async fn finish_event_deletion(
        &self,
        event: &EventRow,
        actor: &str,
    ) -> Result<(u64, u64)> {
        let studio = event.studio_id;
        let photos = self.catalog.event_photos(event.id).await?.len() as u64;
        let faces = self
            .peers
            .search
            .clone()
            .delete_event_faces(srch::DeleteEventFacesRequest {
                studio_id: studio.to_string(),
                event_id: event.id.to_string(),
            })
            .await
            .map_err(peer("search"))?
            .into_inner()
            .faces_deleted;
        // Everything FacePass stored for the event lies under its prefix,
        // whatever row it belongs to (or none: a cut upload, a preview
        // written for a photo deleted meanwhile). Registered objects are the
        // studio's and lie elsewhere.
        let objects = self
            .delete_prefix(&format!("studios/{studio}/events/{}/", event.id))
            .await?;
        if !self.catalog.delete_event_row(event.id).await? {
            // Another gateway finished it meanwhile and wrote the receipt.
            return Ok((photos, faces));
        }
        tracing::info!(event_id = %event.id, photos, faces, objects, "event deleted");
        self.catalog
            .audit(Audit {
                studio,
                actor,
                action: if actor == "retention" {
                    "event.purged"
                } else {
                    "event.deleted"
                },
                event_id: Some(event.id),
                photo_id: None,
                counts: &[("photos", photos), ("faces", faces), ("objects", objects)],
            })
            .await?;
        Ok((photos, faces))
    }

    /// Deletes every object under `prefix`; how many.
    pub(crate) async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        use futures::{StreamExt, TryStreamExt};
        let path = ObjectPath::parse(prefix.trim_end_matches('/'))
            .map_err(|e| Error::internal(format!("bad prefix: {e}")))?;
        let keys: Vec<ObjectPath> = self
            .store
            .list(Some(&path))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await
            .map_err(|e| storage_unavailable("list", e))?;
        let n = keys.len() as u64;
        futures::stream::iter(keys)
            .map(|key| async move { self.delete_object(key.as_ref()).await })
            .buffer_unordered(16)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(n)
    }

    pub(crate) async fn delete_object(&self, key: &str) -> Result<()> {
        let path =
            ObjectPath::parse(key).map_err(|e| Error::internal(format!("bad stored key: {e}")))?;
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(storage_unavailable("delete", e)),
        }
    }

    /// Counts characters, not bytes; refuses NUL and other control characters.
    pub(crate) fn check_external_id(external_id: &str) -> Result<Option<String>> {
        text::text("external_id", external_id, text::MAX_EXTERNAL_ID_CHARS)?;
        Ok((!external_id.is_empty()).then(|| external_id.to_string()))
    }

    /// A file name as the caller gave it (shown back, never a path).
    pub(crate) fn check_file_name(file_name: &str) -> Result<Option<String>> {
        text::text("file_name", file_name, text::MAX_KEY_CHARS)?;
        Ok((!file_name.is_empty()).then(|| file_name.to_string()))
    }

    /// Stores uploaded bytes, then the photo row and its event (one chunk
    /// of [`Gateway::upload_stream`]: the same checks and idempotency).
    pub async fn upload_photo(
        &self,
        studio: Uuid,
        event_id: Uuid,
        new: NewUpload<'_>,
        content: Bytes,
    ) -> Result<(PhotoRow, bool)> {
        if content.is_empty() {
            return Err(Error::invalid_field("content", "content is empty"));
        }
        if content.len() > self.config.max_upload_bytes {
            return Err(Error::new(
                ErrorCode::ImageTooLarge,
                format!(
                    "photo is {} bytes, the limit is {}",
                    content.len(),
                    self.config.max_upload_bytes
                ),
            ));
        }
        self.upload_stream(studio, event_id, new, futures::stream::iter([Ok(content)]))
            .await
    }

    /// ALREADY_EXISTS: `existing` holds the external_id with other content.
    pub(crate) fn conflict(existing: &PhotoRow, what: &str) -> Error {
        Error::new(
            ErrorCode::AlreadyExists,
            format!(
                "photo {} already has external_id {:?} with {what}",
                existing.id,
                existing.external_id.as_deref().unwrap_or_default()
            ),
        )
        .with_field("external_id")
        .with_info("existing_id", existing.id.to_string())
    }

    /// The photo that holds `row`'s external_id (after losing the race).
    pub(crate) async fn existing_photo(&self, row: &PhotoRow) -> Result<PhotoRow> {
        let external_id = row.external_id.as_deref().unwrap_or_default();
        self.catalog
            .photo_by_external_id(row.event_id, external_id)
            .await?
            .ok_or_else(|| Error::unavailable("the photo was changed concurrently, try again"))
    }

    /// Registers an object already in the store under the studio's prefix.
    /// The studio owns it: FacePass never deletes it, and it must lie
    /// outside `studios/<id>/events/`, where FacePass keeps what it owns
    /// (so that deleting one photo never takes another's file). A retry
    /// (same external_id, same key) returns the existing photo.
    pub async fn register_photo(
        &self,
        studio: Uuid,
        event_id: Uuid,
        new: NewRegistration<'_>,
    ) -> Result<(PhotoRow, bool)> {
        let external_id = Self::check_external_id(new.external_id)?;
        let file_name = Self::check_file_name(new.file_name)?;
        let object_key = new.object_key;
        // Text first: a NUL or a line break never reaches the store's paths.
        text::required_text("object_key", object_key, text::MAX_KEY_CHARS)?;
        let prefix = format!("studios/{studio}/");
        if !object_key.starts_with(&prefix) {
            return Err(Error::new(
                ErrorCode::PermissionDenied,
                format!("object_key must start with {prefix}"),
            )
            .with_field("object_key"));
        }
        let owned = format!("{prefix}events/");
        if object_key.starts_with(&owned) {
            return Err(Error::invalid_field(
                "object_key",
                format!(
                    "object_key is under {owned}, where FacePass keeps the photos it stores itself; register objects outside it"
                ),
            ));
        }
        let path = ObjectPath::parse(object_key).map_err(|e| {
            Error::invalid_field("object_key", format!("object_key is not a valid key: {e}"))
        })?;
        let event = self.catalog.get_event(studio, event_id).await?;
        let same = |existing: PhotoRow| -> Result<PhotoRow> {
            if !existing.owned_object && existing.object_key == object_key {
                Ok(existing)
            } else {
                Err(Self::conflict(&existing, "another object"))
            }
        };
        if let Some(external_id) = &external_id {
            if let Some(existing) = self
                .catalog
                .photo_by_external_id(event.id, external_id)
                .await?
            {
                return same(existing).map(|p| (p, false));
            }
        }
        let meta = self.store.head(&path).await.map_err(|e| match e {
            object_store::Error::NotFound { .. } => {
                Error::not_found(format!("object {object_key:?} does not exist"))
                    .with_field("object_key")
            }
            other => storage_unavailable("head", other),
        })?;
        if meta.size > self.config.max_upload_bytes as u64 {
            return Err(Error::new(
                ErrorCode::ImageTooLarge,
                format!(
                    "photo is {} bytes, the limit is {}",
                    meta.size, self.config.max_upload_bytes
                ),
            ));
        }
        let row = PhotoRow {
            file_name,
            ..self.new_photo_row(
                Uuid::new_v4(),
                &event,
                external_id,
                object_key.to_string(),
                false,
                meta.size as i64,
            )
        };
        match self.insert_photo(&row, new.priority).await? {
            Some(()) => Ok((row, true)),
            None => same(self.existing_photo(&row).await?).map(|p| (p, false)),
        }
    }

    pub(crate) fn new_photo_row(
        &self,
        id: Uuid,
        event: &EventRow,
        external_id: Option<String>,
        object_key: String,
        owned_object: bool,
        size_bytes: i64,
    ) -> PhotoRow {
        PhotoRow {
            id,
            event_id: event.id,
            studio_id: event.studio_id,
            external_id,
            object_key,
            owned_object,
            size_bytes,
            status: STATUS_PENDING.into(),
            face_count: 0,
            failure_code: None,
            failure_reason: None,
            created_at: crate::catalog::now(),
            indexed_at: None,
            file_name: None,
            content_type: None,
            content_sha256: None,
            width: None,
            height: None,
            captured_at: None,
            updated_at: crate::catalog::now(),
            last_error_code: None,
            last_error_reason: None,
            attempts: 0,
            next_attempt_at: None,
            retry_until: None,
            redrives: 0,
        }
    }

    /// Writes the row and its `photo.uploaded` event; `None` when the
    /// event already has a photo with the row's external_id.
    pub(crate) async fn insert_photo(
        &self,
        row: &PhotoRow,
        priority: Priority,
    ) -> Result<Option<()>> {
        let inserted = self
            .catalog
            .insert_photo(
                row,
                PhotoUploaded::ROUTING_KEY,
                &PhotoUploaded::type_name(),
                &photo_uploaded(row),
                row.owned_object.then_some(row.object_key.as_str()),
                priority.amqp(),
            )
            .await?;
        if !inserted {
            return Ok(None);
        }
        self.outbox_ready.notify_one();
        tracing::info!(photo_id = %row.id, event_id = %row.event_id, bytes = row.size_bytes, ?priority, "photo accepted");
        Ok(Some(()))
    }

    /// Deletes a photo: its faces, its object (when FacePass owns it), its row.
    /// Queues failed photos for indexing again (through the outbox, like an
    /// upload); returns the photos queued.
    pub async fn redrive(&self, filter: &Redrive) -> Result<Vec<PhotoRow>> {
        if let Some(code) = &filter.failure_code {
            if ErrorCode::parse(code).is_none() {
                return Err(Error::invalid_field(
                    "failure_code",
                    format!("{code:?} is not an error code (docs/errors.md)"),
                ));
            }
        }
        let queued = self
            .catalog
            .redrive(
                filter,
                500,
                PhotoUploaded::ROUTING_KEY,
                &PhotoUploaded::type_name(),
                photo_uploaded,
            )
            .await?;
        if !queued.is_empty() {
            self.outbox_ready.notify_one();
            tracing::info!(photos = queued.len(), ?filter, "failed photos queued again");
        }
        Ok(queued)
    }

    /// One photo of the studio indexed again: a failed photo is queued, a
    /// pending or retrying one is returned as it is, an indexed one is
    /// INVALID_ARGUMENT. Returns the photo and whether this call queued it.
    pub async fn retry_photo(&self, studio: Uuid, photo_id: Uuid) -> Result<(PhotoRow, bool)> {
        let photo = self.catalog.get_photo(studio, photo_id).await?;
        match photo.status.as_str() {
            STATUS_INDEXED => Err(Error::invalid_field(
                "photo_id",
                "the photo is indexed; only a failed photo can be retried",
            )),
            crate::catalog::STATUS_FAILED => {
                let queued = self
                    .redrive(&Redrive {
                        studio_id: Some(studio),
                        photo_id: Some(photo_id),
                        ..Redrive::default()
                    })
                    .await?;
                match queued.into_iter().next() {
                    Some(row) => Ok((row, true)),
                    // Queued by a concurrent call meanwhile: as it is now.
                    None => Ok((self.catalog.get_photo(studio, photo_id).await?, false)),
                }
            }
            _ => Ok((photo, false)),
        }
    }

    /// Every failed photo of the studio's event (or those with one failure
    /// code) queued again; how many.
    pub async fn retry_failed(
        &self,
        studio: Uuid,
        event_id: Uuid,
        failure_code: Option<String>,
    ) -> Result<u64> {
        // NOT_FOUND for an event of another studio.
        self.catalog.get_event(studio, event_id).await?;
        let queued = self
            .redrive(&Redrive {
                studio_id: Some(studio),
                event_id: Some(event_id),
                failure_code,
                ..Redrive::default()
            })
            .await?;
        Ok(queued.len() as u64)
    }

    pub async fn delete_photo(&self, studio: Uuid, photo_id: Uuid, actor: &str) -> Result<u64> {
        let photo = self.catalog.get_photo(studio, photo_id).await?;
        let faces = self
            .peers
            .search
            .clone()
            .delete_photo_faces(srch::DeletePhotoFacesRequest {
                studio_id: studio.to_string(),
                photo_id: photo.id.to_string(),
                event_id: photo.event_id.to_string(),
            })
            .await
            .map_err(peer("search"))?
            .into_inner()
            .faces_deleted;
        self.delete_previews(&photo).await?;
        if photo.owned_object {
            self.delete_object(&photo.object_key).await?;
        }
        self.catalog.delete_photo_row(photo.id).await?;
        self.catalog
            .audit(Audit {
                studio,
                actor,
                action: "photo.deleted",
                event_id: Some(photo.event_id),
                photo_id: Some(photo.id),
                counts: &[
                    ("photos", 1),
                    ("faces", faces),
                    ("objects", photo.owned_object as u64),
                ],
            })
            .await?;
        Ok(faces)
    }

    /// The selfie's main face with its embedding, or a clear error. The
    /// bytes live only in this call's memory.
    /// A place in the selfie queue, taken once the selfie is read (its
    /// upload time is the guest's network, not the detector's queue):
    /// OVERLOADED at once when it would wait past `selfie_max_wait_ms`,
    /// with `retry_after_ms` the expected wait.
    fn selfie_ticket(&self) -> Result<crate::shed::Ticket> {
        self.selfie_queue.admit().map_err(|wait| {
            let ms = wait.as_millis().min(u64::MAX as u128) as u64;
            tracing::info!(
                expected_wait_ms = ms,
                in_flight = self.selfie_queue.in_flight(),
                "selfie shed: the expected wait is over selfie_max_wait_ms"
            );
            Error::new(
                ErrorCode::Overloaded,
                format!(
                    "many guests are searching right now: this search would wait about {} s; retry then",
                    ms.div_ceil(1000)
                ),
            )
            .with_info("retry_after_ms", ms.to_string())
        })
    }

    /// A share of the selfie memory for a body of `bytes`, held while the
    /// selfie lives; OVERLOADED when none frees up within
    /// `overload_wait_ms`.
    pub async fn selfie_permit(&self, bytes: usize) -> Result<tokio::sync::OwnedSemaphorePermit> {
        let wait = std::time::Duration::from_millis(self.config.overload_wait_ms);
        let share = kib(bytes.min(self.config.selfie_memory_bytes));
        match tokio::time::timeout(wait, self.selfie_memory.clone().acquire_many_owned(share)).await
        {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(Error::new(
                ErrorCode::Overloaded,
                "too many selfies are being searched right now; retry in a moment",
            )),
        }
    }

    pub(crate) async fn selfie_face(&self, selfie: Bytes) -> Result<AnalyzedFace> {
        if selfie.len() > self.config.max_selfie_bytes {
            return Err(Error::new(
                ErrorCode::ImageTooLarge,
                format!(
                    "selfie is {} bytes, the limit is {}",
                    selfie.len(),
                    self.config.max_selfie_bytes
                ),
            ));
        }
        let ticket = self.selfie_ticket()?;
        let analysed = self.peers.faces.analyze_selfie(selfie).await;
        // A selfie analysed, with a face or a verdict on it, is a completion;
        // a dependency that failed is not.
        let ran = match &analysed {
            Ok(_) => true,
            Err(e) => e.code.http_status().is_client_error() && e.code != ErrorCode::Overloaded,
        };
        if ran {
            ticket.done();
        }
        analysed
    }

    /// "Forget me": deletes every face of `event` that matches the selfie's
    /// person (at the match threshold) and returns the photos they were in.
    /// Returns (faces deleted, photos they were in).
    pub async fn forget_guest(
        &self,
        event: &EventRow,
        selfie: Bytes,
        actor: &str,
    ) -> Result<(u64, Vec<Uuid>)> {
        let face = self.selfie_face(selfie).await?;
        let forgotten = self
            .peers
            .search
            .clone()
            .forget_faces(srch::ForgetFacesRequest {
                studio_id: event.studio_id.to_string(),
                event_id: event.id.to_string(),
                model: face.embedding.model.to_string(),
                embedding: Some((&face.embedding).into()),
                // The model pack's match threshold.
                min_similarity: 0.0,
                // Photos indexed later are covered too.
                suppress: true,
            })
            .await;
        let forgotten = match forgotten {
            Ok(r) => r.into_inner().faces,
            // The store has no faces of the event: nothing to forget.
            Err(status) if status.code() == tonic::Code::NotFound => Vec::new(),
            Err(status) => return Err(peer("search")(status)),
        };
        let mut photos: Vec<Uuid> = forgotten
            .iter()
            .filter_map(|f| Uuid::parse_str(&f.photo_id).ok())
            .collect();
        photos.sort();
        photos.dedup();
        for photo in &photos {
            let n = forgotten
                .iter()
                .filter(|f| f.photo_id == photo.to_string())
                .count();
            self.catalog.subtract_faces(*photo, n as i32).await?;
        }
        tracing::info!(event_id = %event.id, faces = forgotten.len(), photos = photos.len(), "guest forgotten");
        self.catalog
            .audit(Audit {
                studio: event.studio_id,
                actor,
                action: "guest.forgotten",
                event_id: Some(event.id),
                photo_id: None,
                counts: &[
                    ("faces", forgotten.len() as u64),
                    ("photos", photos.len() as u64),
                ],
            })
            .await?;
        Ok((forgotten.len() as u64, photos))
    }

    /// The bytes of a photo of `event` (guest link).
    pub async fn photo_bytes(
        &self,
        event: &EventRow,
        photo_id: Uuid,
        size: Option<preview::Size>,
    ) -> Result<Bytes> {
        let photo = self.catalog.get_photo(event.studio_id, photo_id).await?;
        // Guests see indexed photos only: never a file that failed (it may
        // not be an image at all) nor one not yet checked.
        if photo.event_id != event.id || photo.status != STATUS_INDEXED {
            return Err(Error::not_found(format!("photo {photo_id} not found")));
        }
        self.photo_image(&photo, size).await
    }

    /// A photo's preview of `size`, or its original (`None`). A photo
    /// indexed before previews existed has none: its original stands in.
    pub async fn photo_image(
        &self,
        photo: &PhotoRow,
        size: Option<preview::Size>,
    ) -> Result<Bytes> {
        if let Some(size) = size {
            let key = preview::key(&photo.studio_id, &photo.event_id, &photo.id, size);
            match self.read_object(&key).await {
                Err(e) if e.code == ErrorCode::NotFound => {
                    tracing::debug!(photo_id = %photo.id, size = size.as_str(), "no preview; serving the original");
                }
                other => return other,
            }
        }
        self.read_object(&photo.object_key).await
    }

    async fn read_object(&self, key: &str) -> Result<Bytes> {
        let path =
            ObjectPath::parse(key).map_err(|e| Error::internal(format!("stored key: {e}")))?;
        self.store
            .get(&path)
            .await
            .map_err(|e| match e {
                object_store::Error::NotFound { .. } => Error::not_found("photo file is gone"),
                other => storage_unavailable("get", other),
            })?
            .bytes()
            .await
            .map_err(|e| storage_unavailable("read", e))
    }

    /// "Download all": the originals of `ids` (indexed photos of the event,
    /// in the order given) as a stream of a ZIP archive's bytes. Everything
    /// is checked before the first byte; then each original is read from the
    /// store chunk by chunk and passed on, so memory stays at a chunk no
    /// matter how many photos. A store failure midway ends the stream with
    /// an error (the client sees a cut download) and is logged.
    pub async fn zip_originals(
        self: &std::sync::Arc<Self>,
        event: &EventRow,
        ids: &[Uuid],
    ) -> Result<impl futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static> {
        let found = self.catalog.photos_in_event(event.id, ids).await?;
        let mut photos = Vec::with_capacity(ids.len());
        for id in ids {
            match found.get(id) {
                Some(p) if p.status == STATUS_INDEXED => photos.push(p.clone()),
                _ => {
                    return Err(
                        Error::not_found(format!("photo {id} not found")).with_field("photo_ids")
                    )
                }
            }
        }
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
        let store = self.store.clone();
        tokio::spawn(async move {
            use futures::StreamExt;
            let mut zip = crate::zip::ZipWriter::new();
            let mut names = std::collections::HashSet::new();
            for photo in photos {
                let ext = match photo.content_type.as_deref() {
                    Some("image/png") => "png",
                    Some("image/webp") => "webp",
                    Some("image/heic") | Some("image/heif") => "heic",
                    Some("image/avif") => "avif",
                    _ => "jpg",
                };
                let name = crate::zip::entry_name(
                    photo.file_name.as_deref(),
                    &format!("{}.{ext}", photo.id),
                    &mut names,
                );
                let opened = match ObjectPath::parse(&photo.object_key) {
                    Ok(path) => store.get(&path).await.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                let mut chunks = match opened {
                    Ok(got) => got.into_stream(),
                    Err(e) => {
                        tracing::warn!(photo_id = %photo.id, error = %e, "zip: original unreadable; stopping");
                        let _ = tx
                            .send(Err(std::io::Error::other("photo storage failed")))
                            .await;
                        return;
                    }
                };
                let at = photo.captured_at.unwrap_or(photo.created_at);
                if tx.send(Ok(zip.start(&name, at))).await.is_err() {
                    return; // the client went away
                }
                while let Some(chunk) = chunks.next().await {
                    match chunk {
                        Ok(chunk) => {
                            zip.data(&chunk);
                            if tx.send(Ok(chunk)).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(photo_id = %photo.id, error = %e, "zip: reading an original failed; stopping");
                            let _ = tx
                                .send(Err(std::io::Error::other("photo storage failed")))
                                .await;
                            return;
                        }
                    }
                }
                if tx.send(Ok(zip.finish())).await.is_err() {
                    return;
                }
            }
            let _ = tx.send(Ok(zip.end())).await;
        });
        Ok(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        }))
    }

    /// Deletes a photo's previews (FacePass's own, whoever owns the
    /// original); a photo without them is fine.
    pub(crate) async fn delete_previews(&self, photo: &PhotoRow) -> Result<()> {
        self.delete_previews_of(photo.studio_id, photo.event_id, photo.id)
            .await
    }

    /// Deletes the previews of a photo, whether or not its row still exists.
    pub(crate) async fn delete_previews_of(
        &self,
        studio: Uuid,
        event: Uuid,
        photo: Uuid,
    ) -> Result<()> {
        for size in preview::Size::ALL {
            self.delete_object(&preview::key(&studio, &event, &photo, size))
                .await?;
        }
        Ok(())
    }
}

/// The `photo.uploaded` message of a photo row: first attempt (an upload,
/// or a failed photo queued again).
pub(crate) fn photo_uploaded(row: &PhotoRow) -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    PhotoUploaded {
        photo_id: row.id.to_string(),
        event_id: row.event_id.to_string(),
        studio_id: row.studio_id.to_string(),
        object_key: row.object_key.clone(),
        uploaded_at: Some(prost_types::Timestamp {
            seconds: now.as_secs() as i64,
            nanos: now.subsec_nanos() as i32,
        }),
        attempt: 1,
        // Stamped by the indexer at the first attempt.
        first_attempt_at: None,
    }
    .encode_to_vec()
}
