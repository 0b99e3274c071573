//! Share tokens at rest (docs/security.md §4).
//!
//! A guest link's token is a bearer secret, so the catalog keeps only:
//! - its SHA-256 (`events.share_token`), which a guest's link is looked up by;
//! - a sealed copy (`events.share_token_sealed`), so the studio can be shown
//!   its link again: the token XORed with an HMAC-SHA256 keystream of the
//!   gateway's `share_link_key` and a random nonce, with an HMAC tag.
//!
//! Reading the catalog alone (a backup, a read replica, a leaked dump) gives
//! neither a working link nor the means to make one. `share_link_key` may
//! hold several keys, separated by commas: the first seals, each unseals, so
//! the key rotates without downtime (add the new one first, restart, and
//! drop the old one once every token was sealed again: rotating a link, or
//! [`crate::catalog::Catalog::reseal_share_tokens`] at start-up).

use std::sync::OnceLock;

use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Text;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::webhooks::hmac_sha256;

/// The version tag of sealed tokens.
const SEALED: &str = "s1";

static KEYS: OnceLock<Vec<[u8; 32]>> = OnceLock::new();

/// Sets the process's keys from `share_link_key` (first seals, all unseal).
/// Later calls are ignored: the keys are fixed for the process's life.
pub fn set_keys(setting: &str) {
    let keys = parse_keys(setting);
    let _ = KEYS.set(keys);
}

/// Why `share_link_key` cannot serve, if it cannot: empty, or a key
/// shorter than 16 characters.
pub fn problem(setting: &str) -> Option<String> {
    let keys: Vec<&str> = setting
        .split([',', ' ', '\n'])
        .filter(|k| !k.is_empty())
        .collect();
    if keys.is_empty() || keys.iter().any(|k| k.len() < 16) {
        return Some(
            "share_link_key must be set (FACEPASS_SHARE_LINK_KEY), each key at least 16 characters: it seals the guest links' tokens (e.g. openssl rand -hex 24)".into(),
        );
    }
    None
}

fn parse_keys(setting: &str) -> Vec<[u8; 32]> {
    setting
        .split([',', ' ', '\n'])
        .filter(|k| !k.is_empty())
        .map(|k| Sha256::digest(k.as_bytes()).into())
        .collect()
}

fn keys() -> &'static [[u8; 32]] {
    KEYS.get().map(Vec::as_slice).unwrap_or_default()
}

/// Whether `text` has the form of a share token as FacePass issues them (32
/// hex digits), and so can be one stored in the clear; a 64-digit hash
/// never is.
pub fn looks_clear(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What a guest's link is looked up by: the token's hex SHA-256.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn keystream(key: &[u8; 32], nonce: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut block = 0u32;
    while out.len() < len {
        let mut message = b"facepass share token\0".to_vec();
        message.extend_from_slice(nonce);
        message.extend_from_slice(&block.to_be_bytes());
        out.extend_from_slice(&hmac_sha256(key, &message));
        block += 1;
    }
    out.truncate(len);
    out
}

fn tag(key: &[u8; 32], nonce: &[u8], sealed: &[u8]) -> [u8; 16] {
    let mut message = b"facepass share token tag\0".to_vec();
    message.extend_from_slice(nonce);
    message.extend_from_slice(sealed);
    let mac = hmac_sha256(key, &message);
    let mut out = [0u8; 16];
    out.copy_from_slice(&mac[..16]);
    out
}

fn seal_with(key: &[u8; 32], token: &str) -> String {
    let mut nonce = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut nonce);
    let plain = token.as_bytes();
    let sealed: Vec<u8> = plain
        .iter()
        .zip(keystream(key, &nonce, plain.len()))
        .map(|(p, k)| p ^ k)
        .collect();
    let tag = tag(key, &nonce, &sealed);
    format!(
        "{SEALED}.{}.{}.{}",
        hex::encode(nonce),
        hex::encode(&sealed),
        hex::encode(tag)
    )
}

fn unseal_with(key: &[u8; 32], text: &str) -> Option<String> {
    let mut parts = text.split('.');
    if parts.next()? != SEALED {
        return None;
    }
    let nonce = hex::decode(parts.next()?).ok()?;
    let sealed = hex::decode(parts.next()?).ok()?;
    let given = hex::decode(parts.next()?).ok()?;
    if parts.next().is_some() || nonce.len() != 16 {
        return None;
    }
    let expected = tag(key, &nonce, &sealed);
    if !facepass_server::auth::constant_time_eq(&given, &expected) {
        return None;
    }
    let plain: Vec<u8> = sealed
        .iter()
        .zip(keystream(key, &nonce, sealed.len()))
        .map(|(s, k)| s ^ k)
        .collect();
    String::from_utf8(plain).ok()
}

/// Seals `token` with the first key. `None` when no key is set.
pub fn seal(token: &str) -> Option<String> {
    keys().first().map(|key| seal_with(key, token))
}

/// Whether the first (current) key opens `text`.
pub fn sealed_with_first_key(text: &str) -> bool {
    keys()
        .first()
        .is_some_and(|key| unseal_with(key, text).is_some())
}

/// The token in a sealed copy, trying each key; `None` for a copy no key
/// opens (a removed key, a damaged value).
pub fn unseal(text: &str) -> Option<String> {
    keys().iter().find_map(|key| unseal_with(key, text))
}

/// An event's share token in the clear, in memory only: read from and
/// written to `events.share_token_sealed` sealed. A copy that cannot be
/// opened (not sealed yet during an upgrade, or sealed with a key since
/// removed) reads as empty, and the studio sees no link until it rotates it.
#[derive(Debug, Clone, PartialEq, Eq, Default, AsExpression, FromSqlRow)]
#[diesel(sql_type = Text)]
pub struct ShareToken(pub String);

impl std::ops::Deref for ShareToken {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ShareToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromSql<Text, Pg> for ShareToken {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<Text, Pg>>::from_sql(value)?;
        if text.is_empty() {
            return Ok(ShareToken::default());
        }
        match unseal(&text) {
            Some(token) => Ok(ShareToken(token)),
            None => {
                tracing::warn!("a share token no share_link_key opens; rotate the event's link");
                Ok(ShareToken::default())
            }
        }
    }
}

impl ToSql<Text, Pg> for ShareToken {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        let sealed =
            seal(&self.0).ok_or("share_link_key is not set: cannot store a share token")?;
        <String as ToSql<Text, Pg>>::to_sql(&sealed, &mut out.reborrow())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_token_opens_with_its_key_only() {
        let [old, new] = [
            parse_keys("old-key-0123456789")[0],
            parse_keys("new-key-0123456789")[0],
        ];
        let token = "4f1c2a9e0b7d4c3a8e6f5d2c1b0a9f8e";
        let sealed = seal_with(&old, token);
        assert!(!sealed.contains(token), "{sealed}");
        assert_eq!(unseal_with(&old, &sealed).as_deref(), Some(token));
        assert_eq!(unseal_with(&new, &sealed), None);
        // Two seals of one token differ (a fresh nonce each time).
        assert_ne!(seal_with(&old, token), sealed);
    }

    #[test]
    fn a_damaged_copy_does_not_open() {
        let key = parse_keys("key-0123456789abcdef")[0];
        let sealed = seal_with(&key, "4f1c2a9e0b7d4c3a8e6f5d2c1b0a9f8e");
        let mut bytes = sealed.clone().into_bytes();
        let at = sealed.find('.').unwrap() + 40;
        bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
        assert_eq!(unseal_with(&key, &String::from_utf8(bytes).unwrap()), None);
        assert_eq!(unseal_with(&key, "4f1c2a9e0b7d4c3a8e6f5d2c1b0a9f8e"), None);
        assert_eq!(unseal_with(&key, "s1.zz.zz.zz"), None);
    }

    #[test]
    fn only_a_tokens_form_counts_as_a_clear_token() {
        assert!(looks_clear("4f1c2a9e0b7d4c3a8e6f5d2c1b0a9f8e"));
        assert!(!looks_clear(&hash("4f1c2a9e0b7d4c3a8e6f5d2c1b0a9f8e")));
        assert!(!looks_clear("not-a-token-not-a-token-not-a-to"));
    }

    #[test]
    fn the_lookup_hash_is_the_tokens_sha256() {
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn several_keys_may_be_given() {
        assert_eq!(parse_keys("a, b,c").len(), 3);
        assert!(parse_keys("").is_empty());
        assert!(problem("").is_some());
        assert!(problem("short").is_some());
        assert!(problem("0123456789abcdef").is_none());
        assert!(problem("0123456789abcdef,short").is_some());
        assert!(problem("0123456789abcdef,fedcba9876543210").is_none());
    }
}
