//! What every REST request runs through, whatever the route: the body
//! limit, one deadline for waiting for a concurrency slot and the work, and
//! the JSON error body for everything axum answers itself (unknown routes,
//! wrong methods, bodies over the limit, malformed query strings, timeouts).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use facepass_core::{Error, ErrorCode};

use super::ApiError;

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
        .layer(middleware::map_response(security_headers))
        .layer(middleware::from_fn(count))
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(http_span))
}

/// Counts and times the API's requests by route template (metrics.rs);
/// pages and static files are not counted.
async fn count(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .filter(|p| p.starts_with("/api/"));
    let method = request.method().clone();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    if let Some(route) = route {
        facepass_server::metrics::http_request(
            &route,
            method.as_str(),
            response.status().as_u16(),
            started.elapsed().as_secs_f64(),
        );
    }
    response
}

/// The span of one REST request, named after its route (`POST
/// /api/v1/events/{event_id}/photos`), continuing a caller's trace when it
/// sends one. Static files and the web pages get none.
fn http_span(request: &Request) -> tracing::Span {
    let Some(route) = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .filter(|p| p.starts_with("/api/"))
    else {
        return tracing::Span::none();
    };
    let span = tracing::info_span!(
        "http",
        otel.name = %format!("{} {route}", request.method()),
        otel.kind = "server",
        http.request.method = %request.method(),
        http.route = %route,
    );
    facepass_server::telemetry::set_parent(
        &span,
        request
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?))),
    );
    span
}

/// On every response: no content-type guessing (an uploaded file is never
/// run as HTML or script) and no referrer to other sites (share links
/// carry their token in the path). JSON answers are never cached unless a
/// route says otherwise: a browser would otherwise keep a 410 "link
/// expired" (heuristically cacheable) after the studio renewed the link.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let json = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if json {
        headers
            .entry(header::CACHE_CONTROL)
            .or_insert(header::HeaderValue::from_static("no-store"));
    }
    headers
        .entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(header::HeaderValue::from_static("nosniff"));
    headers
        .entry(header::REFERRER_POLICY)
        .or_insert(header::HeaderValue::from_static("same-origin"));
    // The pages set their own policy; everything else (JSON, photos,
    // previews, archives) may not run, load or be framed: bytes that are
    // HTML or SVG inside are inert even if a browser opened them.
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(header::HeaderValue::from_static(
            "default-src 'none'; frame-ancestors 'none'; sandbox",
        ));
    headers
        .entry(header::X_FRAME_OPTIONS)
        .or_insert(header::HeaderValue::from_static("DENY"));
    response
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

pub(super) async fn unknown_route(uri: Uri) -> ApiError {
    ApiError(Error::not_found(format!(
        "no such endpoint: {}",
        shown_path(&uri)
    )))
}

/// 405 keeps its status (and axum adds the `Allow` header); the code is
/// INVALID_ARGUMENT, the closed set's code for a request that cannot work
/// as sent.
pub(super) async fn method_not_allowed(method: Method, uri: Uri) -> Response {
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

pub(super) fn is_json(response: &Response) -> bool {
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
