//! Studio authentication: `authorization: Bearer <api key>` (gRPC metadata
//! or HTTP header). Keys are looked up by their SHA-256; a missing or
//! unknown key is UNAUTHENTICATED, and everything after is scoped to the
//! key's studio.

use crate::catalog::Catalog;
use crate::keys::Caller;
use facepass_core::{Error, ErrorCode, Result};

/// The key from an `authorization` header value.
pub fn bearer(value: Option<&str>) -> Result<&str> {
    let value = value.ok_or_else(|| {
        Error::new(
            ErrorCode::Unauthenticated,
            "missing api key: send `authorization: Bearer <key>`",
        )
    })?;
    value
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            Error::new(
                ErrorCode::Unauthenticated,
                "authorization must be `Bearer <key>`",
            )
        })
}

/// The studio behind an API key, and what the key may do.
pub async fn caller(catalog: &Catalog, header: Option<&str>) -> Result<Caller> {
    let key = bearer(header)?;
    catalog.authenticate(key).await
}

/// Whether two secrets are equal, compared in constant time (no early exit
/// that would tell how much of a guess was right).
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The operator credential of the admin API: `Bearer <admin_token>`,
/// compared in constant time. With no token configured the admin API is off.
pub fn operator(configured: &str, header: Option<&str>) -> Result<()> {
    if configured.is_empty() {
        return Err(Error::new(
            ErrorCode::PermissionDenied,
            "the admin API is off: set the gateway's admin_token",
        ));
    }
    let given = bearer(header)?;
    if same_secret(given, configured) {
        Ok(())
    } else {
        Err(Error::new(ErrorCode::Unauthenticated, "wrong admin token"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer(Some("Bearer fp_abc")).unwrap(), "fp_abc");
        assert_eq!(bearer(None).unwrap_err().code, ErrorCode::Unauthenticated);
        assert_eq!(
            bearer(Some("Basic xyz")).unwrap_err().code,
            ErrorCode::Unauthenticated
        );
        assert_eq!(
            bearer(Some("Bearer ")).unwrap_err().code,
            ErrorCode::Unauthenticated
        );
    }

    #[test]
    fn operator_token() {
        assert!(operator("s3cret", Some("Bearer s3cret")).is_ok());
        assert_eq!(
            operator("s3cret", Some("Bearer s3cre")).unwrap_err().code,
            ErrorCode::Unauthenticated
        );
        assert_eq!(
            operator("s3cret", None).unwrap_err().code,
            ErrorCode::Unauthenticated
        );
        // Off without a configured token, whatever is sent.
        assert_eq!(
            operator("", Some("Bearer ")).unwrap_err().code,
            ErrorCode::PermissionDenied
        );
    }
}
