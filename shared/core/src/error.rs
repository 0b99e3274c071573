//! One closed set of error codes for the whole system.
//!
//! Every error a caller can see carries an [`ErrorCode`]. The code travels in
//! gRPC metadata (`x-facepass-error-code`) so a service that calls another can
//! recover it exactly, and it maps exhaustively (no catch-all arm) to a gRPC
//! code and an HTTP status: adding a code breaks the build until both mappings
//! say what it means. Internal details are logged, never sent to callers.
//!
//! Over gRPC an error also carries the richer error model of Google's API
//! design guide in `grpc-status-details-bin`: a `google.rpc.ErrorInfo`
//! (reason = the stable code, domain `facepass`), a `google.rpc.BadRequest`
//! field violation when the error names a request field, and a
//! `google.rpc.RetryInfo` for the codes worth retrying (docs/errors.md).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use tonic::metadata::{MetadataMap, MetadataValue};
use tonic_types::{ErrorDetails, StatusExt};

/// Metadata key that carries the stable error code across gRPC hops.
pub const ERROR_CODE_METADATA: &str = "x-facepass-error-code";

/// `google.rpc.ErrorInfo.domain` of every FacePass error.
pub const ERROR_DOMAIN: &str = "facepass";

/// The stable, documented error codes (docs/errors.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// A field is missing or malformed.
    InvalidArgument,
    /// No or an unknown credential.
    Unauthenticated,
    /// The credential is valid but may not touch this resource.
    PermissionDenied,
    /// The event, photo or object does not exist (for this studio).
    NotFound,
    /// A resource with the same external id exists.
    AlreadyExists,
    /// The image exceeds the byte or pixel limits.
    ImageTooLarge,
    /// The bytes are not an image FacePass can decode.
    ImageUndecodable,
    /// No usable face was found in a selfie.
    NoFace,
    /// A face was found but cannot be used (too small, ambiguous, ...).
    SelfieUnusable,
    /// The stored faces were made by another model pack.
    ModelMismatch,
    /// A share link past the expiry the studio set.
    LinkExpired,
    /// A share link the studio turned off (or of a disabled studio).
    LinkDisabled,
    /// A guest search without the guest's consent to the privacy policy.
    ConsentRequired,
    /// The service sheds load; retry later.
    Overloaded,
    /// A dependency (database, broker, another service) is down.
    Unavailable,
    /// The work did not finish within its deadline.
    Timeout,
    /// A bug or an unexpected state; details are in the logs.
    Internal,
}

impl ErrorCode {
    /// Every code, for documentation and exhaustive tests.
    pub const ALL: [ErrorCode; 17] = [
        ErrorCode::InvalidArgument,
        ErrorCode::Unauthenticated,
        ErrorCode::PermissionDenied,
        ErrorCode::NotFound,
        ErrorCode::AlreadyExists,
        ErrorCode::ImageTooLarge,
        ErrorCode::ImageUndecodable,
        ErrorCode::NoFace,
        ErrorCode::SelfieUnusable,
        ErrorCode::ModelMismatch,
        ErrorCode::LinkExpired,
        ErrorCode::LinkDisabled,
        ErrorCode::ConsentRequired,
        ErrorCode::Overloaded,
        ErrorCode::Unavailable,
        ErrorCode::Timeout,
        ErrorCode::Internal,
    ];

    /// The stable wire name, e.g. `IMAGE_UNDECODABLE`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidArgument => "INVALID_ARGUMENT",
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::PermissionDenied => "PERMISSION_DENIED",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::AlreadyExists => "ALREADY_EXISTS",
            ErrorCode::ImageTooLarge => "IMAGE_TOO_LARGE",
            ErrorCode::ImageUndecodable => "IMAGE_UNDECODABLE",
            ErrorCode::NoFace => "NO_FACE",
            ErrorCode::SelfieUnusable => "SELFIE_UNUSABLE",
            ErrorCode::ModelMismatch => "MODEL_MISMATCH",
            ErrorCode::LinkExpired => "LINK_EXPIRED",
            ErrorCode::LinkDisabled => "LINK_DISABLED",
            ErrorCode::ConsentRequired => "CONSENT_REQUIRED",
            ErrorCode::Overloaded => "OVERLOADED",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::Timeout => "TIMEOUT",
            ErrorCode::Internal => "INTERNAL",
        }
    }

    /// Parses a wire name back into a code.
    pub fn parse(name: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// The gRPC status code for this error.
    pub const fn grpc_code(self) -> tonic::Code {
        match self {
            ErrorCode::InvalidArgument => tonic::Code::InvalidArgument,
            ErrorCode::Unauthenticated => tonic::Code::Unauthenticated,
            ErrorCode::PermissionDenied => tonic::Code::PermissionDenied,
            ErrorCode::NotFound => tonic::Code::NotFound,
            ErrorCode::AlreadyExists => tonic::Code::AlreadyExists,
            ErrorCode::ImageTooLarge => tonic::Code::InvalidArgument,
            ErrorCode::ImageUndecodable => tonic::Code::InvalidArgument,
            ErrorCode::NoFace => tonic::Code::FailedPrecondition,
            ErrorCode::SelfieUnusable => tonic::Code::FailedPrecondition,
            ErrorCode::ModelMismatch => tonic::Code::FailedPrecondition,
            ErrorCode::LinkExpired => tonic::Code::FailedPrecondition,
            ErrorCode::LinkDisabled => tonic::Code::FailedPrecondition,
            ErrorCode::ConsentRequired => tonic::Code::FailedPrecondition,
            ErrorCode::Overloaded => tonic::Code::ResourceExhausted,
            ErrorCode::Unavailable => tonic::Code::Unavailable,
            ErrorCode::Timeout => tonic::Code::DeadlineExceeded,
            ErrorCode::Internal => tonic::Code::Internal,
        }
    }

    /// The HTTP status for this error (REST gateway).
    pub const fn http_status(self) -> http::StatusCode {
        match self {
            ErrorCode::InvalidArgument => http::StatusCode::BAD_REQUEST,
            ErrorCode::Unauthenticated => http::StatusCode::UNAUTHORIZED,
            ErrorCode::PermissionDenied => http::StatusCode::FORBIDDEN,
            ErrorCode::NotFound => http::StatusCode::NOT_FOUND,
            ErrorCode::AlreadyExists => http::StatusCode::CONFLICT,
            ErrorCode::ImageTooLarge => http::StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::ImageUndecodable => http::StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::NoFace => http::StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::SelfieUnusable => http::StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::ModelMismatch => http::StatusCode::CONFLICT,
            ErrorCode::LinkExpired => http::StatusCode::GONE,
            ErrorCode::LinkDisabled => http::StatusCode::GONE,
            ErrorCode::ConsentRequired => http::StatusCode::PRECONDITION_REQUIRED,
            ErrorCode::Overloaded => http::StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Unavailable => http::StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Timeout => http::StatusCode::GATEWAY_TIMEOUT,
            ErrorCode::Internal => http::StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whether retrying the same work can never succeed (the indexer fails
    /// the photo at once instead of retrying).
    pub const fn is_permanent(self) -> bool {
        match self {
            ErrorCode::InvalidArgument
            | ErrorCode::PermissionDenied
            | ErrorCode::NotFound
            | ErrorCode::AlreadyExists
            | ErrorCode::ImageTooLarge
            | ErrorCode::ImageUndecodable
            | ErrorCode::NoFace
            | ErrorCode::SelfieUnusable
            | ErrorCode::ModelMismatch
            | ErrorCode::LinkExpired
            | ErrorCode::LinkDisabled
            | ErrorCode::ConsentRequired => true,
            ErrorCode::Unauthenticated
            | ErrorCode::Overloaded
            | ErrorCode::Unavailable
            | ErrorCode::Timeout
            | ErrorCode::Internal => false,
        }
    }

    /// How long a caller should wait before retrying the same request, for
    /// the codes where a retry can succeed (`google.rpc.RetryInfo`); `None`
    /// where retrying the same request is pointless or needs a fix first.
    pub const fn retry_delay(self) -> Option<Duration> {
        match self {
            ErrorCode::Overloaded => Some(Duration::from_secs(1)),
            ErrorCode::Unavailable => Some(Duration::from_secs(2)),
            ErrorCode::Timeout => Some(Duration::from_secs(1)),
            ErrorCode::InvalidArgument
            | ErrorCode::Unauthenticated
            | ErrorCode::PermissionDenied
            | ErrorCode::NotFound
            | ErrorCode::AlreadyExists
            | ErrorCode::ImageTooLarge
            | ErrorCode::ImageUndecodable
            | ErrorCode::NoFace
            | ErrorCode::SelfieUnusable
            | ErrorCode::ModelMismatch
            | ErrorCode::LinkExpired
            | ErrorCode::LinkDisabled
            | ErrorCode::ConsentRequired
            | ErrorCode::Internal => None,
        }
    }

    /// The code a gRPC status maps to when it carries no FacePass code
    /// (a transport failure, or a peer that is not FacePass).
    pub const fn from_grpc_code(code: tonic::Code) -> ErrorCode {
        match code {
            tonic::Code::InvalidArgument | tonic::Code::OutOfRange => ErrorCode::InvalidArgument,
            tonic::Code::Unauthenticated => ErrorCode::Unauthenticated,
            tonic::Code::PermissionDenied => ErrorCode::PermissionDenied,
            tonic::Code::NotFound => ErrorCode::NotFound,
            tonic::Code::AlreadyExists => ErrorCode::AlreadyExists,
            tonic::Code::ResourceExhausted => ErrorCode::Overloaded,
            tonic::Code::Unavailable | tonic::Code::Aborted => ErrorCode::Unavailable,
            // tonic answers an expired request timeout with CANCELLED.
            tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => ErrorCode::Timeout,
            tonic::Code::FailedPrecondition => ErrorCode::InvalidArgument,
            tonic::Code::Ok
            | tonic::Code::Unknown
            | tonic::Code::Unimplemented
            | tonic::Code::Internal
            | tonic::Code::DataLoss => ErrorCode::Internal,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error a caller may see: a stable code and a lowercase, human-readable
/// message without trailing punctuation, and the request field at fault when
/// there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
    /// The request field the error is about (`event_id`, `name`,
    /// `photos[3].photo_id`): a `google.rpc.BadRequest` field violation over
    /// gRPC, `field` in the REST error body.
    pub field: Option<String>,
    /// Facts a client acts on, e.g. `existing_id` of ALREADY_EXISTS: the
    /// `google.rpc.ErrorInfo` metadata over gRPC, `details` in the REST
    /// error body.
    pub info: BTreeMap<String, String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
            field: None,
            info: BTreeMap::new(),
        }
    }

    /// The same error with a fact a client acts on (`existing_id`, ...).
    pub fn with_info(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.info.insert(key.into(), value.into());
        self
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::InvalidArgument, message)
    }

    /// INVALID_ARGUMENT about one request field, e.g.
    /// `Error::invalid_field("name", "name is required")`.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::invalid(message).with_field(field)
    }

    /// The same error, naming the request field it is about.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::NotFound, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::Unavailable, message)
    }

    /// Logs the internal detail and returns an error that hides it.
    #[track_caller]
    pub fn internal(detail: impl fmt::Display) -> Self {
        let at = std::panic::Location::caller();
        tracing::error!(detail = %detail, at = %at, "internal error");
        Error::new(ErrorCode::Internal, "internal error")
    }

    /// Recovers the FacePass error from a gRPC status returned by a peer:
    /// the code from `x-facepass-error-code`, else from a FacePass
    /// `ErrorInfo`, else from the gRPC code; the field from `BadRequest`.
    pub fn from_status(status: &tonic::Status) -> Self {
        let details = status.get_error_details();
        let from_header = status
            .metadata()
            .get(ERROR_CODE_METADATA)
            .and_then(|v| v.to_str().ok())
            .and_then(ErrorCode::parse);
        let ours = details
            .error_info()
            .filter(|info| info.domain == ERROR_DOMAIN);
        let from_info = ours.and_then(|info| ErrorCode::parse(&info.reason));
        let info = ours
            .map(|i| i.metadata.clone().into_iter().collect())
            .unwrap_or_default();
        let code = from_header
            .or(from_info)
            .unwrap_or_else(|| ErrorCode::from_grpc_code(status.code()));
        let field = details
            .bad_request()
            .and_then(|b| b.field_violations.first())
            .map(|v| v.field.clone())
            .filter(|f| !f.is_empty());
        Error {
            code,
            message: status.message().to_string(),
            field,
            info,
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(err: Error) -> Self {
        let Error {
            code,
            message,
            field,
            info,
        } = err;
        let mut details = ErrorDetails::new();
        details.set_error_info(
            code.as_str(),
            ERROR_DOMAIN,
            info.into_iter().collect::<HashMap<String, String>>(),
        );
        if let Some(field) = field {
            details.add_bad_request_violation(field, message.clone());
        }
        if let Some(delay) = code.retry_delay() {
            details.set_retry_info(Some(delay));
        }
        let mut metadata = MetadataMap::new();
        metadata.insert(
            ERROR_CODE_METADATA,
            MetadataValue::from_static(code.as_str()),
        );
        tonic::Status::with_error_details_and_metadata(code.grpc_code(), message, details, metadata)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_name() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
        }
        assert_eq!(ErrorCode::parse("NO_SUCH_CODE"), None);
    }

    #[test]
    fn code_survives_a_grpc_hop() {
        for code in ErrorCode::ALL {
            let status: tonic::Status = Error::new(code, "boom").into();
            assert_eq!(status.code(), code.grpc_code());
            let back = Error::from_status(&status);
            assert_eq!(back.code, code);
            assert_eq!(back.message, "boom");
        }
    }

    #[test]
    fn foreign_status_maps_by_grpc_code() {
        let err = Error::from_status(&tonic::Status::unavailable("connection refused"));
        assert_eq!(err.code, ErrorCode::Unavailable);
        assert!(!err.code.is_permanent());
    }

    #[test]
    fn client_errors_are_4xx_and_server_errors_5xx() {
        for code in ErrorCode::ALL {
            let status = code.http_status();
            match code {
                ErrorCode::Internal | ErrorCode::Unavailable | ErrorCode::Timeout => {
                    assert!(status.is_server_error(), "{code}")
                }
                _ => assert!(status.is_client_error(), "{code}"),
            }
        }
    }

    #[test]
    fn status_carries_error_info_for_every_code() {
        for code in ErrorCode::ALL {
            let status: tonic::Status = Error::new(code, "boom").into();
            let details = status.get_error_details();
            let info = details.error_info().expect("ErrorInfo on every error");
            assert_eq!(info.reason, code.as_str());
            assert_eq!(info.domain, ERROR_DOMAIN);
            assert!(
                details.bad_request().is_none(),
                "{code}: no field, no BadRequest"
            );
        }
    }

    #[test]
    fn retry_info_is_present_exactly_for_retryable_codes() {
        for code in ErrorCode::ALL {
            let status: tonic::Status = Error::new(code, "boom").into();
            let retry = status.get_error_details().retry_info().cloned();
            let retryable = matches!(
                code,
                ErrorCode::Overloaded | ErrorCode::Unavailable | ErrorCode::Timeout
            );
            assert_eq!(retry.is_some(), retryable, "{code}");
            assert_eq!(code.retry_delay().is_some(), retryable, "{code}");
            if let Some(retry) = retry {
                let delay = retry.retry_delay.expect("a retry delay");
                assert!(delay > Duration::ZERO, "{code}");
            }
        }
    }

    #[test]
    fn field_travels_as_a_bad_request_violation() {
        let err = Error::invalid_field("event_id", "event_id \"x\" is not a valid id");
        let status: tonic::Status = err.clone().into();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        let details = status.get_error_details();
        let violations = &details.bad_request().expect("BadRequest").field_violations;
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].field, "event_id");
        assert_eq!(violations[0].description, err.message);
        assert!(details.retry_info().is_none());
        let back = Error::from_status(&status);
        assert_eq!(back, err);
    }

    #[test]
    fn info_travels_as_error_info_metadata() {
        let err = Error::new(
            ErrorCode::AlreadyExists,
            "photo p already has external_id \"x\"",
        )
        .with_field("external_id")
        .with_info("existing_id", "p");
        let status: tonic::Status = err.clone().into();
        let details = status.get_error_details();
        let info = details.error_info().expect("ErrorInfo");
        assert_eq!(
            info.metadata.get("existing_id").map(String::as_str),
            Some("p")
        );
        assert_eq!(Error::from_status(&status), err);
    }

    #[test]
    fn error_info_alone_recovers_the_code() {
        // A proxy that drops custom metadata but keeps grpc-status-details-bin.
        let status: tonic::Status = Error::new(ErrorCode::NoFace, "no face").into();
        let bare = tonic::Status::with_details(
            status.code(),
            status.message().to_string(),
            status.details().to_vec().into(),
        );
        assert!(bare.metadata().get(ERROR_CODE_METADATA).is_none());
        assert_eq!(Error::from_status(&bare).code, ErrorCode::NoFace);
    }

    #[test]
    fn foreign_error_info_is_ignored() {
        let mut details = ErrorDetails::new();
        details.set_error_info("NO_FACE", "example.com", HashMap::<String, String>::new());
        let status =
            tonic::Status::with_error_details(tonic::Code::Unavailable, "elsewhere", details);
        assert_eq!(Error::from_status(&status).code, ErrorCode::Unavailable);
    }

    #[test]
    fn internal_errors_hide_their_detail() {
        let err = Error::internal("password=hunter2 in connection string");
        assert_eq!(err.code, ErrorCode::Internal);
        assert!(!err.message.contains("hunter2"));
    }
}
