//! Things every FacePass service agrees on: the closed set of error codes
//! (mapped to gRPC codes and HTTP statuses) and how configuration is layered
//! (defaults, then an optional TOML file, then `FACEPASS_*` variables).

pub mod config;
pub mod error;
pub mod media;

/// Parses a UUID field of a request, naming the field when it is malformed.
pub fn parse_id(field: &str, value: &str) -> Result<uuid::Uuid> {
    if value.is_empty() {
        return Err(Error::invalid(format!("{field} is required")));
    }
    uuid::Uuid::parse_str(value)
        .map_err(|_| Error::invalid(format!("{field} {value:?} is not a valid id")))
}

pub use error::{Error, ErrorCode, Result};
