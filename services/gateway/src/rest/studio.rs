//! REST routes for the studio's remaining facepass.v1 operations (an API
//! key with the same scope as the gRPC call): one photo, the studio's own
//! "forget me", share links, retention, the audit log and webhooks.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use facepass_core::{parse_id, Error};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{caller, event_json, photo_json, studio, ApiResult};
use crate::domain::{Gateway, PageRequest};
use crate::keys::Scope;

fn body<T: serde::de::DeserializeOwned>(bytes: &Bytes, shape: &str) -> Result<T, Error> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::invalid(format!("body must be JSON {shape}: {e}")))
}

async fn event_now(
    gw: &Gateway,
    studio: uuid::Uuid,
    event_id: uuid::Uuid,
) -> ApiResult<Json<Value>> {
    let (event, counts) = gw.event_with_counts(studio, event_id).await?;
    Ok(Json(event_json(&event, &counts)))
}

/// `GET /api/v1/photos/{photo_id}`
pub async fn get_photo(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(photo_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let studio = studio(&gw, &headers, Scope::Read).await?;
    let photo_id = parse_id("photo_id", &photo_id)?;
    Ok(Json(photo_json(
        &gw.catalog.get_photo(studio, photo_id).await?,
    )))
}

/// `DELETE /api/v1/photos/{photo_id}`
pub async fn delete_photo(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(photo_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let caller = caller(&gw, &headers, Scope::Upload).await?;
    let photo_id = parse_id("photo_id", &photo_id)?;
    let faces = gw
        .delete_photo(caller.studio, photo_id, &caller.actor())
        .await?;
    Ok(Json(json!({"faces_deleted": faces})))
}

/// `POST /api/v1/events/{event_id}/forget`: the selfie as the raw body; the
/// studio's "forget me" for a guest (ForgetGuest).
pub async fn forget_guest(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(event_id): Path<String>,
    selfie: Bytes,
) -> ApiResult<Json<Value>> {
    let caller = caller(&gw, &headers, Scope::Search).await?;
    let event_id = parse_id("event_id", &event_id)?;
    let event = gw.catalog.get_event(caller.studio, event_id).await?;
    let (faces, photos) = gw.forget_guest(&event, selfie, &caller.actor()).await?;
    Ok(Json(json!({"faces_deleted": faces, "photo_ids": photos})))
}

/// `POST /api/v1/events/{event_id}/share-link/rotate`
pub async fn rotate_share_link(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(event_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let studio = studio(&gw, &headers, Scope::Admin).await?;
    let event_id = parse_id("event_id", &event_id)?;
    gw.catalog.rotate_share_token(studio, event_id).await?;
    event_now(&gw, studio, event_id).await
}

#[derive(Deserialize)]
struct ShareLink {
    enabled: bool,
    #[serde(default)]
    expires_at: Option<DateTime<Utc>>,
}

/// `PUT /api/v1/events/{event_id}/share-link` with `{"enabled": bool,
/// "expires_at": RFC 3339 or null}`
pub async fn update_share_link(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(event_id): Path<String>,
    bytes: Bytes,
) -> ApiResult<Json<Value>> {
    let studio = studio(&gw, &headers, Scope::Admin).await?;
    let event_id = parse_id("event_id", &event_id)?;
    let link: ShareLink = body(&bytes, "{\"enabled\": bool, \"expires_at\": ...}")?;
    gw.catalog
        .update_share_link(studio, event_id, link.enabled, link.expires_at)
        .await?;
    event_now(&gw, studio, event_id).await
}

#[derive(Deserialize)]
struct Retention {
    #[serde(default)]
    retain_until: Option<DateTime<Utc>>,
}

/// `PUT /api/v1/events/{event_id}/retention` with `{"retain_until": RFC 3339 or null}`
pub async fn set_retention(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(event_id): Path<String>,
    bytes: Bytes,
) -> ApiResult<Json<Value>> {
    let studio = studio(&gw, &headers, Scope::Upload).await?;
    let event_id = parse_id("event_id", &event_id)?;
    let r: Retention = body(&bytes, "{\"retain_until\": ...}")?;
    gw.catalog
        .set_retention(studio, event_id, r.retain_until)
        .await?;
    event_now(&gw, studio, event_id).await
}

#[derive(Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    page_size: u32,
    #[serde(default)]
    page_token: String,
}

/// `GET /api/v1/audit?page_size=&page_token=`: newest first.
pub async fn audit_log(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<Value>> {
    let studio = studio(&gw, &headers, Scope::Read).await?;
    let page = gw
        .audit_page(studio, PageRequest::new(q.page_size, &q.page_token))
        .await?;
    Ok(Json(json!({
        "entries": page.items.iter().map(|r| json!({
            "at": r.at, "actor": r.actor, "action": r.action,
            "event_id": r.event_id, "photo_id": r.photo_id, "counts": r.counts,
        })).collect::<Vec<_>>(),
        "next_page_token": page.next_page_token,
    })))
}

#[derive(Deserialize)]
struct NewWebhook {
    url: String,
    #[serde(default)]
    events: Vec<String>,
}

fn webhook_json(hook: &crate::webhooks::WebhookRow) -> Value {
    json!({"id": hook.id, "url": hook.url, "events": hook.events, "created_at": hook.created_at})
}

/// `POST /api/v1/webhooks` with `{"url", "events"?}` → 201 with the secret (once).
pub async fn create_webhook(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let studio = studio(&gw, &headers, Scope::Admin).await?;
    let new: NewWebhook = body(&bytes, "{\"url\": ..., \"events\": [...]}")?;
    let hook = gw
        .catalog
        .create_webhook(studio, &new.url, &new.events, gw.config.webhook_allow_http)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"webhook": webhook_json(&hook), "secret": hook.secret})),
    ))
}

/// `GET /api/v1/webhooks`
pub async fn list_webhooks(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let studio = studio(&gw, &headers, Scope::Admin).await?;
    let hooks = gw.catalog.list_webhooks(studio).await?;
    Ok(Json(
        json!({"webhooks": hooks.iter().map(webhook_json).collect::<Vec<_>>()}),
    ))
}

/// `DELETE /api/v1/webhooks/{webhook_id}`
pub async fn delete_webhook(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let studio = studio(&gw, &headers, Scope::Admin).await?;
    let id = parse_id("webhook_id", &id)?;
    gw.catalog.delete_webhook(studio, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn delivery_json(d: &crate::webhooks::DeliveryRow) -> Value {
    json!({
        "id": d.id, "webhook_id": d.webhook_id, "event_type": d.event_type, "body": d.body,
        "state": d.state, "attempts": d.attempts, "last_status": d.last_status,
        "last_error": d.last_error, "created_at": d.created_at,
        "next_attempt_at": (d.state == "pending").then_some(d.next_attempt_at),
        "delivered_at": d.delivered_at,
    })
}

/// `GET /api/v1/webhooks/{webhook_id}/deliveries`: the newest 100.
pub async fn list_deliveries(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let studio = studio(&gw, &headers, Scope::Admin).await?;
    let id = parse_id("webhook_id", &id)?;
    let rows = gw.catalog.list_deliveries(studio, id, 100).await?;
    Ok(Json(
        json!({"deliveries": rows.iter().map(delivery_json).collect::<Vec<_>>()}),
    ))
}

/// `POST /api/v1/deliveries/{delivery_id}/replay`
pub async fn replay_delivery(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let studio = studio(&gw, &headers, Scope::Admin).await?;
    let id = parse_id("delivery_id", &id)?;
    let row = gw.catalog.replay_delivery(studio, id).await?;
    Ok((StatusCode::ACCEPTED, Json(delivery_json(&row))))
}
