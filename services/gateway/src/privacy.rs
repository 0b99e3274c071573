//! Privacy controls (faces are biometric data: GDPR Art. 9, BIPA §15):
//! consent records for guest searches, the studio's audit log of
//! deletions, "forget me" requests and purges, and event retention with the
//! background job that purges expired events. The selfie itself is never
//! stored (see `faces.rs`); a "forget me" keeps only the suppression entry
//! the guest asked for, in the face store, deleted with the event.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use facepass_core::{Error, ErrorCode, Result};
use facepass_server::shutdown::Shutdown;
use serde_json::Value;
use uuid::Uuid;

use crate::catalog::{db, Catalog, EventRow};
use crate::domain::Gateway;
use crate::schema::{audit_log, consents, events};

/// Longest policy version text.
pub const MAX_POLICY_CHARS: usize = 64;

/// Where a consent was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// The guest page or the REST guest API (share link).
    GuestLink,
    /// A studio's key (Pixora searching for a guest at a kiosk).
    Api,
}

impl Channel {
    fn as_str(self) -> &'static str {
        match self {
            Channel::GuestLink => "guest_link",
            Channel::Api => "api",
        }
    }
}

/// The consent a search carries: given, for a policy version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub given: bool,
    pub policy_version: String,
}

/// CONSENT_REQUIRED: a search with a selfie but without the guest's consent.
pub fn consent_required() -> Error {
    Error::new(
        ErrorCode::ConsentRequired,
        "the guest's consent is required: a selfie is biometric data; send consent with the policy version the guest agreed to",
    )
    .with_field("consent")
}

impl Consent {
    /// The policy version consented to, None when consent was not given;
    /// INVALID_ARGUMENT for a version that is not short text.
    pub fn version(&self) -> Result<Option<&str>> {
        let version = self.policy_version.trim();
        if !self.given || version.is_empty() {
            return Ok(None);
        }
        facepass_core::text::text("consent.policy_version", version, MAX_POLICY_CHARS)?;
        Ok(Some(version))
    }

    /// CONSENT_REQUIRED unless given for a policy version.
    pub fn check(&self) -> Result<&str> {
        self.version()?.ok_or_else(consent_required)
    }
}

/// One audit log entry as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_log)]
pub struct AuditRow {
    pub id: i64,
    pub studio_id: Uuid,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub event_id: Option<Uuid>,
    pub photo_id: Option<Uuid>,
    pub counts: Value,
}

/// What an audit entry records.
#[derive(Debug, Clone)]
pub struct Audit<'a> {
    pub studio: Uuid,
    pub actor: &'a str,
    pub action: &'static str,
    pub event_id: Option<Uuid>,
    pub photo_id: Option<Uuid>,
    pub counts: &'a [(&'static str, u64)],
}

impl Catalog {
    /// Records a guest's consent (nothing biometric, nothing identifying).
    pub async fn record_consent(
        &self,
        event: &EventRow,
        policy_version: &str,
        channel: Channel,
    ) -> Result<()> {
        let mut conn = self.conn().await?;
        diesel::insert_into(consents::table)
            .values((
                consents::studio_id.eq(event.studio_id),
                consents::event_id.eq(event.id),
                consents::policy_version.eq(policy_version),
                consents::channel.eq(channel.as_str()),
            ))
            .execute(&mut conn)
            .await
            .map_err(db)?;
        Ok(())
    }

    /// How many consents the event holds (tests, studio reports).
    pub async fn consent_count(&self, event_id: Uuid) -> Result<i64> {
        let mut conn = self.conn().await?;
        consents::table
            .filter(consents::event_id.eq(event_id))
            .count()
            .get_result(&mut conn)
            .await
            .map_err(db)
    }

    pub async fn audit(&self, entry: Audit<'_>) -> Result<()> {
        let counts: serde_json::Map<String, Value> = entry
            .counts
            .iter()
            .map(|(k, v)| (k.to_string(), Value::from(*v)))
            .collect();
        let mut conn = self.conn().await?;
        diesel::insert_into(audit_log::table)
            .values((
                audit_log::studio_id.eq(entry.studio),
                audit_log::actor.eq(entry.actor),
                audit_log::action.eq(entry.action),
                audit_log::event_id.eq(entry.event_id),
                audit_log::photo_id.eq(entry.photo_id),
                audit_log::counts.eq(Value::Object(counts)),
            ))
            .execute(&mut conn)
            .await
            .map_err(db)?;
        tracing::info!(studio_id = %entry.studio, actor = entry.actor, action = entry.action,
            event_id = ?entry.event_id, photo_id = ?entry.photo_id, counts = ?entry.counts, "audit");
        Ok(())
    }

    /// The studio's audit entries, newest first, before id `before`.
    pub async fn list_audit(
        &self,
        studio: Uuid,
        limit: i64,
        before: Option<i64>,
    ) -> Result<Vec<AuditRow>> {
        let mut conn = self.conn().await?;
        let mut query = audit_log::table
            .filter(audit_log::studio_id.eq(studio))
            .into_boxed();
        if let Some(before) = before {
            query = query.filter(audit_log::id.lt(before));
        }
        query
            .order(audit_log::id.desc())
            .limit(limit)
            .select(AuditRow::as_select())
            .load(&mut conn)
            .await
            .map_err(db)
    }

    pub async fn set_retention(
        &self,
        studio: Uuid,
        event_id: Uuid,
        retain_until: Option<DateTime<Utc>>,
    ) -> Result<EventRow> {
        let mut conn = self.conn().await?;
        diesel::update(
            events::table
                .filter(events::id.eq(event_id))
                .filter(events::studio_id.eq(studio))
                .filter(events::deleting_at.is_null()),
        )
        .set(events::retain_until.eq(retain_until))
        .returning(EventRow::as_returning())
        .get_result(&mut conn)
        .await
        .optional()
        .map_err(db)?
        .ok_or_else(|| Error::not_found(format!("event {event_id} not found")))
    }

    /// Events whose retention date has passed, oldest first.
    pub async fn expired_events(&self, limit: i64) -> Result<Vec<EventRow>> {
        let mut conn = self.conn().await?;
        events::table
            .filter(events::retain_until.le(Utc::now()))
            .filter(events::deleting_at.is_null())
            .order(events::retain_until)
            .limit(limit)
            .select(EventRow::as_select())
            .load(&mut conn)
            .await
            .map_err(db)
    }
}

/// Most audit entries in one page, and the default.
pub const MAX_AUDIT_PAGE: u32 = 500;
pub const DEFAULT_AUDIT_PAGE: u32 = 100;

impl Gateway {
    /// A page of the studio's audit log, newest first (gRPC and REST).
    pub async fn audit_page(
        &self,
        studio: Uuid,
        page: crate::domain::PageRequest<'_>,
    ) -> Result<crate::domain::Page<AuditRow>> {
        let limit = page.limit(DEFAULT_AUDIT_PAGE, MAX_AUDIT_PAGE)?;
        // The token is the last entry's id: the next page holds older ones.
        let before = page.after(|t| t.parse::<i64>().ok().filter(|id| *id > 0))?;
        let rows = self.catalog.list_audit(studio, limit + 1, before).await?;
        Ok(crate::domain::Page::of(rows, limit, |r| r.id.to_string()))
    }
}

/// Purges events past their retention date until `shutdown`: every
/// `poll`, each expired event is deleted completely (as DeleteEvent) and an
/// `event.purged` audit entry is its receipt. Several gateways may run it:
/// a purge is idempotent, and a lost race finds the event gone.
pub async fn run_retention(gateway: Arc<Gateway>, poll: Duration, shutdown: Shutdown) {
    loop {
        match purge_expired(&gateway).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "retention: events purged"),
            Err(e) => {
                tracing::warn!(code = %e.code, error = %e.message, "retention run failed; retrying")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = shutdown.wait() => return,
        }
    }
}

/// One retention run; returns how many events were purged.
pub async fn purge_expired(gateway: &Gateway) -> Result<usize> {
    let mut purged = 0;
    for event in gateway.catalog.expired_events(100).await? {
        match gateway
            .delete_event(event.studio_id, event.id, "retention")
            .await
        {
            Ok(_) => purged += 1,
            // Another gateway got there first.
            Err(e) if e.code == ErrorCode::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(purged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consent_must_be_given_for_a_version() {
        let ok = Consent {
            given: true,
            policy_version: " 2026-12-01 ".into(),
        };
        assert_eq!(ok.check().unwrap(), "2026-12-01");
        for bad in [
            Consent {
                given: false,
                policy_version: "v1".into(),
            },
            Consent {
                given: true,
                policy_version: "  ".into(),
            },
        ] {
            let err = bad.check().unwrap_err();
            assert_eq!(err.code, ErrorCode::ConsentRequired);
            assert_eq!(err.field.as_deref(), Some("consent"));
        }
        let long = Consent {
            given: true,
            policy_version: "x".repeat(MAX_POLICY_CHARS + 1),
        };
        assert_eq!(long.check().unwrap_err().code, ErrorCode::InvalidArgument);
    }
}
