//! REST routes for the studio's remaining facepass.v1 operations (an API
//! key with the same scope as the gRPC call): one photo, the studio's own
//! "forget me", share links, retention, the audit log and webhooks.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use bytes::Bytes;
use facepass_core::parse_id;
use uuid::Uuid;

use super::model::{
    AuditEntry, AuditPage, AuditQuery, Branding, BrandingBody, CreatedWebhook, Deleted, Deliveries,
    Delivery, ErrorBody, Event, EventEdit, Forgotten, ImageBytes, ImageQuery, NewWebhook, Photo,
    Requeued, Retention, RetryFailedBody, ShareLink, Webhook, Webhooks,
};
use super::{caller, json_body, studio, ApiResult};
use crate::domain::{Gateway, PageRequest};
use crate::keys::Scope;

async fn event_now(gw: &Gateway, studio: Uuid, event_id: Uuid) -> ApiResult<Json<Event>> {
    let (event, counts) = gw.event_with_counts(studio, event_id).await?;
    Ok(Json(Event::new(&event, &counts)))
}

#[utoipa::path(
    get,
    path = "/api/v1/photos/{photo_id}",
    tag = "photos",
    operation_id = "get_photo",
    summary = "A photo's record",
    params(("photo_id" = Uuid, Path)),
    responses(
        (status = 200, description = "The photo", body = Photo),
        (status = 404, description = "NOT_FOUND", body = ErrorBody),
    ),
    security(("api_key" = ["read"])),
)]
pub async fn get_photo(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(photo_id): Path<String>,
) -> ApiResult<Json<Photo>> {
    let studio = studio(&gw, &headers, Scope::Read).await?;
    let photo_id = parse_id("photo_id", &photo_id)?;
    Ok(Json(Photo::from(
        &gw.catalog.get_photo(studio, photo_id).await?,
    )))
}

#[utoipa::path(
    get,
    path = "/api/v1/photos/{photo_id}/image",
    tag = "photos",
    operation_id = "photo_image",
    summary = "A photo's preview (made while indexing) or its original",
    params(("photo_id" = Uuid, Path), ImageQuery),
    responses(
        (status = 200, description = "The image", content((ImageBytes = "image/*"), (ImageBytes = "application/octet-stream"))),
        (status = 404, description = "NOT_FOUND", body = ErrorBody),
    ),
    security(("api_key" = ["read"])),
)]
pub async fn photo_image(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(photo_id): Path<String>,
    Query(q): Query<ImageQuery>,
) -> ApiResult<axum::response::Response> {
    let size = q.size()?;
    let studio = studio(&gw, &headers, Scope::Read).await?;
    let photo_id = parse_id("photo_id", &photo_id)?;
    let photo = gw.catalog.get_photo(studio, photo_id).await?;
    Ok(super::image_response(gw.photo_image(&photo, size).await?))
}

#[utoipa::path(
    delete,
    path = "/api/v1/photos/{photo_id}",
    tag = "photos",
    operation_id = "delete_photo",
    summary = "Delete a photo, its faces and its object",
    params(("photo_id" = Uuid, Path)),
    responses(
        (status = 200, description = "What was deleted", body = Deleted),
        (status = 404, description = "NOT_FOUND", body = ErrorBody),
    ),
    security(("api_key" = ["upload"])),
)]
pub async fn delete_photo(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(photo_id): Path<String>,
) -> ApiResult<Json<Deleted>> {
    let caller = caller(&gw, &headers, Scope::Upload).await?;
    let photo_id = parse_id("photo_id", &photo_id)?;
    let faces = gw
        .delete_photo(caller.studio, photo_id, &caller.actor())
        .await?;
    Ok(Json(Deleted {
        photos_deleted: None,
        faces_deleted: faces,
    }))
}

#[utoipa::path(
    post,
    path = "/api/v1/photos/{photo_id}/retry",
    tag = "photos",
    operation_id = "retry_photo",
    summary = "Index a failed photo again",
    description = "A failed photo goes back to `pending` and is indexed again; a photo still pending or retrying is returned as it is.",
    params(("photo_id" = Uuid, Path)),
    responses(
        (status = 202, description = "Queued for indexing", body = Photo),
        (status = 200, description = "Already waiting for indexing", body = Photo),
        (status = 400, description = "INVALID_ARGUMENT: the photo is indexed", body = ErrorBody),
        (status = 404, description = "NOT_FOUND", body = ErrorBody),
    ),
    security(("api_key" = ["upload"])),
)]
pub async fn retry_photo(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(photo_id): Path<String>,
) -> ApiResult<(StatusCode, Json<Photo>)> {
    let studio = studio(&gw, &headers, Scope::Upload).await?;
    let photo_id = parse_id("photo_id", &photo_id)?;
    let (photo, queued) = gw.retry_photo(studio, photo_id).await?;
    let status = if queued {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(Photo::from(&photo))))
}

#[utoipa::path(
    post,
    path = "/api/v1/events/{event_id}/retry-failed",
    tag = "photos",
    operation_id = "retry_failed_photos",
    summary = "Index the event's failed photos again",
    description = "Every failed photo of the event, or only those that failed with `failure_code`, goes back to `pending`.",
    params(("event_id" = Uuid, Path)),
    request_body(content = RetryFailedBody, description = "`{}` retries every failed photo; `failure_code` only those that failed with it"),
    responses(
        (status = 200, description = "How many photos were queued", body = Requeued),
        (status = 400, description = "INVALID_ARGUMENT: not an error code", body = ErrorBody),
        (status = 404, description = "NOT_FOUND", body = ErrorBody),
    ),
    security(("api_key" = ["upload"])),
)]
pub async fn retry_failed(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(event_id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Requeued>> {
    let studio = studio(&gw, &headers, Scope::Upload).await?;
    let event_id = parse_id("event_id", &event_id)?;
    let filter: RetryFailedBody = json_body(&body, r#"{} or {"failure_code": "..."}"#)?;
    let photos_requeued = gw
        .retry_failed(studio, event_id, filter.failure_code)
        .await?;
    Ok(Json(Requeued { photos_requeued }))
}

/// The selfie as the raw body; the studio's "forget me" for a guest.
#[utoipa::path(
    post,
    path = "/api/v1/events/{event_id}/forget",
    tag = "privacy",
    operation_id = "forget_guest",
    summary = "Forget a guest: delete every face of the event that matches the selfie",
    description = "The faces stay suppressed: a photo indexed again never brings them back.",
    params(("event_id" = Uuid, Path)),
    request_body(description = "A selfie of the guest", content((ImageBytes = "image/*"))),
    responses(
        (status = 200, description = "The receipt", body = Forgotten),
        (status = 404, description = "NOT_FOUND", body = ErrorBody),
        (status = 422, description = "IMAGE_UNDECODABLE, NO_FACE or SELFIE_UNUSABLE", body = ErrorBody),
    ),
    security(("api_key" = ["search"])),
)]
pub async fn forget_guest(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(event_id): Path<String>,
    selfie: Bytes,
) -> ApiResult<Json<Forgotten>> {
    let caller = caller(&gw, &headers, Scope::Search).await?;
    let event_id = parse_id("event_id", &event_id)?;
    let event = gw.catalog.get_event(caller.studio, event_id).await?;
    let (faces_deleted, photo_ids) = gw.forget_guest(&event, selfie, &caller.actor()).await?;
    Ok(Json(Forgotten {
        faces_deleted,
        photo_ids,
    }))
}

#[utoipa::path(
    post,
    path = "/api/v1/events/{event_id}/share-link/rotate",
    tag = "privacy",
    operation_id = "rotate_share_link",
    summary = "A new share token: the old link stops working at once",
    params(("event_id" = Uuid, Path)),
    responses(
        (status = 200, description = "The event with its new link", body = Event),
        (status = 404, description = "NOT_FOUND", body = ErrorBody),
    ),
    security(("api_key" = ["admin"])),
)]
pub async fn rotate_share_link(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(event_id): Path<String>,
) -> ApiResult<Json<Event>> {
    let studio = studio(&gw, &headers, Scope::Admin).await?;
    let event_id = parse_id("event_id", &event_id)?;
    gw.catalog.rotate_share_token(studio, event_id).await?;
    event_now(&gw, studio, event_id).await
}

#[utoipa::path(
    put,
    path = "/api/v1/events/{event_id}/share-link",
    tag = "privacy",
    operation_id = "update_share_link",
    summary = "Turn the share link on or off, or let it expire",
    params(("event_id" = Uuid, Path)),
    request_body = ShareLink,
    responses(
        (status = 200, description = "The event", body = Event),
        (status = 404, description = "NOT_FOUND", body = ErrorBody),
    ),
    security(("api_key" = ["admin"])),
)]
pub async fn update_share_link(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(event_id): Path<String>,
    bytes: Bytes,
) -> ApiResult<Json<Event>> {
    let studio = studio(&gw, &headers, Scope::Admin).await?;
    let event_id = parse_id("event_id", &event_id)?;
    let link: ShareLink = json_body(&bytes, "{\"enabled\": bool, \"expires_at\": ...}")?;
    gw.catalog
        .update_share_link(studio, event_id, link.enabled, link.expires_at)
        .await?;
    event_now(&gw, studio, event_id).await
}

#[utoipa::path(
    put,
    path = "/api/v1/events/{event_id}/retention",
    tag = "privacy",
    operation_id = "set_retention",
    summary = "When the event is purged (null: kept)",
    params(("event_id" = Uuid, Path)),
    request_body = Retention,
    responses(
        (status = 200, description = "The event", body = Event),
        (status = 404, description = "NOT_FOUND", body = ErrorBody),
    ),
    security(("api_key" = ["upload"])),
)]
pub async fn set_retention(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(event_id): Path<String>,
    bytes: Bytes,
) -> ApiResult<Json<Event>> {
    let studio = studio(&gw, &headers, Scope::Upload).await?;
    let event_id = parse_id("event_id", &event_id)?;
    let r: Retention = json_body(&bytes, "{\"retain_until\": ...}")?;
    gw.catalog
        .set_retention(studio, event_id, r.retain_until)
        .await?;
    event_now(&gw, studio, event_id).await
}

#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "privacy",
    operation_id = "audit_log",
    summary = "The studio's audit log, newest first",
    params(AuditQuery),
    responses((status = 200, description = "A page of entries", body = AuditPage)),
    security(("api_key" = ["read"])),
)]
pub async fn audit_log(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<AuditPage>> {
    let studio = studio(&gw, &headers, Scope::Read).await?;
    let page = gw
        .audit_page(studio, PageRequest::new(q.page_size, &q.page_token))
        .await?;
    Ok(Json(AuditPage {
        entries: page
            .items
            .iter()
            .map(|r| AuditEntry {
                at: r.at,
                actor: r.actor.clone(),
                action: r.action.clone(),
                event_id: r.event_id,
                photo_id: r.photo_id,
                counts: r.counts.clone(),
            })
            .collect(),
        next_page_token: page.next_page_token,
    }))
}

#[utoipa::path(
    post,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    operation_id = "create_webhook",
    summary = "Add an endpoint; the answer holds its signing secret, shown this once",
    request_body = NewWebhook,
    responses((status = 201, description = "Created", body = CreatedWebhook)),
    security(("api_key" = ["admin"])),
)]
pub async fn create_webhook(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> ApiResult<(StatusCode, Json<CreatedWebhook>)> {
    let studio = studio(&gw, &headers, Scope::Admin).await?;
    let new: NewWebhook = json_body(&bytes, "{\"url\": ..., \"events\": [...]}")?;
    let hook = gw
        .catalog
        .create_webhook(studio, &new.url, &new.events, gw.config.webhook_allow_http)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedWebhook {
            webhook: Webhook::from(&hook),
            secret: hook.secret,
        }),
    ))
}

#[utoipa::path(
    get,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    operation_id = "list_webhooks",
    summary = "The studio's endpoints",
    responses((status = 200, description = "The endpoints", body = Webhooks)),
    security(("api_key" = ["admin"])),
)]
pub async fn list_webhooks(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
) -> ApiResult<Json<Webhooks>> {
    let studio = studio(&gw, &headers, Scope::Admin).await?;
    let hooks = gw.catalog.list_webhooks(studio).await?;
    Ok(Json(Webhooks {
        webhooks: hooks.iter().map(Webhook::from).collect(),
    }))
}

#[utoipa::path(
    delete,
    path = "/api/v1/webhooks/{webhook_id}",
    tag = "webhooks",
    operation_id = "delete_webhook",
    summary = "Remove an endpoint and its pending deliveries",
    params(("webhook_id" = Uuid, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "NOT_FOUND", body = ErrorBody),
    ),
    security(("api_key" = ["admin"])),
)]
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

#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{webhook_id}/deliveries",
    tag = "webhooks",
    operation_id = "list_deliveries",
    summary = "The endpoint's newest 100 deliveries",
    params(("webhook_id" = Uuid, Path)),
    responses(
        (status = 200, description = "Deliveries, newest first", body = Deliveries),
        (status = 404, description = "NOT_FOUND", body = ErrorBody),
    ),
    security(("api_key" = ["admin"])),
)]
pub async fn list_deliveries(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<Deliveries>> {
    let studio = studio(&gw, &headers, Scope::Admin).await?;
    let id = parse_id("webhook_id", &id)?;
    let rows = gw.catalog.list_deliveries(studio, id, 100).await?;
    Ok(Json(Deliveries {
        deliveries: rows.iter().map(Delivery::from).collect(),
    }))
}

#[utoipa::path(
    post,
    path = "/api/v1/deliveries/{delivery_id}/replay",
    tag = "webhooks",
    operation_id = "replay_delivery",
    summary = "Send a delivery again, now",
    params(("delivery_id" = Uuid, Path)),
    responses(
        (status = 202, description = "Queued", body = Delivery),
        (status = 404, description = "NOT_FOUND", body = ErrorBody),
    ),
    security(("api_key" = ["admin"])),
)]
pub async fn replay_delivery(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Delivery>)> {
    let studio = studio(&gw, &headers, Scope::Admin).await?;
    let id = parse_id("delivery_id", &id)?;
    let row = gw.catalog.replay_delivery(studio, id).await?;
    Ok((StatusCode::ACCEPTED, Json(Delivery::from(&row))))
}

#[utoipa::path(
    get,
    path = "/api/v1/studio",
    tag = "studio",
    operation_id = "get_branding",
    summary = "The studio's name and what it shows its guests",
    responses((status = 200, description = "The branding", body = Branding)),
    security(("api_key" = ["read"])),
)]
pub async fn get_branding(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
) -> ApiResult<Json<Branding>> {
    let studio = studio(&gw, &headers, Scope::Read).await?;
    Ok(Json(gw.catalog.branding(studio).await?.into()))
}

#[utoipa::path(
    put,
    path = "/api/v1/studio",
    tag = "studio",
    operation_id = "set_branding",
    summary = "Change the studio's name, accent colour or privacy link",
    request_body = BrandingBody,
    responses((status = 200, description = "The branding", body = Branding)),
    security(("api_key" = ["admin"])),
)]
pub async fn set_branding(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> ApiResult<Json<Branding>> {
    let studio = studio(&gw, &headers, Scope::Admin).await?;
    let body: BrandingBody = json_body(&bytes, "{\"name\"?, \"accent_color\"?, \"privacy_url\"?}")?;
    let change = crate::branding::BrandingChange {
        name: body.name.as_deref(),
        accent_color: body.accent_color.as_deref(),
        privacy_url: body.privacy_url.as_deref(),
    };
    Ok(Json(gw.catalog.set_branding(studio, change).await?.into()))
}

#[utoipa::path(
    get,
    path = "/api/v1/studio/logo",
    tag = "studio",
    operation_id = "studio_logo",
    summary = "The studio's logo",
    responses(
        (status = 200, description = "The logo", content((ImageBytes = "image/*"))),
        (status = 404, description = "NOT_FOUND: no logo", body = ErrorBody),
    ),
    security(("api_key" = ["read"])),
)]
pub async fn studio_logo(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
) -> ApiResult<axum::response::Response> {
    let studio = studio(&gw, &headers, Scope::Read).await?;
    Ok(super::image_response(gw.logo(studio).await?))
}

#[utoipa::path(
    put,
    path = "/api/v1/studio/logo",
    tag = "studio",
    operation_id = "set_logo",
    summary = "Upload the studio's logo (PNG, JPEG or WebP, at most 512 KiB)",
    request_body(description = "The logo", content((ImageBytes = "image/*"))),
    responses(
        (status = 200, description = "The branding", body = Branding),
        (status = 413, description = "IMAGE_TOO_LARGE", body = ErrorBody),
        (status = 422, description = "IMAGE_UNDECODABLE: not a PNG, JPEG or WebP", body = ErrorBody),
    ),
    security(("api_key" = ["admin"])),
)]
pub async fn set_logo(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> ApiResult<Json<Branding>> {
    let studio = studio(&gw, &headers, Scope::Admin).await?;
    gw.set_logo(studio, bytes).await?;
    Ok(Json(gw.catalog.branding(studio).await?.into()))
}

#[utoipa::path(
    delete,
    path = "/api/v1/studio/logo",
    tag = "studio",
    operation_id = "delete_logo",
    summary = "Remove the studio's logo",
    responses((status = 200, description = "The branding", body = Branding)),
    security(("api_key" = ["admin"])),
)]
pub async fn delete_logo(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
) -> ApiResult<Json<Branding>> {
    let studio = studio(&gw, &headers, Scope::Admin).await?;
    gw.delete_logo(studio).await?;
    Ok(Json(gw.catalog.branding(studio).await?.into()))
}

#[utoipa::path(
    patch,
    path = "/api/v1/events/{event_id}",
    tag = "events",
    operation_id = "edit_event",
    summary = "Rename an event or set its date",
    params(("event_id" = Uuid, Path)),
    request_body = EventEdit,
    responses(
        (status = 200, description = "The event", body = Event),
        (status = 404, description = "NOT_FOUND", body = ErrorBody),
    ),
    security(("api_key" = ["upload"])),
)]
pub async fn edit_event(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(event_id): Path<String>,
    bytes: Bytes,
) -> ApiResult<Json<Event>> {
    let studio = studio(&gw, &headers, Scope::Upload).await?;
    let event_id = parse_id("event_id", &event_id)?;
    let body: serde_json::Map<String, serde_json::Value> =
        json_body(&bytes, "{\"name\"?, \"event_date\"?}")?;
    let name = match body.get("name") {
        None => None,
        Some(serde_json::Value::String(n)) => Some(n.as_str()),
        Some(_) => return Err(facepass_core::Error::invalid_field("name", "name is text").into()),
    };
    let event_date = match body.get("event_date") {
        None => None,
        Some(serde_json::Value::Null) => Some(None),
        Some(serde_json::Value::String(d)) if d.is_empty() => Some(None),
        Some(serde_json::Value::String(d)) => Some(Some(
            chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| {
                facepass_core::Error::invalid_field(
                    "event_date",
                    format!("event_date is YYYY-MM-DD, not {d:?}"),
                )
            })?,
        )),
        Some(_) => {
            return Err(facepass_core::Error::invalid_field(
                "event_date",
                "event_date is YYYY-MM-DD",
            )
            .into())
        }
    };
    gw.catalog
        .edit_event(studio, event_id, name, event_date)
        .await?;
    event_now(&gw, studio, event_id).await
}
