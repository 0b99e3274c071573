//! Webhooks: a studio's HTTPS endpoints told when a photo is indexed or
//! fails and when an event has nothing pending any more.
//!
//! A delivery is written to `catalog.webhook_deliveries` when the outcome
//! is applied (one per fact: a redelivered outcome adds nothing), then a
//! worker in every gateway claims due deliveries (`FOR UPDATE SKIP LOCKED`,
//! a lease on `next_attempt_at`), POSTs them and records the answer. A
//! failure is retried with exponential backoff (`webhook_retry_base_ms`,
//! doubling, at most an hour apart) until `webhook_max_age_hours` (25 h by
//! default) after the delivery was made; then it is `failed`. The studio
//! reads the delivery log and replays any delivery.
//!
//! Signature: header `FacePass-Signature: t=<unix seconds>,v1=<hex>` where
//! `<hex>` is HMAC-SHA256 with the webhook's secret over `<t>.<body>`
//! (docs/webhooks.md has the verification recipe).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use facepass_core::{Error, Result};
use facepass_server::shutdown::Shutdown;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::catalog::{db, now, random_token, Catalog, PhotoRow};
use crate::domain::Gateway;
use crate::schema::{webhook_deliveries as wd, webhooks};

pub const PHOTO_INDEXED: &str = "photo.indexed";
pub const PHOTO_FAILED: &str = "photo.failed";
pub const EVENT_COMPLETED: &str = "event.indexing_completed";
pub const EVENT_TYPES: [&str; 3] = [PHOTO_INDEXED, PHOTO_FAILED, EVENT_COMPLETED];

/// Most webhooks one studio may register.
pub const MAX_WEBHOOKS: i64 = 10;
/// Deliveries one worker claims at a time.
const CLAIM: i64 = 16;
/// How long a claimed delivery is left alone (the HTTP call's time and more).
const LEASE: chrono::Duration = chrono::Duration::seconds(120);
/// Longest wait between two attempts.
const MAX_BACKOFF_MS: u64 = 3_600_000;

/// HMAC-SHA256 (RFC 2104) over `message` with `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// The `FacePass-Signature` header value for `body` sent at `t`.
pub fn signature(secret: &str, t: i64, body: &str) -> String {
    let mac = hmac_sha256(secret.as_bytes(), format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac))
}

/// Milliseconds to wait after failed attempt number `attempts` (1-based).
pub fn backoff_ms(base_ms: u64, attempts: u32) -> u64 {
    base_ms
        .saturating_mul(1u64 << attempts.saturating_sub(1).min(30))
        .min(MAX_BACKOFF_MS)
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webhooks)]
pub struct WebhookRow {
    pub id: Uuid,
    pub studio_id: Uuid,
    pub url: String,
    pub secret: String,
    pub events: Vec<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = wd)]
pub struct DeliveryRow {
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub studio_id: Uuid,
    pub event_type: String,
    pub body: String,
    pub dedupe_key: String,
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// Checks an endpoint: HTTPS (plain HTTP only where `allow_http`, for
/// development and tests), a host, no credentials in it.
pub fn check_url(url: &str, allow_http: bool) -> Result<()> {
    facepass_core::text::required_text("url", url, 2048)?;
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| Error::invalid_field("url", format!("url is not a URL: {e}")))?;
    match parsed.scheme() {
        "https" => {}
        "http" if allow_http => {}
        other => {
            return Err(Error::invalid_field(
                "url",
                format!("a webhook must be https://, not {other}://"),
            ))
        }
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(Error::invalid_field("url", "url has no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Error::invalid_field(
            "url",
            "url must not carry credentials; verify the signature instead",
        ));
    }
    Ok(())
}

fn check_events(events: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = if events.is_empty() {
        EVENT_TYPES.iter().map(|e| e.to_string()).collect()
    } else {
        events.to_vec()
    };
    for e in &out {
        if !EVENT_TYPES.contains(&e.as_str()) {
            return Err(Error::invalid_field(
                "events",
                format!("unknown event type {e:?}: {}", EVENT_TYPES.join(", ")),
            ));
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

impl Catalog {
    /// Registers an endpoint; returns it (its secret is shown this once).
    pub async fn create_webhook(
        &self,
        studio: Uuid,
        url: &str,
        events: &[String],
        allow_http: bool,
    ) -> Result<WebhookRow> {
        check_url(url, allow_http)?;
        let events = check_events(events)?;
        let mut conn = self.conn().await?;
        let count: i64 = webhooks::table
            .filter(webhooks::studio_id.eq(studio))
            .count()
            .get_result(&mut conn)
            .await
            .map_err(db)?;
        if count >= MAX_WEBHOOKS {
            return Err(Error::invalid(format!(
                "a studio has at most {MAX_WEBHOOKS} webhooks; delete one first"
            )));
        }
        let row = WebhookRow {
            id: Uuid::new_v4(),
            studio_id: studio,
            url: url.to_string(),
            secret: random_token("whsec_"),
            events,
            created_at: now(),
        };
        diesel::insert_into(webhooks::table)
            .values((
                webhooks::id.eq(row.id),
                webhooks::studio_id.eq(row.studio_id),
                webhooks::url.eq(&row.url),
                webhooks::secret.eq(&row.secret),
                webhooks::events.eq(&row.events),
                webhooks::created_at.eq(row.created_at),
            ))
            .execute(&mut conn)
            .await
            .map_err(db)?;
        Ok(row)
    }

    pub async fn list_webhooks(&self, studio: Uuid) -> Result<Vec<WebhookRow>> {
        let mut conn = self.conn().await?;
        webhooks::table
            .filter(webhooks::studio_id.eq(studio))
            .order(webhooks::created_at)
            .select(WebhookRow::as_select())
            .load(&mut conn)
            .await
            .map_err(db)
    }

    pub async fn webhook(&self, studio: Uuid, id: Uuid) -> Result<WebhookRow> {
        let mut conn = self.conn().await?;
        webhooks::table
            .filter(webhooks::id.eq(id))
            .filter(webhooks::studio_id.eq(studio))
            .select(WebhookRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(db)?
            .ok_or_else(|| Error::not_found(format!("webhook {id} not found")))
    }

    /// Deletes an endpoint and its delivery log.
    pub async fn delete_webhook(&self, studio: Uuid, id: Uuid) -> Result<()> {
        let mut conn = self.conn().await?;
        let n = diesel::delete(
            webhooks::table
                .filter(webhooks::id.eq(id))
                .filter(webhooks::studio_id.eq(studio)),
        )
        .execute(&mut conn)
        .await
        .map_err(db)?;
        if n == 0 {
            return Err(Error::not_found(format!("webhook {id} not found")));
        }
        Ok(())
    }

    /// The endpoint's deliveries, newest first, before `before` (created_at, id).
    pub async fn list_deliveries(
        &self,
        studio: Uuid,
        webhook: Uuid,
        limit: i64,
    ) -> Result<Vec<DeliveryRow>> {
        self.webhook(studio, webhook).await?;
        let mut conn = self.conn().await?;
        wd::table
            .filter(wd::webhook_id.eq(webhook))
            .order((wd::created_at.desc(), wd::id))
            .limit(limit)
            .select(DeliveryRow::as_select())
            .load(&mut conn)
            .await
            .map_err(db)
    }

    /// Sends a delivery again: a new delivery with the same body, due now.
    pub async fn replay_delivery(&self, studio: Uuid, id: Uuid) -> Result<DeliveryRow> {
        let mut conn = self.conn().await?;
        let old: DeliveryRow = wd::table
            .filter(wd::id.eq(id))
            .filter(wd::studio_id.eq(studio))
            .select(DeliveryRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(db)?
            .ok_or_else(|| Error::not_found(format!("delivery {id} not found")))?;
        let new_id = Uuid::new_v4();
        let row = diesel::insert_into(wd::table)
            .values((
                wd::id.eq(new_id),
                wd::webhook_id.eq(old.webhook_id),
                wd::studio_id.eq(old.studio_id),
                wd::event_type.eq(&old.event_type),
                wd::body.eq(&old.body),
                wd::dedupe_key.eq(format!("replay:{new_id}")),
                wd::state.eq("pending"),
            ))
            .returning(DeliveryRow::as_returning())
            .get_result(&mut conn)
            .await
            .map_err(db)?;
        Ok(row)
    }

    /// Queues `event_type` with `data` for every endpoint of the studio that
    /// takes it; `dedupe` names the fact (one delivery per endpoint).
    pub async fn enqueue(
        &self,
        studio: Uuid,
        event_type: &str,
        dedupe: &str,
        data: serde_json::Value,
    ) -> Result<usize> {
        let mut conn = self.conn().await?;
        let hooks: Vec<Uuid> = webhooks::table
            .filter(webhooks::studio_id.eq(studio))
            .filter(webhooks::events.contains(vec![event_type.to_string()]))
            .select(webhooks::id)
            .load(&mut conn)
            .await
            .map_err(db)?;
        let mut queued = 0;
        for hook in hooks {
            let id = Uuid::new_v4();
            let body = serde_json::json!({
                "id": id,
                "type": event_type,
                "created_at": now(),
                "data": data,
            })
            .to_string();
            queued += diesel::insert_into(wd::table)
                .values((
                    wd::id.eq(id),
                    wd::webhook_id.eq(hook),
                    wd::studio_id.eq(studio),
                    wd::event_type.eq(event_type),
                    wd::body.eq(&body),
                    wd::dedupe_key.eq(dedupe),
                    wd::state.eq("pending"),
                ))
                .on_conflict((wd::webhook_id, wd::dedupe_key))
                .do_nothing()
                .execute(&mut conn)
                .await
                .map_err(db)?;
        }
        Ok(queued)
    }

    /// Claims up to `CLAIM` due deliveries with their endpoints: their next
    /// attempt moves a lease ahead, so no other worker takes them meanwhile.
    async fn claim_due(&self) -> Result<Vec<(DeliveryRow, WebhookRow)>> {
        let mut conn = self.conn().await?;
        conn.transaction::<_, diesel::result::Error, _>(async |conn| {
            // Only the delivery rows are locked: other workers skip them,
            // not the other deliveries of the same endpoint.
            let due: Vec<DeliveryRow> = wd::table
                .filter(wd::state.eq("pending"))
                .filter(wd::next_attempt_at.le(Utc::now()))
                .order(wd::next_attempt_at)
                .limit(CLAIM)
                .for_update()
                .skip_locked()
                .select(DeliveryRow::as_select())
                .load(conn)
                .await?;
            let ids: Vec<Uuid> = due.iter().map(|d| d.id).collect();
            diesel::update(wd::table.filter(wd::id.eq_any(&ids)))
                .set(wd::next_attempt_at.eq(Utc::now() + LEASE))
                .execute(conn)
                .await?;
            let hook_ids: Vec<Uuid> = due.iter().map(|d| d.webhook_id).collect();
            let hooks: Vec<WebhookRow> = webhooks::table
                .filter(webhooks::id.eq_any(&hook_ids))
                .select(WebhookRow::as_select())
                .load(conn)
                .await?;
            Ok(due
                .into_iter()
                .filter_map(|d| {
                    let hook = hooks.iter().find(|h| h.id == d.webhook_id)?.clone();
                    Some((d, hook))
                })
                .collect())
        })
        .await
        .map_err(db)
    }

    async fn record_attempt(
        &self,
        delivery: &DeliveryRow,
        answer: std::result::Result<u16, String>,
        config: &crate::GatewayConfig,
    ) -> Result<()> {
        let attempts = delivery.attempts + 1;
        let mut conn = self.conn().await?;
        let target = wd::table.filter(wd::id.eq(delivery.id));
        match answer {
            Ok(status) if (200..300).contains(&status) => {
                diesel::update(target)
                    .set((
                        wd::state.eq("delivered"),
                        wd::attempts.eq(attempts),
                        wd::last_status.eq(Some(status as i32)),
                        wd::last_error.eq(None::<String>),
                        wd::delivered_at.eq(Some(now())),
                    ))
                    .execute(&mut conn)
                    .await
                    .map_err(db)?;
            }
            answer => {
                let (status, error) = match answer {
                    Ok(status) => (Some(status as i32), format!("answered HTTP {status}")),
                    Err(e) => (None, e),
                };
                let wait = backoff_ms(config.webhook_retry_base_ms, attempts as u32);
                let next = Utc::now() + chrono::Duration::milliseconds(wait as i64);
                let give_up = next
                    > delivery.created_at
                        + chrono::Duration::hours(config.webhook_max_age_hours as i64);
                diesel::update(target)
                    .set((
                        wd::state.eq(if give_up { "failed" } else { "pending" }),
                        wd::attempts.eq(attempts),
                        wd::last_status.eq(status),
                        wd::last_error.eq(Some(error)),
                        wd::next_attempt_at.eq(next),
                    ))
                    .execute(&mut conn)
                    .await
                    .map_err(db)?;
            }
        }
        Ok(())
    }
}

/// Queues the webhooks of a photo's outcome, and `event.indexing_completed`
/// when the event has nothing pending any more (once per photo count).
pub async fn photo_outcome(gateway: &Gateway, photo: &PhotoRow) -> Result<()> {
    let (event_type, data) = match photo.status.as_str() {
        crate::catalog::STATUS_INDEXED => (
            PHOTO_INDEXED,
            serde_json::json!({
                "photo_id": photo.id, "event_id": photo.event_id,
                "external_id": photo.external_id, "face_count": photo.face_count,
            }),
        ),
        crate::catalog::STATUS_FAILED => (
            PHOTO_FAILED,
            serde_json::json!({
                "photo_id": photo.id, "event_id": photo.event_id,
                "external_id": photo.external_id,
                "failure_code": photo.failure_code, "failure_reason": photo.failure_reason,
            }),
        ),
        // Queued again (or a redelivered outcome of an earlier run) while
        // this was read: no outcome to tell yet.
        _ => return Ok(()),
    };
    // A photo queued again after it failed has a new outcome to tell.
    let dedupe = match photo.redrives {
        0 => format!("{event_type}:{}", photo.id),
        n => format!("{event_type}:{}:{n}", photo.id),
    };
    gateway
        .catalog
        .enqueue(photo.studio_id, event_type, &dedupe, data)
        .await?;
    let counts = gateway
        .catalog
        .event_counts(&[photo.event_id])
        .await?
        .get(&photo.event_id)
        .copied()
        .unwrap_or_default();
    if counts.pending == 0 {
        let data = serde_json::json!({
            "event_id": photo.event_id,
            "photos": {"total": counts.total, "indexed": counts.indexed, "failed": counts.failed},
            "faces": counts.faces,
        });
        let dedupe = match counts.redrives {
            0 => format!("{EVENT_COMPLETED}:{}:{}", photo.event_id, counts.total),
            n => format!("{EVENT_COMPLETED}:{}:{}:{n}", photo.event_id, counts.total),
        };
        gateway
            .catalog
            .enqueue(photo.studio_id, EVENT_COMPLETED, &dedupe, data)
            .await?;
    }
    Ok(())
}

/// Delivers due webhooks until `shutdown`, every `webhook_poll_ms`.
pub async fn run(gateway: Arc<Gateway>, shutdown: Shutdown) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_millis(gateway.config.webhook_timeout_ms))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("FacePass-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "webhooks: no HTTP client; deliveries wait");
            return;
        }
    };
    let poll = Duration::from_millis(gateway.config.webhook_poll_ms);
    loop {
        match deliver_due(&gateway, &client).await {
            Ok(n) if n > 0 => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(code = %e.code, error = %e.message, "webhooks: run failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = shutdown.wait() => return,
        }
    }
}

async fn deliver_due(gateway: &Gateway, client: &reqwest::Client) -> Result<usize> {
    let due = gateway.catalog.claim_due().await?;
    let n = due.len();
    let sends = due.into_iter().map(|(delivery, hook)| async move {
        let t = Utc::now().timestamp();
        let answer = client
            .post(&hook.url)
            .header("content-type", "application/json")
            .header(
                "facepass-signature",
                signature(&hook.secret, t, &delivery.body),
            )
            .header("facepass-event", &delivery.event_type)
            .header("facepass-delivery", delivery.id.to_string())
            .body(delivery.body.clone())
            .send()
            .await
            .map(|r| r.status().as_u16())
            // The error text may name hosts: it is the studio's own URL.
            .map_err(|e| format!("could not deliver: {e}"));
        tracing::info!(delivery = %delivery.id, webhook = %hook.id, event = %delivery.event_type,
            attempt = delivery.attempts + 1, answer = ?answer, "webhook attempt");
        gateway
            .catalog
            .record_attempt(&delivery, answer, &gateway.config)
            .await
    });
    for result in futures::future::join_all(sends).await {
        result?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2.
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block.
        let mac = hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
        );
        assert_eq!(
            hex::encode(mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
        assert_eq!(
            signature("k", 1700000000, "{}"),
            format!(
                "t=1700000000,v1={}",
                hex::encode(hmac_sha256(b"k", b"1700000000.{}"))
            )
        );
    }

    #[test]
    fn backoff_doubles_up_to_an_hour_and_covers_a_day() {
        assert_eq!(backoff_ms(30_000, 1), 30_000);
        assert_eq!(backoff_ms(30_000, 2), 60_000);
        assert_eq!(backoff_ms(30_000, 8), 3_600_000);
        assert_eq!(backoff_ms(30_000, 60), 3_600_000);
        // With the defaults, attempts continue past 24 hours.
        let total: u64 = (1..=30).map(|a| backoff_ms(30_000, a)).sum();
        assert!(total > 24 * 3_600_000, "{total}");
    }

    #[test]
    fn endpoints_are_https_without_credentials() {
        assert!(check_url("https://studio.example/hooks", false).is_ok());
        assert!(check_url("http://127.0.0.1:9/x", false).is_err());
        assert!(check_url("http://127.0.0.1:9/x", true).is_ok());
        assert!(check_url("https://user:pw@studio.example/", false).is_err());
        assert!(check_url("ftp://studio.example/", true).is_err());
        assert!(check_url("not a url", false).is_err());
        assert!(check_events(&["photo.indexed".into()]).is_ok());
        assert!(check_events(&["photo.deleted".into()]).is_err());
        assert_eq!(check_events(&[]).unwrap().len(), 3);
    }
}
