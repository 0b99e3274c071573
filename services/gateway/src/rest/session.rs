//! `/api/v1/session`: the studio dashboard's sign-in (an API key exchanged
//! for an HttpOnly cookie), the current session with its CSRF token, and
//! sign-out. See `crate::sessions`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use facepass_core::{Error, ErrorCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::model::ErrorBody;
use super::{json_body, ApiResult};
use crate::domain::Gateway;
use crate::keys::Caller;
use crate::sessions;

/// `POST /api/v1/session`.
#[derive(Deserialize, ToSchema)]
pub struct SignIn {
    /// A studio API key (`fp_...`); it is not kept in the browser.
    pub api_key: String,
}

/// The signed-in studio, and the token changing requests repeat.
#[derive(Serialize, ToSchema)]
pub struct Session {
    pub studio_id: Uuid,
    pub studio_name: String,
    /// The key's prefix, to tell keys apart.
    pub key_prefix: String,
    pub scopes: Vec<String>,
    /// Send as `X-CSRF-Token` with every request that changes something.
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

async fn describe(
    gw: &Gateway,
    caller: &Caller,
    token: &str,
    expires_at: DateTime<Utc>,
) -> ApiResult<Session> {
    let studio_name = gw.catalog.studio(caller.studio).await?.name;
    Ok(Session {
        studio_id: caller.studio,
        studio_name,
        key_prefix: caller.prefix.clone(),
        scopes: caller
            .scopes
            .iter()
            .map(|s| s.as_str().to_string())
            .collect(),
        csrf_token: sessions::csrf_token(token),
        expires_at,
    })
}

fn session_token(headers: &HeaderMap) -> Option<&str> {
    sessions::from_cookie_header(headers.get(header::COOKIE).and_then(|v| v.to_str().ok()))
}

#[utoipa::path(
    post,
    path = "/api/v1/session",
    tag = "session",
    operation_id = "sign_in",
    summary = "Sign in to the dashboard: an API key for a session cookie",
    description = "Answers with `Set-Cookie: fp_session=…; HttpOnly; SameSite=Strict` and \
        the session, whose `csrf_token` the page sends as `X-CSRF-Token` on every request \
        that changes something.",
    request_body = SignIn,
    responses(
        (status = 201, description = "Signed in", body = Session),
        (status = 401, description = "UNAUTHENTICATED: unknown or revoked key", body = ErrorBody),
        (status = 403, description = "PERMISSION_DENIED: the studio is disabled", body = ErrorBody),
    ),
)]
pub async fn sign_in(State(gw): State<Arc<Gateway>>, body: Bytes) -> ApiResult<Response> {
    let SignIn { api_key } = json_body(&body, "{\"api_key\": ...}")?;
    let api_key = api_key.trim();
    if api_key.is_empty() {
        return Err(Error::invalid_field("api_key", "api_key is required").into());
    }
    facepass_core::text::token("api_key", api_key, facepass_core::text::MAX_TOKEN_CHARS)?;
    let caller = gw.catalog.authenticate(api_key).await?;
    let (token, expires_at) = gw.catalog.open_session(&caller).await?;
    let session = describe(&gw, &caller, &token, expires_at).await?;
    Ok((
        StatusCode::CREATED,
        [
            (
                header::SET_COOKIE,
                sessions::set_cookie(&token, gw.config.secure_cookies),
            ),
            (header::CACHE_CONTROL, "no-store".into()),
        ],
        Json(session),
    )
        .into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/session",
    tag = "session",
    operation_id = "current_session",
    summary = "The dashboard's session (from its cookie)",
    responses(
        (status = 200, description = "The session", body = Session),
        (status = 401, description = "UNAUTHENTICATED: no session, or it has ended", body = ErrorBody),
    ),
)]
pub async fn current(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> ApiResult<Response> {
    let token = session_token(&headers)
        .ok_or_else(|| Error::new(ErrorCode::Unauthenticated, "not signed in"))?;
    let (caller, expires_at) = gw.catalog.session(token).await?;
    let session = describe(&gw, &caller, token, expires_at).await?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(session)).into_response())
}

#[utoipa::path(
    delete,
    path = "/api/v1/session",
    tag = "session",
    operation_id = "sign_out",
    summary = "Sign out: the session ends and the cookie is removed",
    responses((status = 204, description = "Signed out")),
)]
pub async fn sign_out(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> ApiResult<Response> {
    if let Some(token) = session_token(&headers) {
        gw.catalog.close_session(token).await?;
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(
            header::SET_COOKIE,
            sessions::clear_cookie(gw.config.secure_cookies),
        )],
    )
        .into_response())
}
