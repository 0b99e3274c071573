//! Selfie bodies (issue 15, point 5): anyone with a guest link may send
//! them, so they are bounded before they are read. On the routes that take
//! a selfie, a body over `max_selfie_bytes` (two and a form for "me and a
//! friend") is refused IMAGE_TOO_LARGE, by its Content-Length before a byte
//! is read, or as soon as it grows past the limit; and the body's bytes are
//! a share of `selfie_memory_bytes`, taken before it is read and held until
//! the answer, so that all selfies together have a memory ceiling. A
//! request that gets no share within `overload_wait_ms` is OVERLOADED: 429
//! with Retry-After.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use facepass_core::{Error, ErrorCode};

use super::ApiError;
use crate::config::SELFIE_FORM_OVERHEAD;
use crate::domain::Gateway;

/// The routes whose body is one selfie, or a form of selfies.
const SELFIE_ROUTES: [&str; 4] = [
    "/api/v1/guest/{token}/search",
    "/api/v1/guest/{token}/forget",
    "/api/v1/events/{event_id}/search",
    "/api/v1/events/{event_id}/forget",
];

fn too_large(limit: usize) -> Error {
    Error::new(
        ErrorCode::ImageTooLarge,
        format!("the selfie is larger than the limit of {limit} bytes"),
    )
}

/// The middleware (see the module's documentation).
pub(super) async fn bounded(
    State(gw): State<Arc<Gateway>>,
    request: Request,
    next: Next,
) -> Response {
    let selfie_route = request.method() == Method::POST
        && request
            .extensions()
            .get::<MatchedPath>()
            .is_some_and(|p| SELFIE_ROUTES.contains(&p.as_str()));
    if !selfie_route {
        return next.run(request).await;
    }
    let form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let limit = if form {
        2 * gw.config.max_selfie_bytes + SELFIE_FORM_OVERHEAD
    } else {
        gw.config.max_selfie_bytes
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return ApiError(too_large(gw.config.max_selfie_bytes)).into_response();
    }
    let share = match gw.selfie_permit(declared.unwrap_or(limit)).await {
        Ok(share) => share,
        Err(e) => {
            // Read (and drop) what the client is sending, so that it gets
            // the 429 rather than a connection reset mid-upload.
            drain(request.into_body(), limit).await;
            return ApiError(e).into_response();
        }
    };
    let (parts, body) = request.into_parts();
    let body = Body::new(http_body_util::Limited::new(body, limit));
    let response = next.run(Request::from_parts(parts, body)).await;
    drop(share);
    // An extractor that hit the limit answers axum's plain-text 413.
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE
        && !response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
    {
        return ApiError(too_large(gw.config.max_selfie_bytes)).into_response();
    }
    response
}

/// Reads and drops a body the answer does not need, up to `limit` bytes
/// (then the connection is closed instead), keeping nothing.
pub(super) async fn drain(body: Body, limit: usize) {
    use http_body_util::BodyExt;
    let mut body = body;
    let mut read = 0usize;
    while let Some(Ok(frame)) = body.frame().await {
        if let Some(data) = frame.data_ref() {
            read += data.len();
            if read > limit {
                return;
            }
        }
    }
}

/// Reads a selfie body (already bounded by [`bounded`]): a body that grows
/// past `limit` is IMAGE_TOO_LARGE, an empty one INVALID_ARGUMENT.
pub(super) async fn read(body: Body, limit: usize) -> Result<Bytes, Error> {
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|e| {
        if is_length_limit(&e) {
            too_large(limit)
        } else {
            Error::invalid(format!("the selfie could not be read: {e}"))
        }
    })?;
    if bytes.is_empty() {
        return Err(Error::invalid_field("selfie", "selfie is empty"));
    }
    Ok(bytes)
}

fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
}
