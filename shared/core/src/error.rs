//! One closed set of error codes for the whole system.
//!
//! Every error a caller can see carries an [`ErrorCode`]. The code travels in
//! gRPC metadata (`x-facepass-error-code`) so a service that calls another can
//! recover it exactly, and it maps exhaustively (no catch-all arm) to a gRPC
//! code and an HTTP status: adding a code breaks the build until both mappings
//! say what it means. Internal details are logged, never sent to callers.

use std::fmt;

/// Metadata key that carries the stable error code across gRPC hops.
pub const ERROR_CODE_METADATA: &str = "x-facepass-error-code";

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
    pub const ALL: [ErrorCode; 14] = [
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
            | ErrorCode::ModelMismatch => true,
            ErrorCode::Unauthenticated
            | ErrorCode::Overloaded
            | ErrorCode::Unavailable
            | ErrorCode::Timeout
            | ErrorCode::Internal => false,
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
/// message without trailing punctuation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::InvalidArgument, message)
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

    /// Recovers the FacePass error from a gRPC status returned by a peer.
    pub fn from_status(status: &tonic::Status) -> Self {
        let code = status
            .metadata()
            .get(ERROR_CODE_METADATA)
            .and_then(|v| v.to_str().ok())
            .and_then(ErrorCode::parse)
            .unwrap_or_else(|| ErrorCode::from_grpc_code(status.code()));
        Error::new(code, status.message().to_string())
    }
}

impl From<Error> for tonic::Status {
    fn from(err: Error) -> Self {
        let mut status = tonic::Status::new(err.code.grpc_code(), err.message);
        if let Ok(value) = err.code.as_str().parse() {
            status.metadata_mut().insert(ERROR_CODE_METADATA, value);
        }
        status
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
    fn internal_errors_hide_their_detail() {
        let err = Error::internal("password=hunter2 in connection string");
        assert_eq!(err.code, ErrorCode::Internal);
        assert!(!err.message.contains("hunter2"));
    }
}
