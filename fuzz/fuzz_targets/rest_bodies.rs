//! The REST API's request bodies and query strings, parsed as the handlers
//! parse them (serde_json into the request models, serde_urlencoded into the
//! query models, then the text checks every name, id and token goes
//! through), and the page cursors a client sends back. Nothing may panic,
//! and whatever passes the text checks is text.
#![no_main]

use facepass_core::text;
use facepass_gateway::rest::model;
use libfuzzer_sys::fuzz_target;

fn json<T: serde::de::DeserializeOwned>(data: &[u8]) -> Option<T> {
    serde_json::from_slice(data).ok()
}

fn query<T: serde::de::DeserializeOwned>(data: &[u8]) -> Option<T> {
    serde_urlencoded::from_bytes(data).ok()
}

fn checked(field: &str, value: &str, max: usize) {
    if text::text(field, value, max).is_ok() {
        assert!(value.chars().count() <= max, "{field}: over {max} characters passed");
        assert!(value.chars().all(text::is_text_char), "{field}: a control character passed");
    }
    let clean = text::sanitize(value, max);
    assert!(clean.chars().count() <= max);
    let _ = text::token(field, value, text::MAX_TOKEN_CHARS);
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, data)) = data.split_first() else {
        return;
    };
    match which % 12 {
        0 => {
            if let Some(new) = json::<model::NewEvent>(data) {
                checked("name", &new.name, 200);
                checked("external_id", &new.external_id, 200);
            }
        }
        1 => {
            let _ = json::<model::RetryFailedBody>(data);
        }
        2 => {
            let _ = json::<model::DownloadBody>(data);
        }
        3 => {
            let _ = json::<model::BrandingBody>(data);
        }
        4 => {
            let _ = json::<model::RegisterBody>(data);
        }
        5 => {
            let _ = json::<model::NewWebhook>(data);
            let _ = json::<model::ShareLink>(data);
            let _ = json::<model::Retention>(data);
            let _ = json::<model::GuestTogether>(data);
        }
        6 => {
            let _ = query::<model::EventPageQuery>(data);
            let _ = query::<model::PhotoPageQuery>(data);
        }
        7 => {
            let _ = query::<model::AuditQuery>(data);
            let _ = query::<model::UploadQuery>(data);
            let _ = query::<model::ImageQuery>(data);
        }
        8 => {
            if let Ok(token) = std::str::from_utf8(data) {
                let _ = facepass_gateway::domain::decode_cursor(token);
            }
        }
        _ => {
            if let Ok(value) = std::str::from_utf8(data) {
                checked("name", value, 1 + usize::from(which) % 64);
            }
        }
    }
});
