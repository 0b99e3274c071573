//! Things every FacePass service agrees on: the closed set of error codes
//! (mapped to gRPC codes and HTTP statuses, with `google.rpc` details), how
//! text fields are checked (`text`), and how configuration is layered
//! (defaults, then an optional TOML file, then `FACEPASS_*` variables).

pub mod config;
pub mod error;
pub mod media;
pub mod pack;
pub mod preview;
pub mod text;

/// Parses a UUID field of a request, naming the field when it is malformed.
/// Only a short value is echoed in the message (escaped, so a NUL shows as
/// `\0`); nothing but a parsed id ever reaches a query.
pub fn parse_id(field: &str, value: &str) -> Result<uuid::Uuid> {
    if value.is_empty() {
        return Err(Error::invalid_field(field, format!("{field} is required")));
    }
    uuid::Uuid::parse_str(value).map_err(|_| {
        let message = if value.chars().count() <= 64 {
            format!("{field} {value:?} is not a valid id")
        } else {
            format!("{field} is not a valid id")
        };
        Error::invalid_field(field, message)
    })
}

pub use error::{Error, ErrorCode, Result};
