//! Text fields are validated as text before they reach PostgreSQL, the
//! object store or a log line: no NUL or other control characters, and
//! length limits count characters (Unicode scalar values), not bytes, so a
//! 120-character Russian event name is as welcome as an English one.
//!
//! Every refusal is INVALID_ARGUMENT naming the field, so it travels as a
//! `google.rpc.BadRequest` field violation (docs/errors.md).

use crate::{Error, Result};

/// Longest event name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest `external_id` (event or photo), in characters.
pub const MAX_EXTERNAL_ID_CHARS: usize = 200;
/// Longest object key or file name, in characters.
pub const MAX_KEY_CHARS: usize = 1024;
/// Longest opaque token (share link, page token), in characters.
pub const MAX_TOKEN_CHARS: usize = 256;

/// Whether `c` may appear in a single-line text field: no control
/// characters (C0 including NUL, tab and line breaks, DEL, C1), no line or
/// paragraph separators and no Unicode noncharacters.
pub fn is_text_char(c: char) -> bool {
    let v = c as u32;
    !(c.is_control()
        || c == '\u{2028}'
        || c == '\u{2029}'
        || (0xFDD0..=0xFDEF).contains(&v)
        || v & 0xFFFE == 0xFFFE)
}

/// Checks a single-line text field: at most `max_chars` characters, none of
/// them a control character or another character that is not text (see
/// [`is_text_char`]). Empty text passes; required fields check that first.
pub fn text(field: &str, value: &str, max_chars: usize) -> Result<()> {
    let chars = value.chars().count();
    if chars > max_chars {
        return Err(Error::invalid_field(
            field,
            format!("{field} is {chars} characters, the limit is {max_chars}"),
        ));
    }
    if let Some((at, c)) = value.chars().enumerate().find(|&(_, c)| !is_text_char(c)) {
        return Err(Error::invalid_field(
            field,
            format!(
                "{field} contains the character U+{:04X} at position {}, which is not allowed in text",
                c as u32,
                at + 1
            ),
        ));
    }
    Ok(())
}

/// Like [`text`], and the value must not be empty or only whitespace.
pub fn required_text(field: &str, value: &str, max_chars: usize) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::invalid_field(field, format!("{field} is required")));
    }
    text(field, value, max_chars)
}

/// Checks an opaque token this API issued (a share link token, a page
/// token): printable ASCII without spaces, at most `max_chars` long. The
/// value is not echoed: it may be anything a caller pasted.
pub fn token(field: &str, value: &str, max_chars: usize) -> Result<()> {
    if value.len() > max_chars || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::invalid_field(
            field,
            format!("{field} is not one this API issued"),
        ));
    }
    Ok(())
}

/// Makes free text from another service (a failure reason) safe to store:
/// every character [`is_text_char`] refuses becomes U+FFFD, and the text is
/// cut to `max_chars` characters. For fields that must be recorded even when
/// they are odd, where refusing would lose the record.
pub fn sanitize(value: &str, max_chars: usize) -> String {
    value
        .chars()
        .take(max_chars)
        .map(|c| if is_text_char(c) { c } else { '\u{FFFD}' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    #[test]
    fn cyrillic_names_count_characters_not_bytes() {
        let name: String = "Свадьба".chars().cycle().take(120).collect();
        assert!(name.len() > 200, "the name is {} bytes", name.len());
        text("name", &name, MAX_NAME_CHARS).unwrap();
        let exactly: String = "ж".repeat(200);
        text("name", &exactly, MAX_NAME_CHARS).unwrap();
    }

    #[test]
    fn too_long_text_is_refused_naming_the_field() {
        let name = "ж".repeat(201);
        let err = text("name", &name, MAX_NAME_CHARS).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidArgument);
        assert_eq!(err.field.as_deref(), Some("name"));
        assert_eq!(err.message, "name is 201 characters, the limit is 200");
    }

    #[test]
    fn nul_and_control_characters_are_refused() {
        for bad in [
            "a\0b",
            "a\nb",
            "tab\there",
            "\r",
            "del\u{7f}",
            "c1\u{85}",
            "sep\u{2028}",
        ] {
            let err = text("name", bad, MAX_NAME_CHARS).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidArgument, "{bad:?}");
            assert_eq!(err.field.as_deref(), Some("name"), "{bad:?}");
        }
        let err = text("name", "a\0b", MAX_NAME_CHARS).unwrap_err();
        assert_eq!(
            err.message,
            "name contains the character U+0000 at position 2, which is not allowed in text"
        );
        assert!(text("name", "x\u{FFFF}", 10).is_err());
        assert!(text("name", "x\u{FDD0}", 10).is_err());
    }

    #[test]
    fn ordinary_text_passes() {
        for good in [
            "",
            "Wedding of Ann & Bob",
            "Выпускной 11 «Б» — 2025",
            "結婚式 🎉",
            "مدرسة",
            "zero\u{200D}width joiner",
        ] {
            text("name", good, MAX_NAME_CHARS).unwrap();
        }
    }

    #[test]
    fn required_text_refuses_blank_values() {
        for blank in ["", "   "] {
            let err = required_text("name", blank, MAX_NAME_CHARS).unwrap_err();
            assert_eq!(err.message, "name is required");
            assert_eq!(err.field.as_deref(), Some("name"));
        }
        required_text("name", "Ann", MAX_NAME_CHARS).unwrap();
    }

    #[test]
    fn tokens_are_printable_ascii() {
        token("token", "4f1c2a9e0b7d4c3a8e6f5d2c1b0a9f8e", MAX_TOKEN_CHARS).unwrap();
        let long = "a".repeat(MAX_TOKEN_CHARS + 1);
        for bad in ["a\0b", "a b", "ключ", long.as_str()] {
            let err = token("token", bad, MAX_TOKEN_CHARS).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidArgument);
            assert_eq!(err.field.as_deref(), Some("token"));
            assert!(!err.message.contains(bad));
        }
    }

    #[test]
    fn ids_name_their_field_and_echo_only_short_values() {
        let err = crate::parse_id("event_id", "a\0b").unwrap_err();
        assert_eq!(err.field.as_deref(), Some("event_id"));
        assert_eq!(err.message, "event_id \"a\\0b\" is not a valid id");
        let err = crate::parse_id("event_id", &"x".repeat(10_000)).unwrap_err();
        assert_eq!(err.message, "event_id is not a valid id");
        let err = crate::parse_id("photo_id", "").unwrap_err();
        assert_eq!(err.message, "photo_id is required");
        assert_eq!(err.field.as_deref(), Some("photo_id"));
    }

    #[test]
    fn sanitize_replaces_what_text_refuses() {
        assert_eq!(sanitize("a\0b\nc", 100), "a\u{FFFD}b\u{FFFD}c");
        assert_eq!(sanitize("жжжж", 2), "жж");
        let clean = sanitize("детектор: \0 сломан", 1000);
        text("reason", &clean, 1000).unwrap();
    }
}
