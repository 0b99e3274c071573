//! REST/JSON for browsers and the static web UI. Guests reach an event only
//! through its share link token; studios authenticate with their API key.
//! Errors are `{"error": {"code": "...", "message": "...", "field": "..."}}`
//! (`field` only when the error names one) with the HTTP status of the code;
//! that holds for what axum itself answers too: unknown routes, wrong
//! methods, bodies over the limit, malformed query strings and timeouts
//! (docs/errors.md).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use facepass_core::{parse_id, Error, ErrorCode};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::catalog::{EventCounts, EventRow, PhotoRow};
use crate::domain::{Gateway, PageRequest, SelfieSearch, Tier};

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
        let Error {
            code,
            message,
            field,
        } = self.0;
        let mut error = json!({"code": code.as_str(), "message": message});
        if let Some(field) = field {
            error["field"] = Value::String(field);
        }
        (code.http_status(), Json(json!({ "error": error }))).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

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
        // Unknown paths and wrong methods get the JSON error body too.
        // (After every route: the method fallback is set on those present.)
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(gateway);
    with_limits(routes, &limits)
}

/// The bounds every REST request runs under.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The largest request body an extractor buffers; a larger one is
    /// 413 IMAGE_TOO_LARGE.
    pub max_body_bytes: usize,
    /// How long a request may take, waiting for a slot included; then it is
    /// dropped and answered 504 TIMEOUT.
    pub timeout: Duration,
    /// Requests handled at once; the others wait for a slot.
    pub concurrency: usize,
}

/// The tower stack around the REST routes. The last layer added sees a
/// request first: trace, then the JSON error mapping (it must see every
/// response, the deadline's included), then the deadline with the
/// concurrency slots, then the body limit the extractors apply.
pub fn with_limits(routes: Router, limits: &Limits) -> Router {
    let deadline = Arc::new(Deadline {
        timeout: limits.timeout,
        slots: tokio::sync::Semaphore::new(limits.concurrency),
    });
    routes
        // Read by the body extractors (`Bytes`, `Json`, `Multipart`); their
        // rejection is a plain-text 413 that `json_errors` rewrites.
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        // One deadline for waiting for a slot and for the work itself: a
        // tower timeout layer would start only once a slot is free, and
        // tower-http's answers 408/504 with an empty body.
        .layer(middleware::from_fn_with_state(deadline, bounded))
        // Every error response that is not already the JSON body (axum's
        // rejections: malformed query or path, body over the limit) gets it.
        .layer(middleware::map_response_with_state(
            limits.max_body_bytes,
            json_errors,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
}

/// The shared state of [`bounded`]: one semaphore for all routes.
struct Deadline {
    timeout: Duration,
    slots: tokio::sync::Semaphore,
}

/// Runs the request in one of the concurrency slots, within the deadline
/// (waiting for the slot included); past it, 504 TIMEOUT.
async fn bounded(State(deadline): State<Arc<Deadline>>, request: Request, next: Next) -> Response {
    let work = async {
        // The semaphore is never closed; the permit is held until the
        // response is ready.
        let _slot = deadline.slots.acquire().await;
        next.run(request).await
    };
    match tokio::time::timeout(deadline.timeout, work).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(
                timeout_ms = deadline.timeout.as_millis() as u64,
                "rest request timed out"
            );
            ApiError(Error::new(
                ErrorCode::Timeout,
                format!(
                    "the request did not finish within {} ms, try again",
                    deadline.timeout.as_millis()
                ),
            ))
            .into_response()
        }
    }
}

/// The path as echoed in a message: at most 200 characters.
fn shown_path(uri: &Uri) -> String {
    uri.path().chars().take(200).collect()
}

async fn unknown_route(uri: Uri) -> ApiError {
    ApiError(Error::not_found(format!(
        "no such endpoint: {}",
        shown_path(&uri)
    )))
}

/// 405 keeps its status (and axum adds the `Allow` header); the code is
/// INVALID_ARGUMENT, the closed set's code for a request that cannot work
/// as sent.
async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let mut response = ApiError(Error::invalid(format!(
        "{method} is not allowed on {}",
        shown_path(&uri)
    )))
    .into_response();
    *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    response
}

/// The FacePass code of an error status that axum or tower produced.
fn code_for_status(status: StatusCode) -> ErrorCode {
    match status {
        StatusCode::UNAUTHORIZED => ErrorCode::Unauthenticated,
        StatusCode::FORBIDDEN => ErrorCode::PermissionDenied,
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::CONFLICT => ErrorCode::AlreadyExists,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::ImageTooLarge,
        StatusCode::TOO_MANY_REQUESTS => ErrorCode::Overloaded,
        StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => ErrorCode::Timeout,
        StatusCode::SERVICE_UNAVAILABLE => ErrorCode::Unavailable,
        // 400, 405, 411, 415, 422 ...: the request cannot work as sent.
        s if s.is_client_error() => ErrorCode::InvalidArgument,
        _ => ErrorCode::Internal,
    }
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// Rewrites an error response that is not the JSON error body (an axum
/// rejection: plain text) into it, with the code of its status. The status
/// becomes the code's, except 405, which keeps its status and `Allow`.
async fn json_errors(State(max_body_bytes): State<usize>, response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(&response) {
        return response;
    }
    let (parts, body) = response.into_parts();
    // axum's rejections explain themselves in a short plain-text body.
    let said = axum::body::to_bytes(body, 4096)
        .await
        .ok()
        .and_then(|b| String::from_utf8(b.to_vec()).ok())
        .unwrap_or_default();
    let said = said.trim();
    let code = code_for_status(status);
    let message = match code {
        ErrorCode::ImageTooLarge => {
            format!("the request body is larger than the limit of {max_body_bytes} bytes")
        }
        ErrorCode::Timeout => "the request did not finish in time, try again".to_string(),
        ErrorCode::Unavailable => "the service is unavailable, try again".to_string(),
        // A server error's text is never sent: it may hold internals.
        ErrorCode::Internal => {
            tracing::error!(status = %status, detail = %said, "internal error");
            "internal error".to_string()
        }
        _ if !said.is_empty() && said.chars().all(facepass_core::text::is_text_char) => {
            let mut chars = said.chars();
            match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect::<String>(),
                None => String::new(),
            }
        }
        _ => status
            .canonical_reason()
            .unwrap_or("the request cannot be handled")
            .to_lowercase(),
    };
    let mut json = ApiError(Error::new(code, message)).into_response();
    if status == StatusCode::METHOD_NOT_ALLOWED {
        *json.status_mut() = status;
    }
    if let Some(allow) = parts.headers.get(header::ALLOW) {
        json.headers_mut().insert(header::ALLOW, allow.clone());
    }
    json
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
        "selfie_face": result.selfie_face.to_array(),
        "matches": result.matches.iter().map(|m| json!({
            "photo_id": m.photo.id,
            "url": format!("/api/v1/guest/{token}/photos/{}", m.photo.id),
            "similarity": m.similarity,
            "face_box": m.face_box.to_array(),
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

#[cfg(test)]
mod tests {
    //! The error contract of the REST router, without a database: the
    //! catalog's pool points at a port where nothing listens, so a request
    //! that reached a query would answer 503 UNAVAILABLE instead.

    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;
    use crate::catalog::Catalog;
    use crate::domain::Peers;
    use crate::GatewayConfig;

    fn gateway(max_upload_bytes: usize) -> Arc<Gateway> {
        let config = GatewayConfig {
            database_url: "postgres://nobody@127.0.0.1:1/nothing".into(),
            max_upload_bytes,
            ..GatewayConfig::default()
        };
        Arc::new(Gateway {
            catalog: Catalog::new(facepass_db::pool(&config.database_url, 1).unwrap()),
            store: Arc::new(object_store::memory::InMemory::new()),
            peers: Peers::connect(&config).unwrap(),
            config,
            outbox_ready: Arc::new(tokio::sync::Notify::new()),
            readiness: Default::default(),
        })
    }

    async fn send(
        app: Router,
        method: &str,
        uri: &str,
        body: Body,
    ) -> (StatusCode, HeaderMap, Value) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .body(body)
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        assert!(is_json(&response), "{method} {uri}: {status} is not JSON");
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let json: Value = serde_json::from_slice(&bytes).unwrap();
        (status, headers, json)
    }

    fn code(json: &Value) -> &str {
        json["error"]["code"].as_str().unwrap_or("")
    }

    #[tokio::test]
    async fn unknown_route_is_json_not_found() {
        let app = router(gateway(1 << 20));
        let (status, _, json) = send(app, "GET", "/api/v1/nothing/here", Body::empty()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(code(&json), "NOT_FOUND");
        assert_eq!(
            json["error"]["message"],
            "no such endpoint: /api/v1/nothing/here"
        );
    }

    #[tokio::test]
    async fn wrong_method_is_json_405_with_allow() {
        let app = router(gateway(1 << 20));
        let (status, headers, json) = send(app, "PUT", "/api/v1/events", Body::empty()).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(code(&json), "INVALID_ARGUMENT");
        let allow = headers.get(header::ALLOW).unwrap().to_str().unwrap();
        assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    }

    #[tokio::test]
    async fn missing_api_key_is_json_unauthenticated() {
        let app = router(gateway(1 << 20));
        let (status, _, json) = send(app, "GET", "/api/v1/events", Body::empty()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(code(&json), "UNAUTHENTICATED");
    }

    #[tokio::test]
    async fn malformed_query_is_json_invalid_argument() {
        let app = router(gateway(1 << 20));
        let (status, _, json) =
            send(app, "GET", "/api/v1/events?page_size=many", Body::empty()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(code(&json), "INVALID_ARGUMENT");
        let message = json["error"]["message"].as_str().unwrap();
        assert!(message.contains("page_size"), "{message}");
    }

    #[tokio::test]
    async fn body_over_the_limit_is_json_image_too_large() {
        // Limit: 1 KiB + 64 KiB of slack.
        let app = router(gateway(1024));
        let body = Body::from(vec![0u8; 200 * 1024]);
        let (status, _, json) = send(app, "POST", "/api/v1/events", body).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(code(&json), "IMAGE_TOO_LARGE");
        let message = json["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&(1024 + 64 * 1024).to_string()),
            "{message}"
        );
    }

    #[tokio::test]
    async fn share_token_with_nul_is_refused_before_any_query() {
        let app = router(gateway(1 << 20));
        for uri in ["/api/v1/guest/a%00b", "/api/v1/guest/a%00b/photos/x"] {
            let (status, _, json) = send(app.clone(), "GET", uri, Body::empty()).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
            assert_eq!(code(&json), "INVALID_ARGUMENT", "{uri}");
            assert_eq!(json["error"]["field"], "token", "{uri}");
        }
    }

    fn slow_app(timeout_ms: u64, concurrency: usize) -> Router {
        let routes = Router::new()
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    "late"
                }),
            )
            .route("/fast", get(|| async { "now" }));
        with_limits(
            routes,
            &Limits {
                max_body_bytes: 1024,
                timeout: Duration::from_millis(timeout_ms),
                concurrency,
            },
        )
    }

    #[tokio::test]
    async fn timeout_is_json_504() {
        let (status, _, json) = send(slow_app(50, 4), "GET", "/slow", Body::empty()).await;
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(code(&json), "TIMEOUT");
    }

    #[tokio::test]
    async fn waiting_for_a_slot_counts_against_the_timeout() {
        // One slot, 300 ms. /hold keeps the slot 250 ms (in time); /work
        // needs 200 ms, in time on its own, but it first waits ~200 ms for
        // the slot: only a deadline that counts the wait answers 504.
        let routes = Router::new()
            .route(
                "/hold",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    Json(json!({"held": true}))
                }),
            )
            .route(
                "/work",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    Json(json!({"done": true}))
                }),
            );
        let app = with_limits(
            routes,
            &Limits {
                max_body_bytes: 1024,
                timeout: Duration::from_millis(300),
                concurrency: 1,
            },
        );
        let (status, _, _) = send(app.clone(), "GET", "/work", Body::empty()).await;
        assert_eq!(status, StatusCode::OK, "alone, /work is in time");
        let hold = tokio::spawn(send(app.clone(), "GET", "/hold", Body::empty()));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (status, _, json) = send(app, "GET", "/work", Body::empty()).await;
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(code(&json), "TIMEOUT");
        let (status, _, _) = hold.await.unwrap();
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn error_body_names_the_field() {
        let response = ApiError(Error::invalid_field("name", "name is required")).into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let json: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            json,
            json!({"error": {"code": "INVALID_ARGUMENT", "message": "name is required", "field": "name"}})
        );
    }
}
