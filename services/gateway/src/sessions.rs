//! Browser sessions for the studio dashboard: the studio signs in with an
//! API key once, and the browser then holds an HttpOnly, SameSite=Strict
//! cookie instead of the key. A session acts with its key's studio and
//! scopes, ends when the key is revoked, the studio disabled, the session
//! signed out or `SESSION_TTL` passes. Requests that change anything must
//! also carry `X-CSRF-Token`, derived from the cookie (which scripts of
//! other sites can neither read nor send: SameSite) and handed to the page
//! by `GET /api/v1/session`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use facepass_core::{Error, ErrorCode, Result};
use sha2::{Digest, Sha256};

use crate::catalog::{db, hash_key, now, random_token, Catalog};
use crate::keys::{Caller, KeyRow};
use crate::schema::{api_keys, sessions, studios};

/// The cookie's name.
pub const COOKIE: &str = "fp_session";
/// The header that must repeat the CSRF token on changing requests.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a session lives.
pub const SESSION_TTL: chrono::TimeDelta = chrono::TimeDelta::hours(12);

/// The CSRF token of a session: the page gets it from the API, never from
/// the cookie (HttpOnly), and the server recomputes it without a lookup.
pub fn csrf_token(session: &str) -> String {
    hex::encode(Sha256::digest(format!("facepass csrf\0{session}")))
}

/// The session token in a `Cookie` header, if any.
pub fn from_cookie_header(header: Option<&str>) -> Option<&str> {
    header?
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
}

/// A new session's `Set-Cookie` value.
pub fn set_cookie(token: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_TTL.num_seconds(),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the cookie.
pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

impl Catalog {
    /// Opens a session for an authenticated key: (token, expiry).
    pub async fn open_session(&self, caller: &Caller) -> Result<(String, DateTime<Utc>)> {
        let token = random_token("fps_");
        let expires_at = now() + SESSION_TTL;
        let mut conn = self.conn().await?;
        // Expired sessions go as new ones come.
        diesel::delete(sessions::table.filter(sessions::expires_at.lt(now())))
            .execute(&mut conn)
            .await
            .map_err(db)?;
        diesel::insert_into(sessions::table)
            .values((
                sessions::token_hash.eq(hash_key(&token)),
                sessions::key_id.eq(caller.key_id),
                sessions::expires_at.eq(expires_at),
            ))
            .execute(&mut conn)
            .await
            .map_err(db)?;
        Ok((token, expires_at))
    }

    /// The caller behind a session cookie, with its expiry.
    pub async fn session(&self, token: &str) -> Result<(Caller, DateTime<Utc>)> {
        facepass_core::text::token("session", token, facepass_core::text::MAX_TOKEN_CHARS)?;
        let mut conn = self.conn().await?;
        let found: Option<(DateTime<Utc>, KeyRow, Option<DateTime<Utc>>)> = sessions::table
            .inner_join(api_keys::table.inner_join(studios::table))
            .filter(sessions::token_hash.eq(hash_key(token)))
            .select((
                sessions::expires_at,
                KeyRow::as_select(),
                studios::disabled_at,
            ))
            .first(&mut conn)
            .await
            .optional()
            .map_err(db)?;
        let at = Utc::now();
        let (expires_at, key, disabled) = found
            .filter(|(expires, key, _)| *expires > at && key.active_at(at))
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::Unauthenticated,
                    "the session has ended; sign in again",
                )
            })?;
        if disabled.is_some() {
            return Err(Error::new(
                ErrorCode::PermissionDenied,
                "this studio is disabled; ask the FacePass operator",
            ));
        }
        Ok((
            Caller {
                studio: key.studio_id,
                key_id: key.id,
                prefix: key.prefix.clone(),
                scopes: key.scopes(),
            },
            expires_at,
        ))
    }

    /// Ends a session (signing out); an unknown one is fine.
    pub async fn close_session(&self, token: &str) -> Result<()> {
        let mut conn = self.conn().await?;
        diesel::delete(sessions::table.filter(sessions::token_hash.eq(hash_key(token))))
            .execute(&mut conn)
            .await
            .map_err(db)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_found_among_others() {
        assert_eq!(
            from_cookie_header(Some("a=1; fp_session=fps_x; b=2")),
            Some("fps_x")
        );
        assert_eq!(from_cookie_header(Some("fp_session=")), None);
        assert_eq!(from_cookie_header(Some("other=fp_session")), None);
        assert_eq!(from_cookie_header(None), None);
    }

    #[test]
    fn csrf_tokens_follow_the_session_and_compare_exactly() {
        let a = csrf_token("fps_a");
        assert_eq!(a, csrf_token("fps_a"));
        assert_ne!(a, csrf_token("fps_b"));
        assert!(crate::auth::same_secret(&a, &a.clone()));
        assert!(!crate::auth::same_secret(&a, &a[1..]));
        assert!(set_cookie("t", true).contains("HttpOnly; SameSite=Strict"));
        assert!(set_cookie("t", true).ends_with("; Secure"));
        assert!(clear_cookie(false).contains("Max-Age=0"));
    }
}
