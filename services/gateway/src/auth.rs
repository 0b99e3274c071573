//! Studio authentication: `authorization: Bearer <api key>` (gRPC metadata
//! or HTTP header). Keys are looked up by their SHA-256; a missing or
//! unknown key is UNAUTHENTICATED, and everything after is scoped to the
//! key's studio.

use facepass_core::{Error, ErrorCode, Result};
use uuid::Uuid;

use crate::catalog::Catalog;

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

/// The studio behind an API key.
pub async fn studio(catalog: &Catalog, header: Option<&str>) -> Result<Uuid> {
    let key = bearer(header)?;
    catalog
        .studio_for_key(key)
        .await?
        .ok_or_else(|| Error::new(ErrorCode::Unauthenticated, "unknown or revoked api key"))
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
}
