//! The REST API's JSON: what each route takes and answers, as Rust types.
//! The same types serialise the answers and describe them in the OpenAPI
//! document (`openapi.rs`), so the document cannot drift from the wire.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use facepass_core::Error;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::catalog::{EventCounts, EventRow, PhotoRow};
use crate::faces::{IndexedFace, Search as SearchRun, Tier};

/// Every error: `{"error": {...}}` with the HTTP status of its code.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorObject,
}

/// What went wrong, in a form a program can act on (docs/errors.md).
#[derive(Serialize, ToSchema)]
pub struct ErrorObject {
    /// The stable code; the HTTP status follows from it.
    #[schema(value_type = ErrorCodeName)]
    pub code: String,
    /// For people; may change between versions.
    pub message: String,
    /// The request field at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Machine-readable context, e.g. `existing_id` of ALREADY_EXISTS.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, String>,
}

impl From<Error> for ErrorObject {
    fn from(err: Error) -> Self {
        let Error {
            code,
            message,
            field,
            info,
        } = err;
        ErrorObject {
            code: code.as_str().to_string(),
            message,
            field,
            details: info,
        }
    }
}

/// The error codes, read from `ErrorCode::ALL`.
pub struct ErrorCodeName;

impl utoipa::PartialSchema for ErrorCodeName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(
                facepass_core::ErrorCode::ALL
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>(),
            ))
            .description(Some("A stable error code (docs/errors.md)."))
            .into()
    }
}

impl ToSchema for ErrorCodeName {}

/// An image as the raw request body: JPEG, PNG, WebP, HEIC or AVIF.
pub struct ImageBytes;

impl utoipa::PartialSchema for ImageBytes {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::schema::SchemaFormat::KnownFormat(
                utoipa::openapi::schema::KnownFormat::Binary,
            )))
            .description(Some("The image's bytes"))
            .into()
    }
}

impl ToSchema for ImageBytes {}

/// A photo's indexing state.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PhotoStatus {
    Pending,
    /// An attempt failed for a reason that may pass; retried at
    /// `next_attempt_at` until `retry_until`.
    Retrying,
    Indexed,
    Failed,
}

/// Photos of an event by state.
#[derive(Serialize, ToSchema)]
pub struct PhotoCounts {
    pub total: u64,
    /// Waiting for indexing, `retrying` ones included.
    pub pending: u64,
    pub indexed: u64,
    pub failed: u64,
    /// Being retried after a failed attempt (also counted in `pending`).
    pub retrying: u64,
}

impl From<&EventCounts> for PhotoCounts {
    fn from(c: &EventCounts) -> Self {
        PhotoCounts {
            total: c.total,
            pending: c.pending,
            indexed: c.indexed,
            failed: c.failed,
            retrying: c.retrying,
        }
    }
}

/// An event of the studio.
#[derive(Serialize, ToSchema)]
pub struct Event {
    pub id: Uuid,
    pub name: String,
    /// The caller's own id (CreateEvent is idempotent on it).
    pub external_id: Option<String>,
    /// The guest link's token; `guest_url` is the page.
    pub share_token: String,
    pub guest_url: String,
    pub created_at: DateTime<Utc>,
    pub share_enabled: bool,
    pub share_expires_at: Option<DateTime<Utc>>,
    /// The event and everything in it is purged after this.
    pub retain_until: Option<DateTime<Utc>>,
    pub photos: PhotoCounts,
    /// Faces indexed in the event.
    pub faces: u64,
    /// The day it took place, `YYYY-MM-DD`, if the studio gave one.
    pub event_date: Option<chrono::NaiveDate>,
}

impl Event {
    pub fn new(event: &EventRow, counts: &EventCounts) -> Self {
        Event {
            id: event.id,
            name: event.name.clone(),
            external_id: event.external_id.clone(),
            share_token: event.share_token.to_string(),
            guest_url: format!("/e/{}", event.share_token),
            created_at: event.created_at,
            share_enabled: event.share_disabled_at.is_none(),
            share_expires_at: event.share_expires_at,
            retain_until: event.retain_until,
            photos: counts.into(),
            faces: counts.faces,
            event_date: event.event_date,
        }
    }
}

/// A photo of an event.
#[derive(Serialize, ToSchema)]
pub struct Photo {
    pub id: Uuid,
    pub event_id: Uuid,
    pub external_id: Option<String>,
    #[schema(value_type = PhotoStatus)]
    pub status: String,
    pub face_count: i32,
    /// Why indexing failed: a stable code and a message.
    pub failure_code: Option<String>,
    pub failure_reason: Option<String>,
    pub size_bytes: i64,
    pub created_at: DateTime<Utc>,
    pub indexed_at: Option<DateTime<Utc>>,
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    /// Pixels, EXIF orientation applied; known once decoded.
    pub width: Option<i32>,
    pub height: Option<i32>,
    /// From EXIF, when the camera recorded it.
    pub captured_at: Option<DateTime<Utc>>,
    /// The error of the last failed attempt (while `retrying`, and the
    /// final one when `failed`).
    pub last_error_code: Option<String>,
    pub last_error_reason: Option<String>,
    /// Attempts that failed so far in the current indexing run.
    pub attempts: i32,
    /// While `retrying`: the next attempt, and when retrying stops.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub retry_until: Option<DateTime<Utc>>,
}

impl From<&PhotoRow> for Photo {
    fn from(p: &PhotoRow) -> Self {
        Photo {
            id: p.id,
            event_id: p.event_id,
            external_id: p.external_id.clone(),
            status: p.status.clone(),
            face_count: p.face_count,
            failure_code: p.failure_code.clone(),
            failure_reason: p.failure_reason.clone(),
            size_bytes: p.size_bytes,
            created_at: p.created_at,
            indexed_at: p.indexed_at,
            file_name: p.file_name.clone(),
            content_type: p.content_type.clone(),
            width: p.width,
            height: p.height,
            captured_at: p.captured_at,
            last_error_code: p.last_error_code.clone(),
            last_error_reason: p.last_error_reason.clone(),
            attempts: p.attempts,
            next_attempt_at: p.next_attempt_at,
            retry_until: p.retry_until,
        }
    }
}

/// Which failed photos of the event to index again.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RetryFailedBody {
    /// Only photos that failed with this code (e.g. `UNAVAILABLE`); every
    /// failed photo when absent.
    pub failure_code: Option<String>,
}

/// How many failed photos were queued for indexing again.
#[derive(Serialize, ToSchema)]
pub struct Requeued {
    pub photos_requeued: u64,
}

/// A page of events, newest first.
#[derive(Serialize, ToSchema)]
pub struct EventPage {
    pub events: Vec<Event>,
    /// Pass as `page_token` for the next page; empty on the last.
    pub next_page_token: String,
}

/// A page of photos, oldest first.
#[derive(Serialize, ToSchema)]
pub struct PhotoPage {
    pub photos: Vec<Photo>,
    pub next_page_token: String,
}

/// `POST /api/v1/events`.
#[derive(Deserialize, ToSchema)]
pub struct NewEvent {
    #[schema(min_length = 1, max_length = 200, example = "Выпускной 11 «А»")]
    pub name: String,
    /// Your id for the event: a repeated request with it returns the same event.
    #[serde(default)]
    pub external_id: String,
    /// Purge the event after this moment.
    #[serde(default)]
    pub retain_until: Option<DateTime<Utc>>,
}

/// `?page_size=&page_token=` of the events.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventPageQuery {
    /// 1 to 500; 0 or absent: 50.
    #[serde(default)]
    #[param(maximum = 500)]
    pub page_size: u32,
    /// From the previous page's `next_page_token`.
    #[serde(default)]
    #[param(pattern = r"^[!-~]{0,256}$")]
    pub page_token: String,
}

/// `?page_size=&page_token=&status=` of an event's photos.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PhotoPageQuery {
    /// 1 to 1000; 0 or absent: 50.
    #[serde(default)]
    #[param(maximum = 1000)]
    pub page_size: u32,
    /// From the previous page's `next_page_token`.
    #[serde(default)]
    #[param(pattern = r"^[!-~]{0,256}$")]
    pub page_token: String,
    /// Only the photos in this state.
    #[serde(default)]
    #[param(value_type = Option<PhotoStatus>)]
    pub status: String,
}

/// `?page_size=&page_token=` of the audit log.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// 1 to 500; 0 or absent: 100.
    #[serde(default)]
    #[param(maximum = 500)]
    pub page_size: u32,
    #[serde(default)]
    #[param(pattern = r"^[!-~]{0,256}$")]
    pub page_token: String,
}

/// `?external_id=&file_name=` of an upload.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// Your id for the photo: a repeated upload with it returns the same photo.
    #[serde(default)]
    pub external_id: String,
    #[serde(default)]
    pub file_name: String,
    /// `live` (the default): indexed before the waiting photos of bulk
    /// imports; `bulk`: for an archive sent photo by photo.
    #[serde(default)]
    #[param(pattern = "^(live|bulk)?$")]
    pub priority: String,
}

/// Which image of a photo: a preview made while indexing, or the original.
#[derive(ToSchema)]
#[allow(dead_code)] // describes `?size=`; ImageQuery::size parses it
#[schema(rename_all = "snake_case")]
pub enum ImageSize {
    /// About 400 px on the long side, JPEG.
    Thumb,
    /// About 1600 px, JPEG.
    Screen,
    /// The file as uploaded.
    Original,
}

/// `?size=thumb|screen|original` (default: original).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ImageQuery {
    #[serde(default)]
    #[param(value_type = Option<ImageSize>)]
    pub size: String,
}

impl ImageQuery {
    /// The preview asked for; `None` for the original.
    pub fn size(&self) -> Result<Option<facepass_core::preview::Size>, Error> {
        match self.size.as_str() {
            "" | "original" => Ok(None),
            other => facepass_core::preview::Size::parse(other)
                .map(Some)
                .ok_or_else(|| {
                    Error::invalid_field(
                        "size",
                        format!("size is thumb, screen or original, not {other:?}"),
                    )
                }),
        }
    }
}

/// `POST /api/v1/guest/{token}/download`: the photos to put in the ZIP.
#[derive(Deserialize, ToSchema)]
pub struct DownloadBody {
    /// 1 to 1000 indexed photos of the event (a search's `photo_id`s).
    #[schema(min_items = 1, max_items = 1000)]
    pub photo_ids: Vec<String>,
}

/// At most this many photos in one ZIP.
pub const MAX_DOWNLOAD: usize = 1000;

/// Counts of what a deletion removed.
#[derive(Serialize, ToSchema)]
pub struct Deleted {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub photos_deleted: Option<u64>,
    pub faces_deleted: u64,
}

/// The receipt of a "forget me".
#[derive(Serialize, ToSchema)]
pub struct Forgotten {
    pub faces_deleted: u64,
    /// The photos the guest's faces were removed from.
    pub photo_ids: Vec<Uuid>,
}

/// What a guest sees of an event, and of the studio behind it.
#[derive(Serialize, ToSchema)]
pub struct GuestEvent {
    pub name: String,
    pub event_date: Option<chrono::NaiveDate>,
    pub photos: u64,
    pub indexed: u64,
    /// Photos still being indexed (failed ones are not counted).
    pub pending: u64,
    /// The privacy policy version the guest agrees to (`?consent=`).
    pub policy_version: String,
    /// The studio that processes the guest's face.
    pub studio_name: String,
    /// `#rrggbb`, for the page's buttons and links.
    pub accent_color: Option<String>,
    /// The studio's privacy text.
    pub privacy_url: Option<String>,
    /// `logo_url` serves the studio's logo.
    pub logo_url: Option<String>,
}

/// A studio's branding, as the dashboard edits it.
#[derive(Serialize, ToSchema)]
pub struct Branding {
    pub studio_id: Uuid,
    pub name: String,
    pub accent_color: Option<String>,
    pub privacy_url: Option<String>,
    pub has_logo: bool,
}

impl From<crate::branding::BrandingRow> for Branding {
    fn from(b: crate::branding::BrandingRow) -> Self {
        Branding {
            studio_id: b.id,
            name: b.name,
            accent_color: b.accent_color,
            privacy_url: b.privacy_url,
            has_logo: b.logo_key.is_some(),
        }
    }
}

/// `PUT /api/v1/studio`: fields left out stay; `""` clears a colour or URL.
#[derive(Deserialize, ToSchema)]
pub struct BrandingBody {
    #[schema(max_length = 200)]
    pub name: Option<String>,
    /// `#rrggbb`.
    #[schema(pattern = r"^(#[0-9a-fA-F]{6})?$")]
    pub accent_color: Option<String>,
    /// http(s)://
    pub privacy_url: Option<String>,
}

/// `PATCH /api/v1/events/{id}`: fields left out stay; `event_date: null` clears it.
#[derive(ToSchema)]
#[allow(dead_code)] // describes the body; rest::studio::edit_event reads it
pub struct EventEdit {
    #[schema(max_length = 200)]
    pub name: Option<String>,
    /// `YYYY-MM-DD`, or null.
    pub event_date: Option<chrono::NaiveDate>,
}

/// `POST .../photos/register`: photos already in the object store.
#[derive(Deserialize, ToSchema)]
pub struct RegisterBody {
    /// 1 to 1,000 photos.
    pub items: Vec<RegisterItem>,
    /// `bulk` (the default): indexed after waiting live uploads; `live`
    /// for photos just taken.
    #[serde(default)]
    #[schema(pattern = "^(live|bulk)?$")]
    pub priority: String,
}

#[derive(Deserialize, ToSchema)]
pub struct RegisterItem {
    /// The photo's key in the object store (outside `studios/`).
    pub object_key: String,
    #[serde(default)]
    pub external_id: String,
    #[serde(default)]
    pub file_name: String,
}

/// One result per item, in order.
#[derive(Serialize, ToSchema)]
pub struct RegisterResults {
    pub results: Vec<RegisterResult>,
}

/// A registered photo (`created` false for a repeat), or why not.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum RegisterResult {
    Registered { photo: Box<Photo>, created: bool },
    Refused { error: ErrorObject },
}

/// `progress` of the watch stream (Server-Sent Events).
#[derive(Serialize, ToSchema)]
pub struct Progress {
    pub photos: PhotoCounts,
    pub faces: u64,
    /// No photo is pending.
    pub completed: bool,
}

/// Which tiers a search returns: matches and possible matches, or matches only.
#[derive(ToSchema)]
#[allow(dead_code)] // describes `?tiers=`; faces::SearchQuery::tiers parses it
#[schema(rename_all = "snake_case")]
pub enum TiersName {
    All,
    MatchOnly,
}

/// How strongly a photo matches.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TierName {
    Match,
    Possible,
}

impl From<Tier> for TierName {
    fn from(t: Tier) -> Self {
        match t {
            Tier::Match => TierName::Match,
            Tier::Possible => TierName::Possible,
        }
    }
}

/// One person's face in a matched photo.
#[derive(Serialize, ToSchema)]
pub struct MatchFace {
    /// `<photo id>.<index>`.
    pub face_id: String,
    /// `[x1, y1, x2, y2]` in the photo's pixels.
    #[schema(min_items = 4, max_items = 4)]
    pub face_box: Vec<f32>,
    pub similarity: f32,
}

/// A photo found by a search.
#[derive(Serialize, ToSchema)]
pub struct Match {
    pub photo_id: Uuid,
    pub similarity: f32,
    #[schema(min_items = 4, max_items = 4)]
    pub face_box: Vec<f32>,
    pub tier: TierName,
    /// One per person looked for, in the order asked.
    pub faces: Vec<MatchFace>,
    /// Guests: where to download the original.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Guests: the ~400 px preview for a grid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thumb_url: Option<String>,
    /// Guests: the ~1600 px preview for a viewer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub screen_url: Option<String>,
    /// The original's size in pixels (boxes are in these): a preview's
    /// pixels are a scaled copy.
    pub width: Option<i32>,
    pub height: Option<i32>,
    /// Studios: the photo's record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub photo: Option<Photo>,
}

/// The photos a search found, best first.
#[derive(Serialize, ToSchema)]
pub struct SearchResult {
    /// The first selfie's face, `[x1, y1, x2, y2]`.
    #[schema(min_items = 4, max_items = 4)]
    pub selfie_face: Option<Vec<f32>>,
    pub matches: Vec<Match>,
}

impl SearchResult {
    /// A guest (`guest_token`) gets each photo's download URL and nothing
    /// of the studio's records; the studio gets the photo records.
    pub fn new(result: &SearchRun, guest_token: Option<&str>) -> Self {
        SearchResult {
            selfie_face: result.selfie_face.map(|b| b.to_array().to_vec()),
            matches: result
                .matches
                .iter()
                .map(|m| Match {
                    photo_id: m.photo.id,
                    similarity: m.similarity,
                    face_box: m.face_box.to_array().to_vec(),
                    tier: m.tier.into(),
                    faces: m
                        .faces
                        .iter()
                        .map(|f| MatchFace {
                            face_id: f.id.to_string(),
                            face_box: f.face_box.to_array().to_vec(),
                            similarity: f.similarity,
                        })
                        .collect(),
                    url: guest_token
                        .map(|token| format!("/api/v1/guest/{token}/photos/{}", m.photo.id)),
                    thumb_url: guest_token.map(|token| {
                        format!("/api/v1/guest/{token}/photos/{}?size=thumb", m.photo.id)
                    }),
                    screen_url: guest_token.map(|token| {
                        format!("/api/v1/guest/{token}/photos/{}?size=screen", m.photo.id)
                    }),
                    width: m.photo.width,
                    height: m.photo.height,
                    photo: guest_token.is_none().then(|| Photo::from(&m.photo)),
                })
                .collect(),
        }
    }
}

/// The multipart body of a studio's selfie search (`together.1` and
/// `together.2` take the same parts as `together.0`).
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)] // describes the form; rest::faces::read_people parses it
pub struct SearchForm {
    /// 1 to 5 selfies of the person looked for.
    #[schema(value_type = Vec<String>, format = Binary, min_items = 1, max_items = 5)]
    pub selfie: Vec<Vec<u8>>,
    /// "Together": selfies of a first companion.
    #[serde(rename = "together.0")]
    #[schema(value_type = Option<Vec<String>>, format = Binary)]
    pub together_0: Option<Vec<Vec<u8>>>,
    /// "Together": an indexed face of a first companion, `<photo id>.<index>`.
    #[serde(rename = "together.0.face_id")]
    #[schema(
        pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\.[0-9]{1,4}$"
    )]
    pub together_0_face_id: Option<String>,
}

/// The multipart body of a guest's "me and a friend" search.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)] // describes the form; rest::faces::read_people parses it
pub struct GuestTogether {
    /// The guest's selfie.
    #[schema(value_type = String, format = Binary)]
    pub selfie: Vec<u8>,
    /// The friend's selfie.
    #[serde(rename = "together.0")]
    #[schema(value_type = String, format = Binary)]
    pub together_0: Vec<u8>,
}

/// An indexed face of a photo.
#[derive(Serialize, ToSchema)]
pub struct PhotoFace {
    /// `<photo id>.<index>`.
    pub id: String,
    pub photo_id: Uuid,
    /// `[x1, y1, x2, y2]` in the photo's pixels.
    #[serde(rename = "box")]
    #[schema(min_items = 4, max_items = 4)]
    pub face_box: Vec<f32>,
    /// Eyes, nose, mouth corners: five `[x, y]`.
    pub landmarks: Vec<Vec<f32>>,
    /// The detector's confidence.
    pub score: f32,
    pub quality: f32,
}

impl From<&IndexedFace> for PhotoFace {
    fn from(f: &IndexedFace) -> Self {
        PhotoFace {
            id: f.id.to_string(),
            photo_id: f.id.photo_id,
            face_box: f.face.face_box.to_array().to_vec(),
            landmarks: f.face.landmarks.0.iter().map(|p| vec![p.x, p.y]).collect(),
            score: f.face.score,
            quality: f.quality,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PhotoFaces {
    pub faces: Vec<PhotoFace>,
}

/// `PUT .../share-link`.
#[derive(Deserialize, ToSchema)]
pub struct ShareLink {
    pub enabled: bool,
    /// The link stops working after this; null: never.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// `PUT .../retention`.
#[derive(Deserialize, ToSchema)]
pub struct Retention {
    /// Purge the event after this; null: keep it.
    #[serde(default)]
    pub retain_until: Option<DateTime<Utc>>,
}

/// An entry of the studio's audit log.
#[derive(Serialize, ToSchema)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    /// `key:<prefix>`, `guest`, `operator` or `retention`.
    pub actor: String,
    pub action: String,
    pub event_id: Option<Uuid>,
    pub photo_id: Option<Uuid>,
    /// What the action touched, e.g. `{"faces": 3}`.
    #[schema(value_type = Object)]
    pub counts: serde_json::Value,
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    pub next_page_token: String,
}

/// `POST /api/v1/webhooks`.
#[derive(Deserialize, ToSchema)]
pub struct NewWebhook {
    /// HTTPS.
    pub url: String,
    /// `photo.indexed`, `photo.failed`, `event.indexing_completed`; empty: all.
    #[serde(default)]
    pub events: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Webhook {
    pub id: Uuid,
    pub url: String,
    pub events: Vec<String>,
    pub created_at: DateTime<Utc>,
}

impl From<&crate::webhooks::WebhookRow> for Webhook {
    fn from(h: &crate::webhooks::WebhookRow) -> Self {
        Webhook {
            id: h.id,
            url: h.url.clone(),
            events: h.events.clone(),
            created_at: h.created_at,
        }
    }
}

/// A new webhook and its signing secret, shown this once.
#[derive(Serialize, ToSchema)]
pub struct CreatedWebhook {
    pub webhook: Webhook,
    pub secret: String,
}

#[derive(Serialize, ToSchema)]
pub struct Webhooks {
    pub webhooks: Vec<Webhook>,
}

/// A delivery's state.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Pending,
    Delivered,
    Failed,
}

/// One fact sent (or being sent) to a webhook.
#[derive(Serialize, ToSchema)]
pub struct Delivery {
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub event_type: String,
    /// The JSON body as signed and sent.
    pub body: String,
    #[schema(value_type = DeliveryState)]
    pub state: String,
    pub attempts: i32,
    /// The receiver's last HTTP status.
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    /// While pending.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
}

impl From<&crate::webhooks::DeliveryRow> for Delivery {
    fn from(d: &crate::webhooks::DeliveryRow) -> Self {
        Delivery {
            id: d.id,
            webhook_id: d.webhook_id,
            event_type: d.event_type.clone(),
            body: d.body.clone(),
            state: d.state.clone(),
            attempts: d.attempts,
            last_status: d.last_status,
            last_error: d.last_error.clone(),
            created_at: d.created_at,
            next_attempt_at: (d.state == "pending").then_some(d.next_attempt_at),
            delivered_at: d.delivered_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Deliveries {
    pub deliveries: Vec<Delivery>,
}
