//! The error contract end to end, against the real gateway (docs/errors.md):
//! gRPC errors carry `google.rpc.ErrorInfo`, `BadRequest` and `RetryInfo`
//! in `grpc-status-details-bin`, read here by a Rust client and by a Python
//! grpcio client (tools/grpc_client/check_errors.py); every REST error is
//! the JSON body with its stable code; text fields are checked as text
//! (a NUL is INVALID_ARGUMENT, never a database error; limits count
//! characters).

use std::process::Command;
use std::time::Duration;

use facepass_integration_tests::{repo_root, Cluster};
use facepass_proto::v1 as pb;
use facepass_proto::v1::face_pass_service_client::FacePassServiceClient;
use serde_json::{json, Value};
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request};
use tonic_types::StatusExt;

/// Status and JSON body of a REST answer; fails unless the body is JSON.
async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = response.text().await.unwrap();
    assert!(
        content_type.starts_with("application/json"),
        "{status} answered {content_type:?}: {text:?}"
    );
    (status, serde_json::from_str(&text).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_keep_their_contract_over_grpc_and_rest() {
    let mut cluster = Cluster::start().await.expect("start the five services");
    let (_, key) = cluster.create_studio("Error studio").unwrap();

    // --- gRPC, read by a Rust client -----------------------------------------
    let channel = Channel::from_shared(cluster.gateway_grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let header: MetadataValue<_> = format!("Bearer {key}").parse().unwrap();
    let mut api = FacePassServiceClient::with_interceptor(channel, move |mut r: Request<()>| {
        r.metadata_mut().insert("authorization", header.clone());
        Ok(r)
    });

    // A NUL in a name used to reach PostgreSQL and come back as INTERNAL.
    let err = api
        .create_event(pb::CreateEventRequest {
            retain_until: None,
            name: "a\0b".into(),
            external_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    let details = err.get_error_details();
    let info = details.error_info().expect("an ErrorInfo");
    assert_eq!(info.reason, "INVALID_ARGUMENT");
    assert_eq!(info.domain, "facepass");
    let violations = &details
        .bad_request()
        .expect("a BadRequest")
        .field_violations;
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].field, "name");
    assert!(details.retry_info().is_none());

    // Limits count characters: 120 Cyrillic characters are 240 bytes.
    let russian: String = "Выпускной вечер ".repeat(8).chars().take(120).collect();
    assert!(russian.len() > 200);
    let event = api
        .create_event(pb::CreateEventRequest {
            retain_until: None,
            name: russian.clone(),
            external_id: "выпуск-2025".into(),
        })
        .await
        .expect("a 120-character Russian name is accepted")
        .into_inner()
        .event
        .unwrap();
    assert_eq!(event.name, russian.trim());
    let err = api
        .create_event(pb::CreateEventRequest {
            retain_until: None,
            name: "ж".repeat(201),
            external_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(err.message(), "name is 201 characters, the limit is 200");
    let err = api
        .get_event(pb::GetEventRequest {
            event_id: "not-an-id".into(),
        })
        .await
        .unwrap_err();
    let details = err.get_error_details();
    assert_eq!(details.error_info().unwrap().reason, "INVALID_ARGUMENT");
    assert_eq!(
        details.bad_request().unwrap().field_violations[0].field,
        "event_id"
    );

    // --- REST: every error is the JSON body with its code ---------------------
    let http = reqwest::Client::new();
    let base = cluster.gateway_http.clone();
    let bearer = format!("Bearer {key}");
    let events = format!("{base}/api/v1/events");

    let (status, body) = answer(
        http.post(&events)
            .header("authorization", &bearer)
            .body("{\"name\": ")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("INVALID_ARGUMENT"))
    );

    let (status, body) = answer(
        http.post(&events)
            .header("authorization", &bearer)
            .body(json!({"name": "a\u{0}b"}).to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "INVALID_ARGUMENT");
    assert_eq!(body["error"]["field"], "name");

    let (status, body) = answer(
        http.post(&events)
            .header("authorization", &bearer)
            .body(json!({"name": "ж".repeat(201)}).to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "name");

    let (status, body) = answer(
        http.post(&events)
            .header("authorization", &bearer)
            .body(json!({"name": "Свадьба ".repeat(15)}).to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "a 120-character name is accepted: {body}");

    // Without auth, through a share link: a NUL used to reach PostgreSQL.
    for path in ["/api/v1/guest/a%00b", "/api/v1/guest/a%00b/photos/x"] {
        let (status, body) = answer(http.get(format!("{base}{path}")).send().await.unwrap()).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"]["code"], "INVALID_ARGUMENT", "{path}");
        assert_eq!(body["error"]["field"], "token", "{path}");
    }

    let (status, body) = answer(
        http.get(format!("{base}/api/v1/nowhere"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("NOT_FOUND"))
    );

    let response = http.put(&events).send().await.unwrap();
    assert!(response.headers().contains_key("allow"));
    let (status, body) = answer(response).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (405, Some("INVALID_ARGUMENT"))
    );

    let (status, body) = answer(
        http.get(format!("{events}?page_size=lots"))
            .header("authorization", &bearer)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("INVALID_ARGUMENT"))
    );

    // --- gRPC, read by a Python grpcio client ---------------------------------
    // With the search service down, deleting an event is UNAVAILABLE with a
    // RetryInfo.
    let status = cluster
        .service("search")
        .stop(Duration::from_secs(20))
        .unwrap();
    assert!(status.success(), "search exited with {status}");
    let python = repo_root().join(".venv/bin/python");
    let output = Command::new(&python)
        .arg(repo_root().join("tools/grpc_client/check_errors.py"))
        .args([
            "--target",
            cluster.gateway_grpc.trim_start_matches("http://"),
        ])
        .args(["--api-key", key.as_str()])
        .args(["--unavailable-event-id", event.id.as_str()])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "running {} failed ({e}); scripts/lib/deps.sh venv installs grpcio",
                python.display()
            )
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "check_errors.py failed ({}):\n{stdout}\n{stderr}\n{}",
        output.status,
        cluster.logs()
    );
    assert!(stdout.contains("0 failed"), "{stdout}");

    for name in ["gateway", "indexer", "detector", "embedder"] {
        let status = cluster.service(name).stop(Duration::from_secs(20)).unwrap();
        assert!(status.success(), "{name} exited with {status}");
    }
    cluster.clean_broker().await;
}
