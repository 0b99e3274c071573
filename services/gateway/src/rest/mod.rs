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
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use facepass_core::{parse_id, Error};
use futures::StreamExt;
#[cfg(test)]
use serde_json::Value;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::catalog::EventCounts;
use crate::domain::{Gateway, NewRegistration, NewUpload, PageRequest, Priority};
use crate::faces::Person;
use crate::keys::Scope;
use crate::privacy::Channel;

mod faces;
pub mod model;
pub mod openapi;
mod selfies;
mod session;
mod stack;
mod studio;
#[cfg(test)]
mod tests;
pub mod web;

use faces::SearchQuery;
use model::{
    Deleted, DownloadBody, ErrorBody, ErrorObject, Event, EventPage, EventPageQuery, Forgotten,
    GuestEvent, GuestTogether, ImageBytes, ImageQuery, NewEvent, Photo, PhotoPage, PhotoPageQuery,
    Progress, RegisterBody, RegisterResult, RegisterResults, SearchResult, UploadQuery,
};
use stack::{method_not_allowed, unknown_route};
pub use stack::{with_limits, Limits};

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
        // OVERLOADED, UNAVAILABLE and TIMEOUT say when to come back: a
        // rate limit knows exactly, the others by their code.
        let retry_after = match self.0.info.get("retry_after_ms") {
            Some(ms) => ms.parse::<u64>().ok().map(|ms| ms.div_ceil(1000).max(1)),
            None => self.0.code.retry_delay().map(|d| d.as_secs().max(1)),
        };
        let body = ErrorBody {
            error: ErrorObject::from(self.0),
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, secs.into());
        }
        response
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
    // Each route's OpenAPI operation comes from its handler's
    // #[utoipa::path]; `routes!` registers both, so the document lists
    // exactly the routes served.
    let (api, paths) = OpenApiRouter::new()
        .routes(routes!(guest_event))
        .routes(routes!(guest_search))
        .routes(routes!(guest_forget))
        .routes(routes!(guest_photo))
        .routes(routes!(guest_download))
        .routes(routes!(guest_logo))
        .routes(routes!(studio::get_branding, studio::set_branding))
        .routes(routes!(
            studio::studio_logo,
            studio::set_logo,
            studio::delete_logo
        ))
        .routes(routes!(create_event, list_events))
        .routes(routes!(get_event, delete_event, studio::edit_event))
        .routes(routes!(upload_photo, list_photos))
        .routes(routes!(faces::search_event))
        .routes(routes!(register_photos))
        .routes(routes!(watch_event))
        .routes(routes!(studio::get_photo, studio::delete_photo))
        .routes(routes!(studio::photo_image))
        .routes(routes!(studio::retry_photo))
        .routes(routes!(studio::retry_failed))
        .routes(routes!(studio::forget_guest))
        .routes(routes!(studio::update_share_link))
        .routes(routes!(studio::rotate_share_link))
        .routes(routes!(studio::set_retention))
        .routes(routes!(studio::audit_log))
        .routes(routes!(studio::create_webhook, studio::list_webhooks))
        .routes(routes!(studio::delete_webhook))
        .routes(routes!(studio::list_deliveries))
        .routes(routes!(studio::replay_delivery))
        .routes(routes!(faces::photo_faces))
        .routes(routes!(faces::delete_face))
        .routes(routes!(faces::search_by_face))
        .routes(routes!(
            session::sign_in,
            session::current,
            session::sign_out
        ))
        .split_for_parts();
    let routes = Router::new()
        .route(
            "/",
            get(|| async { axum::response::Redirect::to("/studio") }),
        )
        .route("/studio", get(web::studio_page))
        .route("/e/{token}", get(web::guest_page))
        .route("/assets/{*file}", get(web::assets))
        .route("/favicon.svg", get(web::favicon))
        // Liveness: the process answers. Readiness: the catalog database and
        // the broker answer (the same verdict as grpc.health.v1).
        .route("/healthz", get(|| async { "ok" }))
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .merge(api)
        // GET /api/v1/openapi.json and the browsable /api/v1/docs.
        .merge(openapi::docs(openapi::document(paths)))
        // Unknown paths and wrong methods get the JSON error body too.
        // (After every route: the method fallback is set on those present.)
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            gateway.clone(),
            selfies::bounded,
        ))
        .layer(axum::middleware::from_fn_with_state(
            gateway.clone(),
            guest_rate,
        ))
        .layer(axum::middleware::from_fn(csrf_guard))
        .with_state(gateway);
    with_limits(routes, &limits)
}

/// A guest's search, "forget me" and download (POST on a guest link) count
/// against the link's and the guest address's rate limits.
async fn guest_rate(
    State(gw): State<Arc<Gateway>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let guest_post = request.method() == axum::http::Method::POST
        && request
            .extensions()
            .get::<axum::extract::MatchedPath>()
            .is_some_and(|p| p.as_str().starts_with("/api/v1/guest/{token}/"));
    if guest_post {
        let token = request
            .uri()
            .path()
            .split('/')
            .nth(4)
            .unwrap_or_default()
            .to_string();
        let address = client_address(&gw, &request);
        if let Err(e) = gw.rate.guest(&token, address) {
            // The client gets the 429, not a reset mid-upload.
            let limit = 2 * gw.config.max_selfie_bytes + crate::config::SELFIE_FORM_OVERHEAD;
            selfies::drain(request.into_body(), limit).await;
            return ApiError(e).into_response();
        }
    }
    next.run(request).await
}

/// The client's address: the connection's peer, or the first
/// `X-Forwarded-For` entry when `trust_forwarded_for` says a proxy sets it.
fn client_address(gw: &Gateway, request: &axum::extract::Request) -> Option<std::net::IpAddr> {
    if gw.config.trust_forwarded_for {
        if let Some(first) = request
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse().ok())
        {
            return Some(first);
        }
    }
    request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}

/// The caller's studio, if its key has `scope`.
pub(crate) async fn studio(
    gateway: &Gateway,
    headers: &HeaderMap,
    scope: Scope,
) -> ApiResult<Uuid> {
    Ok(caller(gateway, headers, scope).await?.studio)
}

/// The caller (studio and key), if its key has `scope`: from the API key in
/// `Authorization`, or from the dashboard's session cookie (whose changing
/// requests `csrf_guard` has already checked).
pub(crate) async fn caller(
    gateway: &Gateway,
    headers: &HeaderMap,
    scope: Scope,
) -> ApiResult<crate::keys::Caller> {
    let header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let cookie = headers.get(header::COOKIE).and_then(|v| v.to_str().ok());
    let caller = match (header, crate::sessions::from_cookie_header(cookie)) {
        (None, Some(session)) => gateway.catalog.session(session).await?.0,
        _ => crate::auth::caller(&gateway.catalog, header).await?,
    };
    gateway.rate.api_key.check(&caller.key_id.to_string())?;
    caller.require(scope)?;
    Ok(caller)
}

/// A request that changes something on the strength of the session cookie
/// must repeat the session's CSRF token in `X-CSRF-Token` (a form or script
/// of another site cannot). Requests with an API key are not concerned.
async fn csrf_guard(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let headers = request.headers();
    let safe = matches!(
        *request.method(),
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    );
    if !safe && !headers.contains_key(header::AUTHORIZATION) {
        let cookie = headers.get(header::COOKIE).and_then(|v| v.to_str().ok());
        if let Some(session) = crate::sessions::from_cookie_header(cookie) {
            let sent = headers
                .get(crate::sessions::CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !crate::auth::same_secret(sent, &crate::sessions::csrf_token(session)) {
                return ApiError(
                    Error::new(
                        facepass_core::ErrorCode::PermissionDenied,
                        "this request needs the session's X-CSRF-Token header",
                    )
                    .with_field("x-csrf-token"),
                )
                .into_response();
            }
        }
    }
    next.run(request).await
}

#[utoipa::path(
    get,
    path = "/api/v1/guest/{token}",
    tag = "guest",
    operation_id = "guest_event",
    summary = "What a guest sees of the event",
    params(("token" = String, Path, description = "The event's share token (from its guest link)", pattern = r"^[!-~]{1,256}$")),
    responses(
        (status = 200, description = "The event", body = GuestEvent),
        (status = 404, description = "NOT_FOUND: no such link", body = ErrorBody),
        (status = 410, description = "LINK_EXPIRED or LINK_DISABLED", body = ErrorBody),
    ),
)]
async fn guest_event(
    State(gw): State<Arc<Gateway>>,
    Path(token): Path<String>,
) -> ApiResult<Json<GuestEvent>> {
    let event = gw.catalog.event_by_share_token(&token).await?;
    let counts = gw.catalog.event_counts(&[event.id]).await?;
    let c = counts.get(&event.id).copied().unwrap_or_default();
    let studio = gw.catalog.branding(event.studio_id).await?;
    Ok(Json(GuestEvent {
        name: event.name,
        event_date: event.event_date,
        photos: c.total,
        indexed: c.indexed,
        pending: c.pending,
        policy_version: gw.config.privacy_policy_version.clone(),
        studio_name: studio.name,
        accent_color: studio.accent_color,
        privacy_url: studio.privacy_url,
        logo_url: studio
            .logo_key
            .map(|_| format!("/api/v1/guest/{token}/logo")),
    }))
}

#[utoipa::path(
    get,
    path = "/api/v1/guest/{token}/logo",
    tag = "guest",
    operation_id = "guest_logo",
    summary = "The studio's logo",
    params(("token" = String, Path, description = "The event's share token (from its guest link)", pattern = r"^[!-~]{1,256}$")),
    responses(
        (status = 200, description = "The logo", content((ImageBytes = "image/*"))),
        (status = 404, description = "NOT_FOUND: no such link, or no logo", body = ErrorBody),
        (status = 410, description = "LINK_EXPIRED or LINK_DISABLED", body = ErrorBody),
    ),
)]
async fn guest_logo(
    State(gw): State<Arc<Gateway>>,
    Path(token): Path<String>,
) -> ApiResult<Response> {
    let event = gw.catalog.event_by_share_token(&token).await?;
    Ok(image_response(gw.logo(event.studio_id).await?))
}

/// POST the selfie as the raw request body (any image content type), or a
/// `multipart/form-data` body for "me and a friend": `selfie` and
/// `together.0` parts (the friend's selfie), photos with both.
#[utoipa::path(
    post,
    path = "/api/v1/guest/{token}/search",
    tag = "guest",
    operation_id = "guest_search",
    summary = "Find the guest's photos by a selfie (or the photos with a friend too)",
    description = "The selfie is the raw body (JPEG, PNG, WebP, HEIC or AVIF); it is never \
        stored. For \"me and a friend\", send `multipart/form-data` with a `selfie` part and \
        a `together.0` part (the friend's selfie): the photos in which both appear. \
        `consent` must name the event's privacy policy version.",
    params(("token" = String, Path, description = "The event's share token (from its guest link)", pattern = r"^[!-~]{1,256}$"), SearchQuery),
    request_body(description = "The selfie, or the guest's and a friend's", content((ImageBytes = "image/*"), (GuestTogether = "multipart/form-data"))),
    responses(
        (status = 200, description = "The photos the guest is in, best first", body = SearchResult),
        (status = 404, description = "NOT_FOUND: no such link", body = ErrorBody),
        (status = 410, description = "LINK_EXPIRED or LINK_DISABLED", body = ErrorBody),
        (status = 413, description = "IMAGE_TOO_LARGE", body = ErrorBody),
        (status = 422, description = "IMAGE_UNDECODABLE, NO_FACE or SELFIE_UNUSABLE", body = ErrorBody),
        (status = 428, description = "CONSENT_REQUIRED: pass `consent`", body = ErrorBody),
    ),
)]
async fn guest_search(
    State(gw): State<Arc<Gateway>>,
    Path(token): Path<String>,
    Query(q): Query<SearchQuery>,
    request: axum::extract::Request,
) -> ApiResult<Json<SearchResult>> {
    let event = gw.catalog.event_by_share_token(&token).await?;
    let tiers = q.tiers()?;
    let policy_version = q.consent()?;
    crate::faces::check_limit(q.limit)?;
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let people = if multipart {
        use axum::extract::FromRequest;
        let form = axum::extract::Multipart::from_request(request, &())
            .await
            .map_err(|e| {
                Error::invalid(format!("the body is not valid multipart/form-data: {e}"))
            })?;
        let people = faces::read_people(form).await?;
        // A guest looks for themself and at most one friend, by selfies.
        if people.len() > 2 || people.iter().any(|p| !p.faces.is_empty()) {
            return Err(Error::invalid_field(
                "together.0",
                "a guest sends a selfie and at most one friend's selfie (together.0)",
            )
            .into());
        }
        crate::faces::check_people(&people, crate::api::person_field)?;
        people
    } else {
        // Bounded by `selfie_bodies` (max_selfie_bytes).
        let body = selfies::read(request.into_body(), gw.config.max_selfie_bytes).await?;
        vec![Person {
            selfies: vec![body],
            faces: Vec::new(),
        }]
    };
    let consent = policy_version.map(|v| (v, Channel::GuestLink));
    let result = gw.search(&event, people, q.limit, tiers, consent).await?;
    Ok(Json(SearchResult::new(&result, Some(&token))))
}

/// POST the selfie as the raw request body: every face of the event that
/// matches is deleted; the answer is the receipt.
#[utoipa::path(
    post,
    path = "/api/v1/guest/{token}/forget",
    tag = "guest",
    operation_id = "guest_forget",
    summary = "Forget me: delete the guest's faces from the event",
    params(("token" = String, Path, description = "The event's share token (from its guest link)", pattern = r"^[!-~]{1,256}$")),
    request_body(description = "A selfie of the guest", content((ImageBytes = "image/*"))),
    responses(
        (status = 200, description = "The receipt", body = Forgotten),
        (status = 404, description = "NOT_FOUND: no such link", body = ErrorBody),
        (status = 410, description = "LINK_EXPIRED or LINK_DISABLED", body = ErrorBody),
        (status = 422, description = "IMAGE_UNDECODABLE, NO_FACE or SELFIE_UNUSABLE", body = ErrorBody),
    ),
)]
async fn guest_forget(
    State(gw): State<Arc<Gateway>>,
    Path(token): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Forgotten>> {
    let event = gw.catalog.event_by_share_token(&token).await?;
    let (faces_deleted, photo_ids) = gw.forget_guest(&event, body, "guest").await?;
    Ok(Json(Forgotten {
        faces_deleted,
        photo_ids,
    }))
}

fn sniff_content_type(bytes: &[u8]) -> &'static str {
    facepass_core::media::image_type(bytes).unwrap_or("application/octet-stream")
}

#[utoipa::path(
    get,
    path = "/api/v1/guest/{token}/photos/{photo_id}",
    tag = "guest",
    operation_id = "guest_photo",
    summary = "A photo of the event: a preview, or the original (indexed photos only)",
    params(("token" = String, Path, description = "The event's share token (from its guest link)", pattern = r"^[!-~]{1,256}$"), ("photo_id" = Uuid, Path), ImageQuery),
    responses(
        (status = 200, description = "The photo as uploaded", content((ImageBytes = "image/*"), (ImageBytes = "application/octet-stream"))),
        (status = 404, description = "NOT_FOUND", body = ErrorBody),
        (status = 410, description = "LINK_EXPIRED or LINK_DISABLED", body = ErrorBody),
    ),
)]
async fn guest_photo(
    State(gw): State<Arc<Gateway>>,
    Path((token, photo_id)): Path<(String, String)>,
    Query(q): Query<ImageQuery>,
) -> ApiResult<Response> {
    let size = q.size()?;
    let event = gw.catalog.event_by_share_token(&token).await?;
    let photo_id = parse_id("photo_id", &photo_id)?;
    let bytes = gw.photo_bytes(&event, photo_id, size).await?;
    Ok(image_response(bytes))
}

/// "Download all": the originals as one ZIP, streamed.
#[utoipa::path(
    post,
    path = "/api/v1/guest/{token}/download",
    tag = "guest",
    operation_id = "guest_download",
    summary = "Download photos' originals as one ZIP archive (streamed)",
    description = "The photos are a search's `photo_id`s; each must be an indexed photo of \
        the event. Entries are named by the uploaded file names (made unique). The archive \
        is written as it is sent, so memory does not grow with its size.",
    params(("token" = String, Path, description = "The event's share token (from its guest link)", pattern = r"^[!-~]{1,256}$")),
    request_body(content((DownloadBody = "application/json"), (DownloadBody = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "The ZIP archive", content_type = "application/zip", body = ImageBytes),
        (status = 404, description = "NOT_FOUND: no such link, or a photo that is not an indexed photo of the event", body = ErrorBody),
        (status = 410, description = "LINK_EXPIRED or LINK_DISABLED", body = ErrorBody),
    ),
)]
async fn guest_download(
    State(gw): State<Arc<Gateway>>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let event = gw.catalog.event_by_share_token(&token).await?;
    // A form (the page's "download all": the browser saves the answer to
    // disk as it arrives) or JSON (a program).
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let wanted = if form {
        DownloadBody {
            photo_ids: form_values(&body, "photo_ids")?,
        }
    } else {
        json_body(&body, "{\"photo_ids\": [...]}")?
    };
    if wanted.photo_ids.is_empty() || wanted.photo_ids.len() > model::MAX_DOWNLOAD {
        return Err(Error::invalid_field(
            "photo_ids",
            format!("photo_ids holds 1 to {} ids", model::MAX_DOWNLOAD),
        )
        .into());
    }
    let mut ids = Vec::with_capacity(wanted.photo_ids.len());
    for id in &wanted.photo_ids {
        let id = parse_id("photo_ids", id)?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let stream = gw.zip_originals(&event, &ids).await?;
    let file = format!(
        "{}.zip",
        crate::zip::entry_name(Some(&event.name), "photos", &mut Default::default())
    );
    let disposition = format!(
        "attachment; filename=\"photos.zip\"; filename*=UTF-8''{}",
        percent_encode(&file)
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}

/// The values of `name` in an `application/x-www-form-urlencoded` body.
fn form_values(body: &[u8], name: &str) -> Result<Vec<String>, Error> {
    let text = std::str::from_utf8(body).map_err(|_| Error::invalid("the form is not UTF-8"))?;
    let decode = |part: &str| -> Result<String, Error> {
        let bytes = part.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' => {
                    let byte = bytes
                        .get(i + 1..i + 3)
                        .and_then(|h| std::str::from_utf8(h).ok())
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                        .ok_or_else(|| Error::invalid("the form has a bad %-escape"))?;
                    out.push(byte);
                    i += 2;
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8(out).map_err(|_| Error::invalid("the form is not UTF-8"))
    };
    let mut values = Vec::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if decode(key)? == name {
            values.push(decode(value)?);
        }
    }
    Ok(values)
}

/// RFC 5987 value: everything but unreserved characters percent-encoded.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An image answer: its type sniffed from its bytes, cacheable by the
/// browser only, never guessed as anything else.
pub(crate) fn image_response(bytes: Bytes) -> Response {
    (
        [
            (header::CONTENT_TYPE, sniff_content_type(&bytes)),
            (header::CACHE_CONTROL, "private, max-age=3600"),
            // A browser must never guess another type (HTML, script).
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        bytes,
    )
        .into_response()
}

/// A JSON body, or INVALID_ARGUMENT naming the shape expected.
pub(crate) fn json_body<T: serde::de::DeserializeOwned>(
    bytes: &Bytes,
    shape: &str,
) -> Result<T, Error> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::invalid(format!("body must be JSON {shape}: {e}")))
}

#[utoipa::path(
    post,
    path = "/api/v1/events",
    tag = "events",
    operation_id = "create_event",
    summary = "Create an event (idempotent on external_id)",
    request_body = NewEvent,
    responses(
        (status = 201, description = "Created", body = Event),
        (status = 200, description = "A repeated request: the event as it is now", body = Event),
    ),
    security(("api_key" = ["upload"])),
)]
async fn create_event(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Event>)> {
    let studio = studio(&gw, &headers, Scope::Upload).await?;
    let new: NewEvent = json_body(&body, "{\"name\": ...}")?;
    let (event, created) = gw
        .create_event(studio, &new.name, &new.external_id, new.retain_until)
        .await?;
    if created {
        return Ok((
            StatusCode::CREATED,
            Json(Event::new(&event, &EventCounts::default())),
        ));
    }
    // A repeated request: 200 with the event as it is now.
    let (event, counts) = gw.event_with_counts(studio, event.id).await?;
    Ok((StatusCode::OK, Json(Event::new(&event, &counts))))
}

#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "events",
    operation_id = "list_events",
    summary = "The studio's events, newest first",
    params(EventPageQuery),
    responses((status = 200, description = "A page of events", body = EventPage)),
    security(("api_key" = ["read"])),
)]
async fn list_events(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Query(q): Query<EventPageQuery>,
) -> ApiResult<Json<EventPage>> {
    let studio = studio(&gw, &headers, Scope::Read).await?;
    let events = gw
        .list_events(studio, PageRequest::new(q.page_size, &q.page_token))
        .await?;
    Ok(Json(EventPage {
        events: events.items.iter().map(|(e, c)| Event::new(e, c)).collect(),
        next_page_token: events.next_page_token,
    }))
}

#[utoipa::path(
    get,
    path = "/api/v1/events/{event_id}",
    tag = "events",
    operation_id = "get_event",
    summary = "An event with its counts",
    params(("event_id" = Uuid, Path)),
    responses(
        (status = 200, description = "The event", body = Event),
        (status = 404, description = "NOT_FOUND", body = ErrorBody),
    ),
    security(("api_key" = ["read"])),
)]
async fn get_event(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(event_id): Path<String>,
) -> ApiResult<Json<Event>> {
    let studio = studio(&gw, &headers, Scope::Read).await?;
    let event_id = parse_id("event_id", &event_id)?;
    let (event, counts) = gw.event_with_counts(studio, event_id).await?;
    Ok(Json(Event::new(&event, &counts)))
}

#[utoipa::path(
    delete,
    path = "/api/v1/events/{event_id}",
    tag = "events",
    operation_id = "delete_event",
    summary = "Delete an event: its photos, faces and objects",
    params(("event_id" = Uuid, Path)),
    responses(
        (status = 200, description = "What was deleted", body = Deleted),
        (status = 404, description = "NOT_FOUND", body = ErrorBody),
    ),
    security(("api_key" = ["upload"])),
)]
async fn delete_event(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(event_id): Path<String>,
) -> ApiResult<Json<Deleted>> {
    let caller = caller(&gw, &headers, Scope::Upload).await?;
    let event_id = parse_id("event_id", &event_id)?;
    let (photos, faces) = gw
        .delete_event(caller.studio, event_id, &caller.actor())
        .await?;
    Ok(Json(Deleted {
        photos_deleted: Some(photos),
        faces_deleted: faces,
    }))
}

/// POST the photo as the raw request body.
#[utoipa::path(
    post,
    path = "/api/v1/events/{event_id}/photos",
    tag = "photos",
    operation_id = "upload_photo",
    summary = "Upload a photo for indexing (idempotent on external_id)",
    description = "The photo is the raw body, streamed to storage as it arrives; a \
        declared Content-Length over the limit is refused before a byte is read.",
    params(("event_id" = Uuid, Path), UploadQuery),
    request_body(description = "The photo", content((ImageBytes = "image/*"))),
    responses(
        (status = 202, description = "Accepted for indexing", body = Photo),
        (status = 200, description = "A repeated upload of the same photo", body = Photo),
        (status = 404, description = "NOT_FOUND", body = ErrorBody),
        (status = 409, description = "ALREADY_EXISTS: external_id names another photo", body = ErrorBody),
        (status = 413, description = "IMAGE_TOO_LARGE", body = ErrorBody),
        (status = 422, description = "IMAGE_UNDECODABLE: not an image", body = ErrorBody),
    ),
    security(("api_key" = ["upload"])),
)]
async fn upload_photo(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(event_id): Path<String>,
    Query(q): Query<UploadQuery>,
    body: axum::body::Body,
) -> ApiResult<(StatusCode, Json<Photo>)> {
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
        priority: Priority::from_text(&q.priority, Priority::Live)?,
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
    Ok((status, Json(Photo::from(&photo))))
}

/// `GET /api/v1/events/{id}/watch`: Server-Sent Events, `progress` (the
/// counts and `completed`) and `photo` (a photo just indexed or failed),
/// the same as gRPC WatchEvent; an `error` event when the event is deleted.
#[utoipa::path(
    get,
    path = "/api/v1/events/{event_id}/watch",
    tag = "photos",
    operation_id = "watch_event",
    summary = "Follow indexing as Server-Sent Events",
    description = "`progress` events carry a `Progress` (sent first and on every \
        change), `photo` events a `Photo` just indexed or failed, and an `error` event \
        an `ErrorBody` when the event is deleted. The stream stays open; keep-alive \
        comments keep proxies from closing it.",
    params(("event_id" = Uuid, Path)),
    responses(
        (status = 200, description = "The stream", content_type = "text/event-stream", body = String),
        (status = 404, description = "NOT_FOUND", body = ErrorBody),
    ),
    security(("api_key" = ["read"])),
)]
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
                Sse::default().event("progress").json_data(Progress {
                    photos: (&counts).into(),
                    faces: counts.faces,
                    completed,
                })
            }
            Ok(crate::watch::Update::Photo(photo)) => Sse::default()
                .event("photo")
                .json_data(Photo::from(photo.as_ref())),
            Err(e) => Sse::default().event("error").json_data(ErrorBody {
                error: ErrorObject::from(e),
            }),
        };
        Ok::<_, std::convert::Infallible>(event.unwrap_or_else(|_| Sse::default()))
    });
    // The deadline middleware would cut a long watch: the stream lives on
    // its own; keep-alives keep proxies from closing it.
    Ok(axum::response::sse::Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// `POST /api/v1/events/{id}/photos/register` with `{"items": [{"object_key",
/// "external_id"?, "file_name"?}, ...]}` (1 to 1,000): one result per item,
/// `{"photo": ..., "created": bool}` or `{"error": {...}}`.
#[utoipa::path(
    post,
    path = "/api/v1/events/{event_id}/photos/register",
    tag = "photos",
    operation_id = "register_photos",
    summary = "Register up to 1,000 photos already in the object store",
    params(("event_id" = Uuid, Path)),
    request_body = RegisterBody,
    responses(
        (status = 200, description = "One result per item, in order", body = RegisterResults),
        (status = 404, description = "NOT_FOUND", body = ErrorBody),
    ),
    security(("api_key" = ["upload"])),
)]
async fn register_photos(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(event_id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<RegisterResults>> {
    let studio = studio(&gw, &headers, Scope::Upload).await?;
    let event_id = parse_id("event_id", &event_id)?;
    let body: RegisterBody = json_body(&body, "{\"items\": [{\"object_key\": ...}]}")?;
    let priority = Priority::from_text(&body.priority, Priority::Bulk)?;
    let items: Vec<NewRegistration<'_>> = body
        .items
        .iter()
        .map(|i| NewRegistration {
            external_id: &i.external_id,
            object_key: &i.object_key,
            file_name: &i.file_name,
            priority,
        })
        .collect();
    let results = gw.register_many(studio, event_id, &items).await?;
    Ok(Json(RegisterResults {
        results: results
            .into_iter()
            .map(|r| match r {
                Ok((photo, created)) => RegisterResult::Registered {
                    photo: Box::new(Photo::from(&photo)),
                    created,
                },
                Err(e) => RegisterResult::Refused { error: e.into() },
            })
            .collect(),
    }))
}

#[utoipa::path(
    get,
    path = "/api/v1/events/{event_id}/photos",
    tag = "photos",
    operation_id = "list_photos",
    summary = "The event's photos, oldest first",
    params(("event_id" = Uuid, Path), PhotoPageQuery),
    responses(
        (status = 200, description = "A page of photos", body = PhotoPage),
        (status = 404, description = "NOT_FOUND", body = ErrorBody),
    ),
    security(("api_key" = ["read"])),
)]
async fn list_photos(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(event_id): Path<String>,
    Query(q): Query<PhotoPageQuery>,
) -> ApiResult<Json<PhotoPage>> {
    let studio = studio(&gw, &headers, Scope::Read).await?;
    let event_id = parse_id("event_id", &event_id)?;
    let status = match q.status.as_str() {
        "" => None,
        s @ ("pending" | "retrying" | "indexed" | "failed") => Some(s),
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
    Ok(Json(PhotoPage {
        photos: photos.items.iter().map(Photo::from).collect(),
        next_page_token: photos.next_page_token,
    }))
}

#[cfg(test)]
mod form_tests {
    #[test]
    fn form_values_are_decoded_and_bad_escapes_refused() {
        let body = b"photo_ids=a-1&other=x&photo_ids=b%2D2&photo_ids=c+d&empty";
        assert_eq!(
            super::form_values(body, "photo_ids").unwrap(),
            vec!["a-1", "b-2", "c d"]
        );
        assert!(super::form_values(b"photo_ids=%zz", "photo_ids").is_err());
        assert!(super::form_values(b"photo_ids=%4", "photo_ids").is_err());
        assert!(super::form_values(b"photo_ids=%ff%fe", "photo_ids").is_err());
        assert!(super::form_values(b"", "photo_ids").unwrap().is_empty());
    }
}
