//! Studios and their API keys in the catalog: creating, listing, disabling;
//! keys with scopes, a visible prefix, last-used time, revocation and
//! rotation with a grace period; and the lookup every request's
//! authentication runs. Only a key's SHA-256 is ever stored.

use std::fmt;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use facepass_core::{Error, ErrorCode, Result};
use uuid::Uuid;

use crate::catalog::{db, hash_key, now, random_token, Catalog};
use crate::schema::{api_keys, studios};

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Get and list events, photos and faces.
    Read,
    /// Create events; upload, register and delete photos, events, faces.
    Upload,
    /// Search by selfie or face; "forget me".
    Search,
    /// Manage the studio's share links.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Read, Scope::Upload, Scope::Search, Scope::Admin];

    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Upload => "upload",
            Scope::Search => "search",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Characters of a key kept as its visible prefix: `fp_` and 8 hex digits.
pub const PREFIX_CHARS: usize = 11;
/// The longest grace period of a rotated key.
pub const MAX_GRACE_SECONDS: u32 = 7 * 24 * 3600;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = studios)]
pub struct StudioRow {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub disabled_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_keys)]
pub struct KeyRow {
    pub id: Uuid,
    pub studio_id: Uuid,
    pub label: String,
    pub prefix: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl KeyRow {
    pub fn scopes(&self) -> Vec<Scope> {
        self.scopes.iter().filter_map(|s| Scope::parse(s)).collect()
    }

    /// Whether the key works at `at` (a rotated key until its grace ends).
    pub fn active_at(&self, at: DateTime<Utc>) -> bool {
        self.revoked_at.is_none_or(|r| r > at)
    }
}

/// Who is calling: the studio and what its key may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub studio: Uuid,
    pub key_id: Uuid,
    /// The key's visible prefix ("" for keys made before prefixes).
    pub prefix: String,
    pub scopes: Vec<Scope>,
}

impl Caller {
    /// Who the audit log names: `key:<prefix>` (or the key's id).
    pub fn actor(&self) -> String {
        if self.prefix.is_empty() {
            format!("key:{}", self.key_id)
        } else {
            format!("key:{}", self.prefix)
        }
    }

    /// PERMISSION_DENIED unless the key has `scope`.
    pub fn require(&self, scope: Scope) -> Result<Uuid> {
        if self.scopes.contains(&scope) {
            Ok(self.studio)
        } else {
            Err(Error::new(
                ErrorCode::PermissionDenied,
                format!("this api key lacks the {scope} scope"),
            ))
        }
    }
}

/// A new key: (the secret, its stored row values).
fn new_secret() -> (String, String, String) {
    let secret = random_token("fp_");
    let prefix = secret[..PREFIX_CHARS].to_string();
    let hash = hash_key(&secret);
    (secret, prefix, hash)
}

/// Scopes as stored, sorted and without repeats; at least one.
fn stored_scopes(scopes: &[Scope]) -> Result<Vec<String>> {
    let mut scopes = scopes.to_vec();
    scopes.sort();
    scopes.dedup();
    if scopes.is_empty() {
        return Err(Error::invalid_field(
            "scopes",
            "a key needs at least one scope (read, upload, search, admin)",
        ));
    }
    Ok(scopes.iter().map(|s| s.as_str().to_string()).collect())
}

impl Catalog {
    /// Creates a studio with a first key of every scope; returns the studio,
    /// the key and its secret (shown this once).
    pub async fn create_studio(&self, name: &str) -> Result<(StudioRow, KeyRow, String)> {
        facepass_core::text::required_text(
            "name",
            name.trim(),
            facepass_core::text::MAX_NAME_CHARS,
        )?;
        let mut conn = self.conn().await?;
        let studio = StudioRow {
            id: Uuid::new_v4(),
            name: name.trim().to_string(),
            created_at: now(),
            disabled_at: None,
        };
        let (secret, prefix, hash) = new_secret();
        let key = KeyRow {
            id: Uuid::new_v4(),
            studio_id: studio.id,
            label: "initial".into(),
            prefix,
            scopes: stored_scopes(&Scope::ALL)?,
            created_at: studio.created_at,
            last_used_at: None,
            revoked_at: None,
        };
        let (s, k) = (studio.clone(), key.clone());
        conn.transaction::<_, diesel::result::Error, _>(async |conn| {
            diesel::insert_into(studios::table)
                .values((
                    studios::id.eq(s.id),
                    studios::name.eq(&s.name),
                    studios::created_at.eq(s.created_at),
                ))
                .execute(conn)
                .await?;
            insert_key(conn, &k, &hash).await
        })
        .await
        .map_err(db)?;
        Ok((studio, key, secret))
    }

    pub async fn studio(&self, studio_id: Uuid) -> Result<StudioRow> {
        let mut conn = self.conn().await?;
        studios::table
            .find(studio_id)
            .select(StudioRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(db)?
            .ok_or_else(|| Error::not_found(format!("studio {studio_id} not found")))
    }

    /// Studios oldest first after `after`, with how many keys work now.
    pub async fn list_studios(
        &self,
        limit: i64,
        after: Option<(DateTime<Utc>, Uuid)>,
    ) -> Result<Vec<(StudioRow, i64)>> {
        let mut conn = self.conn().await?;
        let mut query = studios::table.into_boxed();
        if let Some((created_at, id)) = after {
            query = query.filter(
                studios::created_at
                    .gt(created_at)
                    .or(studios::created_at.eq(created_at).and(studios::id.gt(id))),
            );
        }
        let rows: Vec<StudioRow> = query
            .order((studios::created_at, studios::id))
            .limit(limit)
            .select(StudioRow::as_select())
            .load(&mut conn)
            .await
            .map_err(db)?;
        let ids: Vec<Uuid> = rows.iter().map(|s| s.id).collect();
        let counts: Vec<(Uuid, i64)> = api_keys::table
            .filter(api_keys::studio_id.eq_any(&ids))
            .filter(
                api_keys::revoked_at
                    .is_null()
                    .or(api_keys::revoked_at.gt(Utc::now())),
            )
            .group_by(api_keys::studio_id)
            .select((api_keys::studio_id, diesel::dsl::count_star()))
            .load(&mut conn)
            .await
            .map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|s| {
                let n = counts.iter().find(|c| c.0 == s.id).map_or(0, |c| c.1);
                (s, n)
            })
            .collect())
    }

    /// Disables (or enables again) a studio.
    pub async fn set_studio_disabled(&self, studio_id: Uuid, disabled: bool) -> Result<StudioRow> {
        let mut conn = self.conn().await?;
        let at = disabled.then(now);
        diesel::update(studios::table.find(studio_id))
            .set(studios::disabled_at.eq(at))
            .returning(StudioRow::as_returning())
            .get_result(&mut conn)
            .await
            .optional()
            .map_err(db)?
            .ok_or_else(|| Error::not_found(format!("studio {studio_id} not found")))
    }

    /// A new key of the studio; returns it and its secret (shown once).
    pub async fn create_key(
        &self,
        studio_id: Uuid,
        label: &str,
        scopes: &[Scope],
    ) -> Result<(KeyRow, String)> {
        facepass_core::text::text("label", label, facepass_core::text::MAX_NAME_CHARS)?;
        let scopes = stored_scopes(scopes)?;
        self.studio(studio_id).await?;
        let (secret, prefix, hash) = new_secret();
        let key = KeyRow {
            id: Uuid::new_v4(),
            studio_id,
            label: label.to_string(),
            prefix,
            scopes,
            created_at: now(),
            last_used_at: None,
            revoked_at: None,
        };
        let mut conn = self.conn().await?;
        insert_key(&mut conn, &key, &hash).await.map_err(db)?;
        Ok((key, secret))
    }

    pub async fn key(&self, key_id: Uuid) -> Result<KeyRow> {
        let mut conn = self.conn().await?;
        api_keys::table
            .find(key_id)
            .select(KeyRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(db)?
            .ok_or_else(|| Error::not_found(format!("api key {key_id} not found")))
    }

    /// The studio's keys, newest first; revoked ones only when asked.
    pub async fn list_keys(&self, studio_id: Uuid, include_revoked: bool) -> Result<Vec<KeyRow>> {
        self.studio(studio_id).await?;
        let mut conn = self.conn().await?;
        let mut query = api_keys::table
            .filter(api_keys::studio_id.eq(studio_id))
            .into_boxed();
        if !include_revoked {
            query = query.filter(
                api_keys::revoked_at
                    .is_null()
                    .or(api_keys::revoked_at.gt(Utc::now())),
            );
        }
        query
            .order((api_keys::created_at.desc(), api_keys::id))
            .select(KeyRow::as_select())
            .load(&mut conn)
            .await
            .map_err(db)
    }

    /// Revokes a key from `at` on (now, or the end of a grace period); a key
    /// already revoked earlier keeps its time.
    pub async fn revoke_key(&self, key_id: Uuid, at: DateTime<Utc>) -> Result<KeyRow> {
        let mut conn = self.conn().await?;
        let key = self.key(key_id).await?;
        let at = key.revoked_at.map_or(at, |r| r.min(at));
        diesel::update(api_keys::table.find(key_id))
            .set(api_keys::revoked_at.eq(Some(at)))
            .returning(KeyRow::as_returning())
            .get_result(&mut conn)
            .await
            .map_err(db)
    }

    /// A new key with the old one's label and scopes; the old one works for
    /// `grace_seconds` more. Returns the new key and its secret.
    pub async fn rotate_key(&self, key_id: Uuid, grace_seconds: u32) -> Result<(KeyRow, String)> {
        if grace_seconds > MAX_GRACE_SECONDS {
            return Err(Error::invalid_field(
                "grace_seconds",
                format!("grace_seconds is at most {MAX_GRACE_SECONDS} (7 days)"),
            ));
        }
        let old = self.key(key_id).await?;
        if !old.active_at(Utc::now()) {
            return Err(Error::invalid_field(
                "key_id",
                format!("api key {key_id} is revoked; create a new one instead"),
            ));
        }
        let scopes = old.scopes();
        let (key, secret) = self.create_key(old.studio_id, &old.label, &scopes).await?;
        self.revoke_key(
            key_id,
            now() + chrono::Duration::seconds(grace_seconds as i64),
        )
        .await?;
        Ok((key, secret))
    }

    /// Who a key belongs to: UNAUTHENTICATED for an unknown or revoked key,
    /// PERMISSION_DENIED for a disabled studio. Refreshes `last_used_at` at
    /// most once a minute.
    pub async fn authenticate(&self, secret: &str) -> Result<Caller> {
        let mut conn = self.conn().await?;
        let found: Option<(KeyRow, Option<DateTime<Utc>>)> = api_keys::table
            .inner_join(studios::table)
            .filter(api_keys::key_hash.eq(hash_key(secret)))
            .select((KeyRow::as_select(), studios::disabled_at))
            .first(&mut conn)
            .await
            .optional()
            .map_err(db)?;
        let now = Utc::now();
        let (key, disabled) = found
            .filter(|(k, _)| k.active_at(now))
            .ok_or_else(|| Error::new(ErrorCode::Unauthenticated, "unknown or revoked api key"))?;
        if disabled.is_some() {
            return Err(Error::new(
                ErrorCode::PermissionDenied,
                "this studio is disabled; ask the FacePass operator",
            ));
        }
        if key
            .last_used_at
            .is_none_or(|t| now - t > chrono::Duration::seconds(60))
        {
            diesel::update(api_keys::table.find(key.id))
                .set(api_keys::last_used_at.eq(Some(crate::catalog::now())))
                .execute(&mut conn)
                .await
                .map_err(db)?;
        }
        Ok(Caller {
            studio: key.studio_id,
            key_id: key.id,
            prefix: key.prefix.clone(),
            scopes: key.scopes(),
        })
    }
}

async fn insert_key(
    conn: &mut diesel_async::AsyncPgConnection,
    key: &KeyRow,
    hash: &str,
) -> std::result::Result<(), diesel::result::Error> {
    diesel::insert_into(api_keys::table)
        .values((
            api_keys::id.eq(key.id),
            api_keys::studio_id.eq(key.studio_id),
            api_keys::key_hash.eq(hash),
            api_keys::label.eq(&key.label),
            api_keys::prefix.eq(&key.prefix),
            api_keys::scopes.eq(&key.scopes),
            api_keys::created_at.eq(key.created_at),
        ))
        .execute(conn)
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_require() {
        for s in Scope::ALL {
            assert_eq!(Scope::parse(s.as_str()), Some(s));
        }
        assert_eq!(Scope::parse("write"), None);
        let caller = Caller {
            studio: Uuid::nil(),
            key_id: Uuid::nil(),
            prefix: "fp_1a2b3c4d".into(),
            scopes: vec![Scope::Read],
        };
        assert_eq!(caller.actor(), "key:fp_1a2b3c4d");
        assert!(caller.require(Scope::Read).is_ok());
        let err = caller.require(Scope::Upload).unwrap_err();
        assert_eq!(err.code, ErrorCode::PermissionDenied);
        assert_eq!(err.message, "this api key lacks the upload scope");
        assert!(stored_scopes(&[]).is_err());
        assert_eq!(
            stored_scopes(&[Scope::Search, Scope::Read, Scope::Search]).unwrap(),
            vec!["read", "search"]
        );
    }

    #[test]
    fn secrets_have_a_visible_prefix_and_a_hash() {
        let (secret, prefix, hash) = new_secret();
        assert!(secret.starts_with("fp_") && secret.len() == 35);
        assert_eq!(prefix, &secret[..11]);
        assert_eq!(hash, hash_key(&secret));
        assert_ne!(new_secret().0, secret);
    }

    #[test]
    fn a_rotated_key_works_until_its_grace_ends() {
        let at = Utc::now();
        let mut key = KeyRow {
            id: Uuid::nil(),
            studio_id: Uuid::nil(),
            label: String::new(),
            prefix: String::new(),
            scopes: vec![],
            created_at: at,
            last_used_at: None,
            revoked_at: None,
        };
        assert!(key.active_at(at));
        key.revoked_at = Some(at + chrono::Duration::seconds(30));
        assert!(key.active_at(at));
        assert!(!key.active_at(at + chrono::Duration::seconds(31)));
    }
}
