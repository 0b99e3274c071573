//! The browser apps (web/, built by Vite into web/dist and embedded at
//! compile time by build.rs): the guest's page at `/e/{token}`, the studio
//! dashboard at `/studio` (`/` leads there) and their assets under
//! `/assets/`. Pages carry a Content-Security-Policy that
//! allows nothing but the gateway itself and no inline script.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));
}

/// What the pages may load: the gateway's own scripts, styles, images
/// (previews are same-origin; `blob:` for the ZIP download, `data:` for
/// small inlined icons) and API; no frames, no inline script.
pub const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; \
    frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'";

/// An embedded file of web/dist.
pub fn asset(path: &str) -> Option<&'static [u8]> {
    embedded::ASSETS
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, bytes)| *bytes)
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// An HTML page of the app: never cached (it names the current assets).
pub fn page(name: &str) -> Response {
    match asset(name) {
        Some(bytes) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
                (
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static(PAGE_CSP),
                ),
            ],
            bytes,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `GET /e/{token}`: the guest's page (the token is read by the app).
pub async fn guest_page() -> Response {
    page("guest.html")
}

fn missing(what: &str) -> Response {
    super::ApiError(facepass_core::Error::not_found(format!(
        "no such file: {what}"
    )))
    .into_response()
}

/// `GET /studio`: the studio dashboard (it signs in on its own).
pub async fn studio_page() -> Response {
    page("studio.html")
}

/// `GET /favicon.svg`.
pub async fn favicon() -> Response {
    serve("favicon.svg").unwrap_or_else(|| missing("favicon.svg"))
}

/// `GET /assets/{*file}`: hashed names never change, so browsers keep them.
pub async fn assets(Path(file): Path<String>) -> Response {
    serve(&file).unwrap_or_else(|| missing("that asset"))
}

fn serve(file: &str) -> Option<Response> {
    let bytes = asset(file)?;
    let cache = if file.contains('-') {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=86400"
    };
    Some(
        (
            [
                (header::CONTENT_TYPE, content_type(file)),
                (header::CACHE_CONTROL, cache),
            ],
            bytes,
        )
            .into_response(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_guest_app_is_embedded_and_loads_only_its_own_assets() {
        let html = std::str::from_utf8(asset("guest.html").expect("guest.html")).unwrap();
        assert!(html.contains("<div id=\"app\">"));
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "{html}"
        );
        // Every script and stylesheet it names is embedded, and none is inline.
        for part in html
            .split("src=\"")
            .skip(1)
            .chain(html.split("href=\"").skip(1))
        {
            let url = part.split('"').next().unwrap();
            let file = url
                .strip_prefix("/assets/")
                .unwrap_or_else(|| panic!("{url}"));
            assert!(asset(file).is_some(), "{file} is not embedded");
        }
        assert!(!html.contains("<script>"), "an inline script: {html}");
        assert!(asset("favicon.svg").is_some());
        assert!(asset("studio.html").is_some());
    }
}
