//! The gateway's REST router, the whole HTTP stack a browser or script
//! reaches: routing, path and query parsing, body limits, the CSRF guard,
//! the guest-link checks, the selfie memory middleware. The catalog points at
//! a port where nothing listens, so a request that gets past parsing answers
//! 503 from its first query. Whatever the request, the answer is never a 500,
//! and under /api/ it is always the JSON error contract.
#![no_main]

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{header, HeaderName, HeaderValue, Method, Request};
use facepass_gateway::domain::{selfie_memory, Gateway, Peers};
use facepass_gateway::GatewayConfig;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

const METHODS: [Method; 5] = [Method::GET, Method::POST, Method::PUT, Method::DELETE, Method::PATCH];
const PREFIXES: [&str; 5] = ["/api/v1/", "/api/v1/events/", "/e/", "/api/v1/guest/", "/"];

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    })
}

fn router() -> axum::Router {
    static ROUTER: OnceLock<axum::Router> = OnceLock::new();
    ROUTER
        .get_or_init(|| {
            let _guard = runtime().enter();
            let config = GatewayConfig {
                database_url: "postgres://nobody@127.0.0.1:1/nothing".into(),
                max_upload_bytes: 256 << 10,
                max_selfie_bytes: 256 << 10,
                ..GatewayConfig::default()
            };
            let gateway = Gateway {
                selfie_memory: selfie_memory(&config),
                selfie_queue: facepass_gateway::domain::selfie_queue(&config),
                rate: facepass_gateway::limits::RateLimiters::new(&config.rate_limits),
                catalog: facepass_gateway::catalog::Catalog::new(
                    facepass_db::pool(&config.database_url, 1).unwrap(),
                ),
                store: Arc::new(object_store::memory::InMemory::new()),
                peers: Peers::connect(&config).unwrap(),
                config,
                outbox_ready: Arc::new(tokio::sync::Notify::new()),
                readiness: Default::default(),
            };
            facepass_gateway::rest::router(Arc::new(gateway))
        })
        .clone()
}

/// `[method][prefix][path 0xFF header-name 0xFF header-value 0xFF body]`.
fn request(data: &[u8]) -> Option<Request<Body>> {
    let (&selector, rest) = data.split_first()?;
    let method = METHODS[usize::from(selector) % METHODS.len()].clone();
    let prefix = PREFIXES[usize::from(selector >> 4) % PREFIXES.len()];
    let mut parts = rest.splitn(4, |&b| b == 0xFF);
    let path = std::str::from_utf8(parts.next()?).ok()?;
    let name = parts.next().unwrap_or_default();
    let value = parts.next().unwrap_or_default();
    let body = parts.next().unwrap_or_default().to_vec();
    let uri = format!("{prefix}{path}");
    let mut builder = Request::builder().method(method).uri(uri.as_str());
    if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
        builder = builder.header(name, value);
    }
    // The studio app's requests carry JSON; guests' searches a form.
    if selector & 0x08 != 0 {
        builder = builder.header(header::CONTENT_TYPE, "application/json");
    }
    builder.body(Body::from(body)).ok()
}

fuzz_target!(|data: &[u8]| {
    let Some(request) = request(data) else {
        return;
    };
    let path = request.uri().path().to_string();
    runtime().block_on(async {
        let response = router().oneshot(request).await.unwrap();
        let status = response.status();
        assert_ne!(status.as_u16(), 500, "{path}: 500");
        if path.starts_with("/api/") && !status.is_success() {
            let json = response
                .headers()
                .get(header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
            assert!(json, "{path}: {status} without the JSON error body");
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
            let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert!(body["error"]["code"].is_string(), "{path}: {body}");
        }
    });
});
