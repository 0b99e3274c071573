//! Internal service-to-service auth: a shared bearer token that the internal
//! services (detector, embedder, search) require when one is configured, and
//! that their clients attach. Health checks stay open for probes.

use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// Checks `authorization: Bearer <token>` on incoming requests.
#[derive(Clone)]
pub struct RequireToken {
    expected: Option<String>,
}

impl RequireToken {
    /// `None` or an empty token disables the check (local development only).
    pub fn new(token: &str) -> Self {
        RequireToken {
            expected: (!token.is_empty()).then(|| format!("Bearer {token}")),
        }
    }
}

impl Interceptor for RequireToken {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(expected) = &self.expected else {
            return Ok(request);
        };
        let given = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        match given {
            Some(given) if constant_time_eq(given.as_bytes(), expected.as_bytes()) => Ok(request),
            Some(_) => Err(facepass_core::Error::new(
                facepass_core::ErrorCode::Unauthenticated,
                "invalid internal token",
            )
            .into()),
            None => Err(facepass_core::Error::new(
                facepass_core::ErrorCode::Unauthenticated,
                "missing internal token",
            )
            .into()),
        }
    }
}

/// Adds `authorization: Bearer <token>` to outgoing requests.
#[derive(Clone)]
pub struct AttachToken {
    value: Option<MetadataValue<tonic::metadata::Ascii>>,
}

impl AttachToken {
    pub fn new(token: &str) -> Self {
        AttachToken {
            value: (!token.is_empty())
                .then(|| format!("Bearer {token}").parse().ok())
                .flatten(),
        }
    }
}

impl Interceptor for AttachToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.value {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        // The caller's trace continues in the peer (W3C traceparent).
        for (key, value) in crate::telemetry::current_headers() {
            if let (Ok(key), Ok(value)) = (
                tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
                value.parse(),
            ) {
                request.metadata_mut().insert(key, value);
            }
        }
        Ok(request)
    }
}

/// Compares two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_with(auth: Option<&str>) -> Request<()> {
        let mut request = Request::new(());
        if let Some(auth) = auth {
            request
                .metadata_mut()
                .insert("authorization", auth.parse().unwrap());
        }
        request
    }

    #[test]
    fn token_is_required_when_configured() {
        let mut check = RequireToken::new("s3cret");
        assert!(check.call(request_with(Some("Bearer s3cret"))).is_ok());
        let wrong = check.call(request_with(Some("Bearer nope"))).unwrap_err();
        assert_eq!(wrong.code(), tonic::Code::Unauthenticated);
        let missing = check.call(request_with(None)).unwrap_err();
        assert_eq!(missing.code(), tonic::Code::Unauthenticated);
    }

    #[test]
    fn attach_and_require_agree() {
        let request = AttachToken::new("abc").call(Request::new(())).unwrap();
        assert!(RequireToken::new("abc").call(request).is_ok());
    }

    #[test]
    fn empty_token_disables_the_check() {
        assert!(RequireToken::new("").call(request_with(None)).is_ok());
    }
}
