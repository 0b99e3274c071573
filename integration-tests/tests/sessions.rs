//! The studio dashboard's sessions (issue 13, item 3), on the real binaries:
//! an API key is exchanged for an HttpOnly, SameSite=Strict cookie; the
//! cookie alone reads, changes need the CSRF token too; a session sees only
//! its studio, and ends on sign-out and when its key is revoked.

use facepass_integration_tests::Cluster;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_api_key_becomes_a_csrf_protected_session() {
    let cluster = Cluster::start().await.expect("cluster");
    let (studio, key) = cluster.create_studio("Studio Alpha").unwrap();
    let (_other, other_key) = cluster.create_studio("Studio Beta").unwrap();
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}/api/v1{path}", cluster.gateway_http);

    // Another studio's event: never visible through this session.
    let foreign: Value = http
        .post(url("/events"))
        .bearer_auth(&other_key)
        .json(&json!({"name": "Beta's"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    // A wrong key signs no one in.
    let wrong = http
        .post(url("/session"))
        .json(&json!({"api_key": "fp_not_a_key"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers().get("set-cookie").is_none());

    let signed = http
        .post(url("/session"))
        .json(&json!({ "api_key": key }))
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 201);
    let set_cookie = signed.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(set_cookie.starts_with("fp_session=fps_"), "{set_cookie}");
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    let session: Value = signed.json().await.unwrap();
    assert_eq!(session["studio_id"], studio.as_str());
    assert_eq!(session["studio_name"], "Studio Alpha");
    let csrf = session["csrf_token"].as_str().unwrap().to_string();
    // The key itself is not in the cookie.
    assert!(!set_cookie.contains(&key));
    let cookie = set_cookie.split(';').next().unwrap().to_string();

    // Reading with the cookie alone.
    let current: Value = http
        .get(url("/session"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(current["csrf_token"], csrf.as_str());
    let listed = http
        .get(url("/events"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    let foreign_read = http
        .get(url(&format!("/events/{}", foreign["id"].as_str().unwrap())))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(foreign_read.status(), 404);

    // Changing needs the CSRF token as well.
    let forged = http
        .post(url("/events"))
        .header("cookie", &cookie)
        .json(&json!({"name": "Forged"}))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let body: Value = forged.json().await.unwrap();
    assert_eq!(body["error"]["field"], "x-csrf-token");
    let created = http
        .post(url("/events"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&json!({"name": "From the dashboard"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    // Signing out ends the session and clears the cookie.
    let out = http
        .delete(url("/session"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    assert!(out.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let after = http
        .get(url("/events"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401);

    // Revoking the key ends its sessions.
    let again: Value = http
        .post(url("/session"))
        .json(&json!({ "api_key": key }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(again["csrf_token"].is_string());
    let cookie_header = http
        .post(url("/session"))
        .json(&json!({ "api_key": key }))
        .send()
        .await
        .unwrap()
        .headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    cluster
        .db
        .query_text(&format!(
            "UPDATE catalog.api_keys SET revoked_at = now() WHERE studio_id = '{studio}'"
        ))
        .unwrap();
    let revoked = http
        .get(url("/events"))
        .header("cookie", &cookie_header)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 401);
}
