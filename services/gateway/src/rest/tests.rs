//! The error contract of the REST router, without a database: the
//! catalog's pool points at a port where nothing listens, so a request
//! that reached a query would answer 503 UNAVAILABLE instead.

use axum::body::Body;
use axum::http::Request;
use tower::ServiceExt;

use super::stack::{is_json, with_limits, Limits};
use super::*;
use crate::catalog::Catalog;
use crate::domain::Peers;
use crate::GatewayConfig;
use serde_json::json;

fn gateway(max_upload_bytes: usize) -> Arc<Gateway> {
    gateway_with(GatewayConfig {
        max_upload_bytes,
        max_selfie_bytes: max_upload_bytes.min(10 << 20),
        ..GatewayConfig::default()
    })
}

fn gateway_with(config: GatewayConfig) -> Arc<Gateway> {
    let config = GatewayConfig {
        database_url: "postgres://nobody@127.0.0.1:1/nothing".into(),
        ..config
    };
    Arc::new(Gateway {
        selfie_memory: crate::domain::selfie_memory(&config),
        selfie_queue: crate::domain::selfie_queue(&config),
        rate: crate::limits::RateLimiters::new(&config.rate_limits),
        catalog: Catalog::new(facepass_db::pool(&config.database_url, 1).unwrap()),
        store: Arc::new(object_store::memory::InMemory::new()),
        peers: Peers::connect(&config).unwrap(),
        config,
        outbox_ready: Arc::new(tokio::sync::Notify::new()),
        readiness: Default::default(),
    })
}

async fn send(app: Router, method: &str, uri: &str, body: Body) -> (StatusCode, HeaderMap, Value) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(body)
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    assert!(is_json(&response), "{method} {uri}: {status} is not JSON");
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let json: Value = serde_json::from_slice(&bytes).unwrap();
    (status, headers, json)
}

fn code(json: &Value) -> &str {
    json["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn unknown_route_is_json_not_found() {
    let app = router(gateway(1 << 20));
    let (status, headers, json) = send(app, "GET", "/api/v1/nothing/here", Body::empty()).await;
    // JSON answers are not cached (a 410 would be, heuristically).
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    // Nothing the API answers may run scripts or be framed.
    assert_eq!(
        headers[header::CONTENT_SECURITY_POLICY],
        "default-src 'none'; frame-ancestors 'none'; sandbox"
    );
    assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(code(&json), "NOT_FOUND");
    assert_eq!(
        json["error"]["message"],
        "no such endpoint: /api/v1/nothing/here"
    );
}

#[tokio::test]
async fn wrong_method_is_json_405_with_allow() {
    let app = router(gateway(1 << 20));
    let (status, headers, json) = send(app, "PUT", "/api/v1/events", Body::empty()).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(code(&json), "INVALID_ARGUMENT");
    let allow = headers.get(header::ALLOW).unwrap().to_str().unwrap();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
}

#[tokio::test]
async fn missing_api_key_is_json_unauthenticated() {
    let app = router(gateway(1 << 20));
    let (status, _, json) = send(app, "GET", "/api/v1/events", Body::empty()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(code(&json), "UNAUTHENTICATED");
}

#[tokio::test]
async fn malformed_query_is_json_invalid_argument() {
    let app = router(gateway(1 << 20));
    let (status, _, json) = send(app, "GET", "/api/v1/events?page_size=many", Body::empty()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&json), "INVALID_ARGUMENT");
    let message = json["error"]["message"].as_str().unwrap();
    assert!(message.contains("page_size"), "{message}");
}

#[tokio::test]
async fn body_over_the_limit_is_json_image_too_large() {
    // Limit: 1 KiB + 64 KiB of slack.
    let app = router(gateway(1024));
    let body = Body::from(vec![0u8; 200 * 1024]);
    let (status, _, json) = send(app, "POST", "/api/v1/events", body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(code(&json), "IMAGE_TOO_LARGE");
    let message = json["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&(1024 + 64 * 1024).to_string()),
        "{message}"
    );
}

#[tokio::test]
async fn share_token_with_nul_is_refused_before_any_query() {
    let app = router(gateway(1 << 20));
    for uri in ["/api/v1/guest/a%00b", "/api/v1/guest/a%00b/photos/x"] {
        let (status, _, json) = send(app.clone(), "GET", uri, Body::empty()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(code(&json), "INVALID_ARGUMENT", "{uri}");
        assert_eq!(json["error"]["field"], "token", "{uri}");
    }
}

fn slow_app(timeout_ms: u64, concurrency: usize) -> Router {
    let routes = Router::new()
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .route("/fast", get(|| async { "now" }));
    with_limits(
        routes,
        &Limits {
            max_body_bytes: 1024,
            timeout: Duration::from_millis(timeout_ms),
            concurrency,
        },
    )
}

#[tokio::test]
async fn timeout_is_json_504() {
    let (status, _, json) = send(slow_app(50, 4), "GET", "/slow", Body::empty()).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(code(&json), "TIMEOUT");
}

#[tokio::test]
async fn waiting_for_a_slot_counts_against_the_timeout() {
    // One slot, 300 ms. /hold keeps the slot 250 ms (in time); /work
    // needs 200 ms, in time on its own, but it first waits ~200 ms for
    // the slot: only a deadline that counts the wait answers 504.
    let routes = Router::new()
        .route(
            "/hold",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(250)).await;
                Json(json!({"held": true}))
            }),
        )
        .route(
            "/work",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(200)).await;
                Json(json!({"done": true}))
            }),
        );
    let app = with_limits(
        routes,
        &Limits {
            max_body_bytes: 1024,
            timeout: Duration::from_millis(300),
            concurrency: 1,
        },
    );
    let (status, _, _) = send(app.clone(), "GET", "/work", Body::empty()).await;
    assert_eq!(status, StatusCode::OK, "alone, /work is in time");
    let hold = tokio::spawn(send(app.clone(), "GET", "/hold", Body::empty()));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (status, _, json) = send(app, "GET", "/work", Body::empty()).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(code(&json), "TIMEOUT");
    let (status, _, _) = hold.await.unwrap();
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn error_body_names_the_field() {
    let response = ApiError(Error::invalid_field("name", "name is required")).into_response();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let json: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        json,
        json!({"error": {"code": "INVALID_ARGUMENT", "message": "name is required", "field": "name"}})
    );
}

/// The document is served, is OpenAPI 3.1, and describes each route the
/// router serves with its security and error responses.
#[tokio::test]
async fn the_openapi_document_describes_the_routes() {
    let app = router(gateway(1 << 20));
    let (status, _, doc) = send(app.clone(), "GET", "/api/v1/openapi.json", Body::empty()).await;
    assert_eq!(status, StatusCode::OK);
    if let Ok(path) = std::env::var("FACEPASS_DUMP_OPENAPI") {
        std::fs::write(path, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    }
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let paths = doc["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            if !["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                continue;
            }
            operations += 1;
            let id = op["operationId"].as_str().unwrap_or_default();
            assert!(!id.is_empty(), "{method} {path} has no operationId");
            let responses = op["responses"].as_object().unwrap();
            for status in ["400", "503", "default"] {
                assert!(responses.contains_key(status), "{id}: no {status} response");
            }
            let guest = path.starts_with("/api/v1/guest/");
            // Studio operations take the API key with a scope; guest ones
            // and the dashboard's sign-in none.
            let keyless = guest || path == "/api/v1/session";
            let scopes = &op["security"][0]["api_key"];
            assert_eq!(
                scopes.is_array(),
                !keyless,
                "{id}: security {:?}",
                op["security"]
            );
            if !keyless {
                assert!(responses.contains_key("401"), "{id}: no 401 response");
                assert!(responses.contains_key("403"), "{id}: no 403 response");
            }
            // The route is served: a request reaches a handler, not the
            // 404/405 fallback (no key: 401, or the guest link's lookup).
            let uri = path
                .replace("{event_id}", "00000000-0000-4000-8000-000000000000")
                .replace("{photo_id}", "00000000-0000-4000-8000-000000000000")
                .replace("{webhook_id}", "00000000-0000-4000-8000-000000000000")
                .replace("{delivery_id}", "00000000-0000-4000-8000-000000000000")
                .replace("{face_id}", "00000000-0000-4000-8000-000000000000.0")
                .replace("{token}", "some-token");
            let request = Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(&uri)
                .body(Body::empty())
                .unwrap();
            let response = app.clone().oneshot(request).await.unwrap();
            assert!(
                ![StatusCode::NOT_FOUND, StatusCode::METHOD_NOT_ALLOWED]
                    .contains(&response.status()),
                "{method} {uri}: {}",
                response.status()
            );
        }
    }
    assert!(operations >= 33, "only {operations} operations");
    // Every reference resolves.
    fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(target)) = map.get("$ref") {
                    out.push(target);
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut targets = Vec::new();
    refs(&doc, &mut targets);
    assert!(targets.len() > 50, "{} references", targets.len());
    for target in targets {
        let pointer = target.strip_prefix('#').expect("a local reference");
        assert!(doc.pointer(pointer).is_some(), "{target} does not resolve");
    }
    let codes = &doc["components"]["schemas"]["ErrorObject"]["properties"]["code"];
    let names: Vec<_> = facepass_core::ErrorCode::ALL
        .iter()
        .map(|c| c.as_str())
        .collect();
    let listed = doc["components"]["schemas"]["ErrorCodeName"]["enum"].clone();
    assert!(codes.to_string().contains("ErrorCodeName"), "{codes}");
    assert_eq!(listed, serde_json::json!(names));
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"]["scheme"],
        "bearer"
    );
}

/// The browsable page is served from the binary and forbids the browser to
/// load anything from elsewhere.
#[tokio::test]
async fn the_docs_page_loads_nothing_from_outside() {
    let app = router(gateway(1 << 20));
    for uri in ["/api/v1/docs/", "/api/v1/docs/swagger-initializer.js"] {
        let request = Request::builder().uri(uri).body(Body::empty()).unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{uri}");
        assert_eq!(
            response.headers()[header::CONTENT_SECURITY_POLICY],
            super::openapi::DOCS_CSP
        );
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&body);
        for tag in ["src=\"http", "href=\"http", "src=\"//", "href=\"//"] {
            assert!(!text.contains(tag), "{uri} refers outside: {tag}");
        }
        if uri.ends_with(".js") {
            assert!(text.contains("/api/v1/openapi.json"), "{text}");
            assert!(
                text.contains("\"validatorUrl\": \"none\"")
                    || text.contains("\"validatorUrl\":\"none\""),
                "{text}"
            );
        }
    }
}

/// A changing request on the strength of a session cookie needs the
/// session's CSRF token; with an API key, or reading, it does not.
#[tokio::test]
async fn cookie_requests_that_change_things_need_the_csrf_token() {
    let app = router(gateway(1 << 20));
    let send = |method: &str, headers: Vec<(&'static str, String)>| {
        let mut request = Request::builder().method(method).uri("/api/v1/events");
        for (name, value) in headers {
            request = request.header(name, value);
        }
        app.clone().oneshot(request.body(Body::empty()).unwrap())
    };
    let cookie = ("cookie", "fp_session=fps_abc".to_string());
    let refused = send("POST", vec![cookie.clone()]).await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let wrong = send(
        "POST",
        vec![cookie.clone(), ("x-csrf-token", "nope".into())],
    )
    .await
    .unwrap();
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    // With the right token the request goes on (to the database, which is
    // down here: 503), and so do reads and API-key requests.
    let token = crate::sessions::csrf_token("fps_abc");
    let right = send("POST", vec![cookie.clone(), ("x-csrf-token", token)])
        .await
        .unwrap();
    assert_eq!(right.status(), StatusCode::SERVICE_UNAVAILABLE);
    let read = send("GET", vec![cookie]).await.unwrap();
    assert_eq!(read.status(), StatusCode::SERVICE_UNAVAILABLE);
    let keyed = send("POST", vec![("authorization", "Bearer fp_x".into())])
        .await
        .unwrap();
    assert_ne!(keyed.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_selfie_over_its_limit_is_refused_before_it_is_read() {
    // Photos may be 1 MiB, selfies 64 KiB.
    let gw = gateway_with(GatewayConfig {
        max_upload_bytes: 1 << 20,
        max_selfie_bytes: 64 << 10,
        ..GatewayConfig::default()
    });
    for path in [
        "/api/v1/guest/tok/search?consent=v1",
        "/api/v1/guest/tok/forget",
    ] {
        // Declared too large: refused without reading (nor asking the
        // database about the link).
        let request = Request::builder()
            .method("POST")
            .uri(path)
            .header(header::CONTENT_LENGTH, (100 << 10).to_string())
            .body(Body::from(vec![0u8; 100 << 10]))
            .unwrap();
        let response = router(gw.clone()).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        let json: Value = serde_json::from_slice(
            &axum::body::to_bytes(response.into_body(), 4096)
                .await
                .unwrap(),
        )
        .unwrap();
        assert_eq!(code(&json), "IMAGE_TOO_LARGE");
        assert_eq!(
            json["error"]["message"],
            "the selfie is larger than the limit of 65536 bytes"
        );
    }
    // Streamed without a length: cut off at the limit as it is read.
    let chunks = futures::stream::iter(
        (0..10).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![0u8; 16 << 10]))),
    );
    let err = super::selfies::read(Body::from_stream(chunks), 64 << 10)
        .await
        .unwrap_err();
    assert_eq!(err.code, facepass_core::ErrorCode::ImageTooLarge);
}

#[tokio::test]
async fn selfies_beyond_the_memory_ceiling_are_told_to_come_back() {
    let gw = gateway_with(GatewayConfig {
        max_upload_bytes: 1 << 20,
        max_selfie_bytes: 64 << 10,
        selfie_memory_bytes: 256 << 10,
        overload_wait_ms: 100,
        ..GatewayConfig::default()
    });
    // Every share is taken (searches in progress).
    let _busy = gw
        .selfie_memory
        .clone()
        .acquire_many_owned(256)
        .await
        .unwrap();
    let request = Request::builder()
        .method("POST")
        .uri("/api/v1/guest/tok/search?consent=v1")
        .header(header::CONTENT_LENGTH, "1000")
        .body(Body::from(vec![0u8; 1000]))
        .unwrap();
    let response = router(gw.clone()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    let json: Value = serde_json::from_slice(
        &axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(code(&json), "OVERLOADED");
}

#[tokio::test]
async fn a_guest_link_past_its_rate_is_told_when_to_come_back() {
    let gw = gateway_with(GatewayConfig {
        max_upload_bytes: 1 << 20,
        max_selfie_bytes: 64 << 10,
        rate_limits: crate::config::RateLimits {
            guest_link: crate::limits::Rate::new(0.5, 2),
            ..Default::default()
        },
        ..GatewayConfig::default()
    });
    let post = || {
        Request::builder()
            .method("POST")
            .uri("/api/v1/guest/tok/download")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(r#"{"photo_ids": []}"#))
            .unwrap()
    };
    // The burst goes through (to the database, which is down here).
    for _ in 0..2 {
        let response = router(gw.clone()).oneshot(post()).await.unwrap();
        assert_ne!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    }
    let response = router(gw.clone()).oneshot(post()).await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    // One token per 2 s: the wait is rounded up to whole seconds.
    assert_eq!(response.headers()[header::RETRY_AFTER], "2");
    // Reading the link's photos is not limited.
    let get = Request::builder()
        .uri("/api/v1/guest/tok")
        .body(Body::empty())
        .unwrap();
    let response = router(gw.clone()).oneshot(get).await.unwrap();
    assert_ne!(response.status(), StatusCode::TOO_MANY_REQUESTS);
}
