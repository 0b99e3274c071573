//! Internal service-to-service auth.
//!
//! Each calling service (the gateway and the indexer) presents its own
//! token; each called service (detector, embedder, search) knows which
//! token belongs to which caller (`internal_callers`) and which RPCs each
//! caller may call (its [`Policy`]). A caller's token is a list on the
//! called side, so it can be rotated without downtime: add the new token
//! beside the old, switch the caller, then drop the old one.
//!
//! A single shared `internal_token`, accepted from any caller for any RPC,
//! remains for development and single-secret set-ups. Health checks and
//! reflection stay open for probes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use serde::{Deserialize, Serialize};
use tonic::metadata::MetadataValue;
use tonic::server::NamedService;
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// A service that calls internal RPCs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Gateway,
    Indexer,
}

impl Caller {
    pub fn name(self) -> &'static str {
        match self {
            Caller::Gateway => "gateway",
            Caller::Indexer => "indexer",
        }
    }
}

/// `[internal_callers]` on a called service: each caller's accepted tokens,
/// separated by commas or spaces (`FACEPASS_INTERNAL_CALLERS__GATEWAY=
/// "new,old"` while rotating).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct InternalCallers {
    pub gateway: String,
    pub indexer: String,
}

impl InternalCallers {
    fn tokens(&self) -> Vec<(Caller, String)> {
        let split = |list: &str| {
            list.split([',', ' ', '\n', '\t'])
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        let mut out = Vec::new();
        for token in split(&self.gateway) {
            out.push((Caller::Gateway, token));
        }
        for token in split(&self.indexer) {
            out.push((Caller::Indexer, token));
        }
        out
    }

    /// Configuration problems: tokens too short to be secrets, a token given
    /// to two callers, or the shared token reused as a caller's.
    pub fn problems(&self, shared: &str) -> Vec<String> {
        let mut problems = Vec::new();
        let tokens = self.tokens();
        for (i, (caller, token)) in tokens.iter().enumerate() {
            if token.len() < 16 {
                problems.push(format!(
                    "internal_callers.{}: a token must have at least 16 characters",
                    caller.name()
                ));
            }
            if tokens[..i]
                .iter()
                .any(|(other, t)| t == token && other != caller)
            {
                problems.push(format!(
                    "internal_callers: one token is given to two callers ({})",
                    caller.name()
                ));
            }
            if token == shared {
                problems.push(format!(
                    "internal_callers.{} repeats internal_token: give each caller its own",
                    caller.name()
                ));
            }
        }
        problems
    }
}

/// Which callers may call which RPC of one service: `(method, callers)`,
/// the method as in its path (`/pkg.Service/Method`'s last part). A method
/// that is not listed may be called by no caller with its own token.
pub type Policy = &'static [(&'static str, &'static [Caller])];

/// Who may call a service, built from its configuration.
#[derive(Clone)]
pub struct InternalAuth {
    /// `Bearer <shared token>`: any caller, any RPC.
    shared: Option<String>,
    /// `Bearer <token>` of each caller.
    callers: Vec<(Caller, String)>,
    policy: Policy,
}

impl InternalAuth {
    /// Empty `shared` and no caller tokens turn the check off (local
    /// development only).
    pub fn new(shared: &str, callers: &InternalCallers, policy: Policy) -> Self {
        InternalAuth {
            shared: (!shared.is_empty()).then(|| format!("Bearer {shared}")),
            callers: callers
                .tokens()
                .into_iter()
                .map(|(c, t)| (c, format!("Bearer {t}")))
                .collect(),
            policy,
        }
    }

    fn open(&self) -> bool {
        self.shared.is_none() && self.callers.is_empty()
    }

    /// Checks one request: `Ok` when its token may call `method`.
    pub fn check(&self, authorization: Option<&[u8]>, method: &str) -> Result<(), Status> {
        if self.open() {
            return Ok(());
        }
        let error =
            |code, message: String| -> Status { facepass_core::Error::new(code, message).into() };
        let Some(given) = authorization else {
            return Err(error(
                facepass_core::ErrorCode::Unauthenticated,
                "missing internal token".into(),
            ));
        };
        // Every candidate is compared, so the time taken does not tell
        // which caller (if any) a token belongs to.
        let mut shared = false;
        if let Some(expected) = &self.shared {
            shared = constant_time_eq(given, expected.as_bytes());
        }
        let mut caller = None;
        for (who, expected) in &self.callers {
            if constant_time_eq(given, expected.as_bytes()) {
                caller = Some(*who);
            }
        }
        if shared {
            return Ok(());
        }
        let Some(caller) = caller else {
            return Err(error(
                facepass_core::ErrorCode::Unauthenticated,
                "invalid internal token".into(),
            ));
        };
        let allowed = self
            .policy
            .iter()
            .any(|(m, callers)| *m == method && callers.contains(&caller));
        if allowed {
            Ok(())
        } else {
            Err(error(
                facepass_core::ErrorCode::PermissionDenied,
                format!("the {} may not call {method}", caller.name()),
            ))
        }
    }

    /// Wraps a generated gRPC server so that every call is checked.
    pub fn layer<S>(self, inner: S) -> Authorized<S> {
        Authorized {
            inner,
            auth: Arc::new(self),
        }
    }
}

/// A gRPC service whose calls pass [`InternalAuth`] first.
#[derive(Clone)]
pub struct Authorized<S> {
    inner: S,
    auth: Arc<InternalAuth>,
}

impl<S: NamedService> NamedService for Authorized<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> tower::Service<http::Request<B>> for Authorized<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = request.uri().path().rsplit('/').next().unwrap_or_default();
        let authorization = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        match self.auth.check(authorization, method) {
            Ok(()) => Box::pin(self.inner.call(request)),
            Err(status) => {
                let response = status.into_http();
                Box::pin(async move { Ok(response) })
            }
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

    #[test]
    fn attach_and_check_agree() {
        let request = AttachToken::new("shared-token-00001")
            .call(Request::new(()))
            .unwrap();
        let given = request.metadata().get("authorization").unwrap().as_bytes();
        let auth = InternalAuth::new("shared-token-00001", &InternalCallers::default(), &[]);
        assert!(auth.check(Some(given), "Anything").is_ok());
    }

    const POLICY: Policy = &[
        ("Upsert", &[Caller::Indexer]),
        ("Search", &[Caller::Gateway]),
        ("Stats", &[Caller::Gateway, Caller::Indexer]),
    ];

    fn callers(gateway: &str, indexer: &str) -> InternalCallers {
        InternalCallers {
            gateway: gateway.into(),
            indexer: indexer.into(),
        }
    }

    fn bearer(token: &str) -> Vec<u8> {
        format!("Bearer {token}").into_bytes()
    }

    fn code(result: Result<(), Status>) -> Option<tonic::Code> {
        result.err().map(|s| s.code())
    }

    #[test]
    fn each_caller_may_call_only_its_rpcs() {
        let auth = InternalAuth::new(
            "",
            &callers("gateway-token-0001", "indexer-token-0001"),
            POLICY,
        );
        let gateway = bearer("gateway-token-0001");
        let indexer = bearer("indexer-token-0001");
        assert_eq!(code(auth.check(Some(&gateway), "Search")), None);
        assert_eq!(code(auth.check(Some(&indexer), "Upsert")), None);
        assert_eq!(code(auth.check(Some(&gateway), "Stats")), None);
        assert_eq!(code(auth.check(Some(&indexer), "Stats")), None);
        assert_eq!(
            code(auth.check(Some(&gateway), "Upsert")),
            Some(tonic::Code::PermissionDenied)
        );
        assert_eq!(
            code(auth.check(Some(&indexer), "Search")),
            Some(tonic::Code::PermissionDenied)
        );
        // Unlisted methods are nobody's.
        assert_eq!(
            code(auth.check(Some(&gateway), "Other")),
            Some(tonic::Code::PermissionDenied)
        );
        assert_eq!(
            code(auth.check(Some(&bearer("someone-else-0001")), "Search")),
            Some(tonic::Code::Unauthenticated)
        );
        assert_eq!(
            code(auth.check(None, "Search")),
            Some(tonic::Code::Unauthenticated)
        );
    }

    #[test]
    fn a_caller_may_hold_two_tokens_while_rotating() {
        let auth = InternalAuth::new(
            "",
            &callers("gateway-new-00001, gateway-old-00001", "indexer-token-0001"),
            POLICY,
        );
        assert!(auth
            .check(Some(&bearer("gateway-new-00001")), "Search")
            .is_ok());
        assert!(auth
            .check(Some(&bearer("gateway-old-00001")), "Search")
            .is_ok());
        assert!(auth
            .check(Some(&bearer("gateway-old-00001")), "Upsert")
            .is_err());
    }

    #[test]
    fn the_shared_token_may_call_anything_and_nothing_configured_is_open() {
        let auth = InternalAuth::new("shared-token-00001", &InternalCallers::default(), POLICY);
        assert!(auth
            .check(Some(&bearer("shared-token-00001")), "Other")
            .is_ok());
        assert!(auth.check(Some(&bearer("wrong")), "Search").is_err());
        let open = InternalAuth::new("", &InternalCallers::default(), POLICY);
        assert!(open.check(None, "Upsert").is_ok());
    }

    #[test]
    fn weak_or_reused_tokens_are_configuration_problems() {
        assert!(callers("gateway-token-0001", "indexer-token-0001")
            .problems("")
            .is_empty());
        assert_eq!(callers("short", "").problems("").len(), 1);
        assert_eq!(
            callers("same-token-000001", "same-token-000001")
                .problems("")
                .len(),
            1
        );
        assert_eq!(
            callers("shared-token-00001", "")
                .problems("shared-token-00001")
                .len(),
            1
        );
    }
}
