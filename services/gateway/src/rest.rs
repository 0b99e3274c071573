//! REST/JSON for browsers and the static web UI. Guests reach an event only
//! through its share link token; studios authenticate with their API key.
//! Errors are `{"error": {"code": "...", "message": "..."}}` with the HTTP
//! status of the code.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use facepass_core::{parse_id, Error};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::catalog::{EventCounts, EventRow, PhotoRow};
use crate::domain::{Gateway, SelfieSearch, Tier};

const GUEST_PAGE: &str = include_str!("../static/guest.html");
const INDEX_PAGE: &str = include_str!("../static/index.html");

/// An error rendered as JSON with its HTTP status.
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.0.code.http_status();
        let body = json!({"error": {"code": self.0.code.as_str(), "message": self.0.message}});
        (status, Json(body)).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

pub fn router(gateway: Arc<Gateway>) -> Router {
    let body_limit = gateway.config.max_upload_bytes + 64 * 1024;
    let timeout = Duration::from_millis(gateway.config.grpc.request_timeout_ms);
    let concurrency = gateway.config.grpc.concurrency_limit;
    Router::new()
        .route("/", get(|| async { Html(INDEX_PAGE) }))
        .route("/e/{token}", get(|| async { Html(GUEST_PAGE) }))
        .route("/healthz", get(|| async { "ok" }))
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
        .with_state(gateway)
        // The last layer added sees a request first: trace, then the
        // timeout (which also bounds waiting for a slot), then the
        // concurrency bound, then the body limit.
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(concurrency))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            timeout,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
}

fn event_json(event: &EventRow, counts: &EventCounts) -> Value {
    json!({
        "id": event.id,
        "name": event.name,
        "external_id": event.external_id,
        "share_token": event.share_token,
        "guest_url": format!("/e/{}", event.share_token),
        "created_at": event.created_at,
        "photos": {"total": counts.total, "pending": counts.pending, "indexed": counts.indexed, "failed": counts.failed},
        "faces": counts.faces,
    })
}

fn photo_json(photo: &PhotoRow) -> Value {
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
    })
}

async fn studio(gateway: &Gateway, headers: &HeaderMap) -> ApiResult<Uuid> {
    let header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    Ok(crate::auth::studio(&gateway.catalog, header).await?)
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
    })))
}

fn search_json(token: &str, result: &SelfieSearch) -> Value {
    json!({
        "selfie_face": result.selfie_face,
        "matches": result.matches.iter().map(|m| json!({
            "photo_id": m.photo.id,
            "url": format!("/api/v1/guest/{token}/photos/{}", m.photo.id),
            "similarity": m.similarity,
            "face_box": m.face_box,
            "tier": match m.tier { Tier::Match => "match", Tier::Possible => "possible" },
        })).collect::<Vec<_>>(),
    })
}

#[derive(Deserialize)]
struct LimitQuery {
    #[serde(default)]
    limit: u32,
}

/// POST the selfie as the raw request body (any image content type).
async fn guest_search(
    State(gw): State<Arc<Gateway>>,
    Path(token): Path<String>,
    Query(q): Query<LimitQuery>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let event = gw.catalog.event_by_share_token(&token).await?;
    let result = gw.search_by_selfie(&event, body, q.limit).await?;
    Ok(Json(search_json(&token, &result)))
}

/// POST the selfie as the raw request body: every face of the event that
/// matches is deleted; the answer is the receipt.
async fn guest_forget(
    State(gw): State<Arc<Gateway>>,
    Path(token): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let event = gw.catalog.event_by_share_token(&token).await?;
    let (faces, photos) = gw.forget_guest(&event, body).await?;
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
}

async fn create_event(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let studio = studio(&gw, &headers).await?;
    let new: NewEvent = serde_json::from_slice(&body)
        .map_err(|e| Error::invalid(format!("body must be JSON {{\"name\": ...}}: {e}")))?;
    let event = gw.create_event(studio, &new.name, &new.external_id).await?;
    Ok((
        StatusCode::CREATED,
        Json(event_json(&event, &EventCounts::default())),
    ))
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
    let studio = studio(&gw, &headers).await?;
    let (limit, offset) = crate::api::page(q.page_size, &q.page_token, 500)?;
    let events = gw.list_events(studio, limit, offset).await?;
    let next = if events.len() as i64 == limit {
        (offset + limit).to_string()
    } else {
        String::new()
    };
    Ok(Json(json!({
        "events": events.iter().map(|(e, c)| event_json(e, c)).collect::<Vec<_>>(),
        "next_page_token": next,
    })))
}

async fn get_event(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(event_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let studio = studio(&gw, &headers).await?;
    let event_id = parse_id("event_id", &event_id)?;
    let (event, counts) = gw.event_with_counts(studio, event_id).await?;
    Ok(Json(event_json(&event, &counts)))
}

async fn delete_event(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(event_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let studio = studio(&gw, &headers).await?;
    let event_id = parse_id("event_id", &event_id)?;
    let (photos, faces) = gw.delete_event(studio, event_id).await?;
    Ok(Json(
        json!({"photos_deleted": photos, "faces_deleted": faces}),
    ))
}

#[derive(Deserialize)]
struct UploadQuery {
    #[serde(default)]
    external_id: String,
}

/// POST the photo as the raw request body.
async fn upload_photo(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(event_id): Path<String>,
    Query(q): Query<UploadQuery>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let studio = studio(&gw, &headers).await?;
    let event_id = parse_id("event_id", &event_id)?;
    let photo = gw
        .upload_photo(studio, event_id, &q.external_id, body)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(photo_json(&photo))))
}

async fn list_photos(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(event_id): Path<String>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Value>> {
    let studio = studio(&gw, &headers).await?;
    let event_id = parse_id("event_id", &event_id)?;
    let status = match q.status.as_str() {
        "" => None,
        s @ ("pending" | "indexed" | "failed") => Some(s),
        other => return Err(Error::invalid(format!("unknown status {other:?}")).into()),
    };
    let (limit, offset) = crate::api::page(q.page_size, &q.page_token, 1000)?;
    let event = gw.catalog.get_event(studio, event_id).await?;
    let photos = gw
        .catalog
        .list_photos(event.id, status, limit, offset)
        .await?;
    let next = if photos.len() as i64 == limit {
        (offset + limit).to_string()
    } else {
        String::new()
    };
    Ok(Json(json!({
        "photos": photos.iter().map(photo_json).collect::<Vec<_>>(),
        "next_page_token": next,
    })))
}
