//! How FacePass reads a peer service's failure: one policy for every caller
//! of the detector, the embedder and the search service.
//!
//! | failure | codes | what the caller sees |
//! |---|---|---|
//! | the caller's fault | INVALID_ARGUMENT, NOT_FOUND, IMAGE_TOO_LARGE, IMAGE_UNDECODABLE, NO_FACE, SELFIE_UNUSABLE, PERMISSION_DENIED, ALREADY_EXISTS | the peer's code and message: they are about the caller's input |
//! | permanent | MODEL_MISMATCH | the code, the message prefixed with the service: retrying cannot help |
//! | retryable | UNAVAILABLE, OVERLOADED, TIMEOUT, UNAUTHENTICATED, INTERNAL | `<service> is unavailable, try again` (OVERLOADED and TIMEOUT keep their code, the rest become UNAVAILABLE); the peer's detail goes to the log |
//!
//! A rejected internal token is our configuration, never the caller's
//! credentials: it is reported as unavailability and logged.

use facepass_core::{Error, ErrorCode};

/// What kind of failure a peer reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The request's content is the problem; it keeps its code and message.
    Caller,
    /// Retrying the same work cannot succeed.
    Permanent,
    /// A later retry may succeed.
    Retryable,
}

/// The class of a FacePass error code returned by a peer. Exhaustive: a new
/// code must be classified here.
pub const fn classify(code: ErrorCode) -> Failure {
    match code {
        ErrorCode::InvalidArgument
        | ErrorCode::NotFound
        | ErrorCode::ImageTooLarge
        | ErrorCode::ImageUndecodable
        | ErrorCode::NoFace
        | ErrorCode::SelfieUnusable
        | ErrorCode::PermissionDenied
        | ErrorCode::AlreadyExists
        | ErrorCode::LinkExpired
        | ErrorCode::LinkDisabled
        | ErrorCode::ConsentRequired => Failure::Caller,
        ErrorCode::ModelMismatch => Failure::Permanent,
        ErrorCode::Unavailable
        | ErrorCode::Overloaded
        | ErrorCode::Timeout
        | ErrorCode::Unauthenticated
        | ErrorCode::Internal => Failure::Retryable,
    }
}

/// Maps a failed call to `service` onto the error its caller reports.
pub fn peer(service: &'static str) -> impl Fn(tonic::Status) -> Error {
    move |status| {
        let err = Error::from_status(&status);
        match classify(err.code) {
            Failure::Caller => err,
            Failure::Permanent => {
                tracing::warn!(service, code = %err.code, message = %err.message, "peer refused for good");
                Error::new(err.code, format!("{service}: {}", err.message))
            }
            Failure::Retryable => {
                tracing::warn!(service, code = %err.code, message = %err.message, "peer call failed");
                let code = match err.code {
                    ErrorCode::Overloaded | ErrorCode::Timeout => err.code,
                    _ => ErrorCode::Unavailable,
                };
                Error::new(code, format!("{service} is unavailable, try again"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_agrees_with_what_the_indexer_retries() {
        for code in ErrorCode::ALL {
            let retryable = classify(code) == Failure::Retryable;
            assert_eq!(retryable, !code.is_permanent(), "{code}");
        }
    }

    #[test]
    fn callers_see_their_own_errors_and_nothing_internal() {
        let status: tonic::Status = Error::new(ErrorCode::NoFace, "no face found").into();
        let err = peer("detector")(status);
        assert_eq!(
            (err.code, err.message.as_str()),
            (ErrorCode::NoFace, "no face found")
        );

        let status = tonic::Status::unavailable("tcp connect error: 10.0.0.7:50052");
        let err = peer("embedder")(status);
        assert_eq!(err.code, ErrorCode::Unavailable);
        assert_eq!(err.message, "embedder is unavailable, try again");

        let status: tonic::Status =
            Error::new(ErrorCode::Unauthenticated, "invalid internal token").into();
        assert_eq!(peer("search")(status).code, ErrorCode::Unavailable);

        let status: tonic::Status = Error::new(ErrorCode::Timeout, "deadline").into();
        assert_eq!(peer("search")(status).code, ErrorCode::Timeout);

        let status: tonic::Status =
            Error::new(ErrorCode::ModelMismatch, "event holds another pack").into();
        let err = peer("search")(status);
        assert_eq!(err.code, ErrorCode::ModelMismatch);
        assert_eq!(err.message, "search: event holds another pack");
    }
}
