//! REST/JSON for browsers and the static web UI. Guests reach an event only
//! through its share link token; studios authenticate with their API key.
//! Errors are `{"error": {"code": "...", "message": "...", "field": "..."}}`
//! (`field` only when the error names one) with the HTTP status of the code;
//! that holds for what axum itself answers too: unknown routes, wrong
//! methods, bodies over the limit, malformed query strings and timeouts
//! (docs/errors.md).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use bytes::Bytes;
use facepass_core::{parse_id, Error};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::catalog::{EventCounts, EventRow, PhotoRow};
use crate::domain::{Gateway, NewRegistration, NewUpload, PageRequest};
use crate::faces::Person;
use crate::keys::Scope;
use crate::privacy::Channel;

mod faces;
mod stack;
mod studio;
#[cfg(test)]
mod tests;

use faces::{search_json, SearchQuery};
use stack::{method_not_allowed, unknown_route};
pub use stack::{with_limits, Limits};

const GUEST_PAGE: &str = include_str!("../../static/guest.html");
const INDEX_PAGE: &str = include_str!("../../static/index.html");

/// An error rendered as JSON with its HTTP status.
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

/// The `error` object of every REST error body (and of a bulk call's
/// failed items): `code`, `message`, and `field` / `details` when present.
pub(crate) fn error_json(err: Error) -> Value {
    let Error {
        code,
        message,
        field,
        info,
    } = err;
    let mut error = json!({"code": code.as_str(), "message": message});
    if let Some(field) = field {
        error["field"] = Value::String(field);
    }
    if !info.is_empty() {
        error["details"] = json!(info);
    }
    error
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.0.code.http_status();
        (status, Json(json!({ "error": error_json(self.0) }))).into_response()
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

/// 200 `ok` while the gateway serves; 503 with the JSON error body (code
/// UNAVAILABLE, the reason) while a dependency is down.
async fn readyz(State(gw): State<Arc<Gateway>>) -> ApiResult<&'static str> {
    gw.readiness.get().map(|()| "ok").map_err(|why| {
        // The detail (hosts, driver text) is in the log; probes get the gist.
        let gist = if why.starts_with("database") {
            "the catalog database does not answer"
        } else if why.contains("rabbitmq") {
            "the message broker does not answer"
        } else {
            "the gateway is starting or stopping"
        };
        ApiError(Error::unavailable(format!("not ready: {gist}")))
    })
}

pub fn router(gateway: Arc<Gateway>) -> Router {
    let limits = Limits {
        max_body_bytes: gateway.config.max_upload_bytes + 64 * 1024,
        timeout: Duration::from_millis(gateway.config.grpc.request_timeout_ms),
        concurrency: gateway.config.grpc.concurrency_limit,
    };
    let routes = Router::new()
        .route("/", get(|| async { Html(INDEX_PAGE) }))
        .route("/e/{token}", get(|| async { Html(GUEST_PAGE) }))
        // Liveness: the process answers. Readiness: the catalog database and
        // the broker answer (the same verdict as grpc.health.v1).
        .route("/healthz", get(|| async { "ok" }))
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/api/v1/guest/{token}", get(guest_event))
        .route("/api/v1/guest/{token}/search", post(guest_search))
        .route("/api/v1/guest/{token}/forget", post(guest_forget))
        .route("/api/v1/guest/{token}/photos/{photo_id}", get(guest_photo))
        .route("/api/v1/events", post(create_event).get(list_events))
        .route(
            "/api/v1/events/{event_id}",
            get(get_event).delete(delete_event),
        )
        .route(
            "/api/v1/events/{event_id}/photos",
            post(upload_photo).get(list_photos),
        )
        .route(
            "/api/v1/events/{event_id}/search",
            post(faces::search_event),
        )
        .route(
            "/api/v1/events/{event_id}/photos/register",
            post(register_photos),
        )
        .route("/api/v1/events/{event_id}/watch", get(watch_event))
        .route(
            "/api/v1/photos/{photo_id}",
            get(studio::get_photo).delete(studio::delete_photo),
        )
        .route(
            "/api/v1/events/{event_id}/forget",
            post(studio::forget_guest),
        )
        .route(
            "/api/v1/events/{event_id}/share-link",
            put(studio::update_share_link),
        )
        .route(
            "/api/v1/events/{event_id}/share-link/rotate",
            post(studio::rotate_share_link),
        )
        .route(
            "/api/v1/events/{event_id}/retention",
            put(studio::set_retention),
        )
        .route("/api/v1/audit", get(studio::audit_log))
        .route(
            "/api/v1/webhooks",
            post(studio::create_webhook).get(studio::list_webhooks),
        )
        .route(
            "/api/v1/webhooks/{webhook_id}",
            delete(studio::delete_webhook),
        )
        .route(
            "/api/v1/webhooks/{webhook_id}/deliveries",
            get(studio::list_deliveries),
        )
        .route(
            "/api/v1/deliveries/{delivery_id}/replay",
            post(studio::replay_delivery),
        )
        .route("/api/v1/photos/{photo_id}/faces", get(faces::photo_faces))
        .route("/api/v1/faces/{face_id}", delete(faces::delete_face))
        .route(
            "/api/v1/faces/{face_id}/search",
            post(faces::search_by_face),
        )
        // Unknown paths and wrong methods get the JSON error body too.
        // (After every route: the method fallback is set on those present.)
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(gateway);
    with_limits(routes, &limits)
}

pub(crate) fn event_json(event: &EventRow, counts: &EventCounts) -> Value {
    json!({
        "id": event.id,
        "name": event.name,
        "external_id": event.external_id,
        "share_token": event.share_token,
        "guest_url": format!("/e/{}", event.share_token),
        "created_at": event.created_at,
        "share_enabled": event.share_disabled_at.is_none(),
        "share_expires_at": event.share_expires_at,
        "retain_until": event.retain_until,
        "photos": {"total": counts.total, "pending": counts.pending, "indexed": counts.indexed, "failed": counts.failed},
        "faces": counts.faces,
    })
}

pub(crate) fn photo_json(photo: &PhotoRow) -> Value {
    json!({
        "id": photo.id,
        "event_id": photo.event_id,
        "external_id": photo.external_id,
        "status": photo.status,
        "face_count": photo.face_count,
        "failure_code": photo.failure_code,
        "failure_reason": photo.failure_reason,
        "size_bytes": photo.size_bytes,
        "created_at": photo.created_at,
        "indexed_at": photo.indexed_at,
        "file_name": photo.file_name,
        "content_type": photo.content_type,
        "width": photo.width,
        "height": photo.height,
        "captured_at": photo.captured_at,
    })
}

/// The caller's studio, if its key has `scope`.
pub(crate) async fn studio(
    gateway: &Gateway,
    headers: &HeaderMap,
    scope: Scope,
) -> ApiResult<Uuid> {
    Ok(caller(gateway, headers, scope).await?.studio)
}

/// The caller (studio and key), if its key has `scope`.
pub(crate) async fn caller(
    gateway: &Gateway,
    headers: &HeaderMap,
    scope: Scope,
) -> ApiResult<crate::keys::Caller> {
    let header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let caller = crate::auth::caller(&gateway.catalog, header).await?;
    caller.require(scope)?;
    Ok(caller)
}

async fn guest_event(
    State(gw): State<Arc<Gateway>>,
    Path(token): Path<String>,
) -> ApiResult<Json<Value>> {
    let event = gw.catalog.event_by_share_token(&token).await?;
    let counts = gw.catalog.event_counts(&[event.id]).await?;
    let c = counts.get(&event.id).copied().unwrap_or_default();
    Ok(Json(json!({
        "name": event.name,
        "photos": c.total,
        "indexed": c.indexed,
        "pending": c.pending,
        // The guest agrees to this version before a search (`?consent=`).
        "policy_version": gw.config.privacy_policy_version,
    })))
}

/// POST the selfie as the raw request body (any image content type).
async fn guest_search(
    State(gw): State<Arc<Gateway>>,
    Path(token): Path<String>,
    Query(q): Query<SearchQuery>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let event = gw.catalog.event_by_share_token(&token).await?;
    let tiers = q.tiers()?;
    let policy_version = q.consent()?;
    if body.is_empty() {
        return Err(Error::invalid_field("selfie", "selfie is empty").into());
    }
    let person = Person {
        selfies: vec![body],
        faces: Vec::new(),
    };
    let consent = policy_version.map(|v| (v, Channel::GuestLink));
    let result = gw
        .search(&event, vec![person], q.limit, tiers, consent)
        .await?;
    Ok(Json(search_json(&result, Some(&token))))
}

/// POST the selfie as the raw request body: every face of the event that
/// matches is deleted; the answer is the receipt.
async fn guest_forget(
    State(gw): State<Arc<Gateway>>,
    Path(token): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let event = gw.catalog.event_by_share_token(&token).await?;
    let (faces, photos) = gw.forget_guest(&event, body, "guest").await?;
    Ok(Json(json!({"faces_deleted": faces, "photo_ids": photos})))
}

fn sniff_content_type(bytes: &[u8]) -> &'static str {
    facepass_core::media::image_type(bytes).unwrap_or("application/octet-stream")
}

async fn guest_photo(
    State(gw): State<Arc<Gateway>>,
    Path((token, photo_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let event = gw.catalog.event_by_share_token(&token).await?;
    let photo_id = parse_id("photo_id", &photo_id)?;
    let bytes = gw.photo_bytes(&event, photo_id).await?;
    Ok((
        [
            (header::CONTENT_TYPE, sniff_content_type(&bytes)),
            (header::CACHE_CONTROL, "private, max-age=3600"),
            // A browser must never guess another type (HTML, script).
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        bytes,
    )
        .into_response())
}

#[derive(Deserialize)]
struct NewEvent {
    name: String,
    #[serde(default)]
    external_id: String,
    /// RFC 3339; purge the event after it.
    #[serde(default)]
    retain_until: Option<chrono::DateTime<chrono::Utc>>,
}

async fn create_event(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let studio = studio(&gw, &headers, Scope::Upload).await?;
    let new: NewEvent = serde_json::from_slice(&body)
        .map_err(|e| Error::invalid(format!("body must be JSON {{\"name\": ...}}: {e}")))?;
    let (event, created) = gw
        .create_event(studio, &new.name, &new.external_id, new.retain_until)
        .await?;
    if created {
        return Ok((
            StatusCode::CREATED,
            Json(event_json(&event, &EventCounts::default())),
        ));
    }
    // A repeated request: 200 with the event as it is now.
    let (event, counts) = gw.event_with_counts(studio, event.id).await?;
    Ok((StatusCode::OK, Json(event_json(&event, &counts))))
}

#[derive(Deserialize)]
struct PageQuery {
    #[serde(default)]
    page_size: u32,
    #[serde(default)]
    page_token: String,
    #[serde(default)]
    status: String,
}

async fn list_events(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Value>> {
    let studio = studio(&gw, &headers, Scope::Read).await?;
    let events = gw
        .list_events(studio, PageRequest::new(q.page_size, &q.page_token))
        .await?;
    Ok(Json(json!({
        "events": events.items.iter().map(|(e, c)| event_json(e, c)).collect::<Vec<_>>(),
        "next_page_token": events.next_page_token,
    })))
}

async fn get_event(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(event_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let studio = studio(&gw, &headers, Scope::Read).await?;
    let event_id = parse_id("event_id", &event_id)?;
    let (event, counts) = gw.event_with_counts(studio, event_id).await?;
    Ok(Json(event_json(&event, &counts)))
}

async fn delete_event(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(event_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let caller = caller(&gw, &headers, Scope::Upload).await?;
    let event_id = parse_id("event_id", &event_id)?;
    let (photos, faces) = gw
        .delete_event(caller.studio, event_id, &caller.actor())
        .await?;
    Ok(Json(
        json!({"photos_deleted": photos, "faces_deleted": faces}),
    ))
}

#[derive(Deserialize)]
struct UploadQuery {
    #[serde(default)]
    external_id: String,
    #[serde(default)]
    file_name: String,
}

/// POST the photo as the raw request body.
async fn upload_photo(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(event_id): Path<String>,
    Query(q): Query<UploadQuery>,
    body: axum::body::Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let studio = studio(&gw, &headers, Scope::Upload).await?;
    let event_id = parse_id("event_id", &event_id)?;
    // A declared size over the limit is refused before a byte is read.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > gw.config.max_upload_bytes as u64) {
        return Err(Error::new(
            facepass_core::ErrorCode::ImageTooLarge,
            format!(
                "photo is {} bytes, the limit is {}",
                declared.unwrap_or_default(),
                gw.config.max_upload_bytes
            ),
        )
        .into());
    }
    let new = NewUpload {
        external_id: &q.external_id,
        file_name: &q.file_name,
    };
    // Streamed to the object store as it arrives (uploads.rs).
    let chunks = body
        .into_data_stream()
        .map(|chunk| chunk.map_err(|e| Error::invalid(format!("the upload body broke: {e}"))));
    let (photo, created) = gw.upload_stream(studio, event_id, new, chunks).await?;
    // 202: accepted for indexing; 200: a repeated upload of the same photo.
    let status = if created {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(photo_json(&photo))))
}

/// `GET /api/v1/events/{id}/watch`: Server-Sent Events, `progress` (the
/// counts and `completed`) and `photo` (a photo just indexed or failed),
/// the same as gRPC WatchEvent; an `error` event when the event is deleted.
async fn watch_event(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(event_id): Path<String>,
) -> ApiResult<Response> {
    use axum::response::sse::{Event as Sse, KeepAlive};
    let studio = studio(&gw, &headers, Scope::Read).await?;
    let event_id = parse_id("event_id", &event_id)?;
    gw.catalog.get_event(studio, event_id).await?;
    let events = crate::watch::watch(gw.clone(), studio, event_id).map(|u| {
        let event = match u {
            Ok(crate::watch::Update::Progress { counts, completed }) => {
                Sse::default().event("progress").json_data(json!({
                    "photos": {"total": counts.total, "pending": counts.pending,
                        "indexed": counts.indexed, "failed": counts.failed},
                    "faces": counts.faces,
                    "completed": completed,
                }))
            }
            Ok(crate::watch::Update::Photo(photo)) => {
                Sse::default().event("photo").json_data(photo_json(&photo))
            }
            Err(e) => Sse::default()
                .event("error")
                .json_data(json!({"error": {"code": e.code.as_str(), "message": e.message}})),
        };
        Ok::<_, std::convert::Infallible>(event.unwrap_or_else(|_| Sse::default()))
    });
    // The deadline middleware would cut a long watch: the stream lives on
    // its own; keep-alives keep proxies from closing it.
    Ok(axum::response::sse::Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}

#[derive(Deserialize)]
struct RegisterItem {
    object_key: String,
    #[serde(default)]
    external_id: String,
    #[serde(default)]
    file_name: String,
}

#[derive(Deserialize)]
struct RegisterBody {
    items: Vec<RegisterItem>,
}

/// `POST /api/v1/events/{id}/photos/register` with `{"items": [{"object_key",
/// "external_id"?, "file_name"?}, ...]}` (1 to 1,000): one result per item,
/// `{"photo": ..., "created": bool}` or `{"error": {...}}`.
async fn register_photos(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(event_id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let studio = studio(&gw, &headers, Scope::Upload).await?;
    let event_id = parse_id("event_id", &event_id)?;
    let body: RegisterBody = serde_json::from_slice(&body).map_err(|e| {
        Error::invalid(format!(
            "body must be JSON {{\"items\": [{{\"object_key\": ...}}]}}: {e}"
        ))
    })?;
    let items: Vec<NewRegistration<'_>> = body
        .items
        .iter()
        .map(|i| NewRegistration {
            external_id: &i.external_id,
            object_key: &i.object_key,
            file_name: &i.file_name,
        })
        .collect();
    let results = gw.register_many(studio, event_id, &items).await?;
    Ok(Json(json!({
        "results": results.into_iter().map(|r| match r {
            Ok((photo, created)) => json!({"photo": photo_json(&photo), "created": created}),
            Err(e) => json!({"error": error_json(e)}),
        }).collect::<Vec<_>>(),
    })))
}

async fn list_photos(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(event_id): Path<String>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Value>> {
    let studio = studio(&gw, &headers, Scope::Read).await?;
    let event_id = parse_id("event_id", &event_id)?;
    let status = match q.status.as_str() {
        "" => None,
        s @ ("pending" | "indexed" | "failed") => Some(s),
        other => return Err(Error::invalid(format!("unknown status {other:?}")).into()),
    };
    let photos = gw
        .list_photos(
            studio,
            event_id,
            status,
            PageRequest::new(q.page_size, &q.page_token),
        )
        .await?;
    Ok(Json(json!({
        "photos": photos.items.iter().map(photo_json).collect::<Vec<_>>(),
        "next_page_token": photos.next_page_token,
    })))
}
