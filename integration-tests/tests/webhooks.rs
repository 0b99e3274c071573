//! Webhooks (issue 12, item 5) against a real HTTP receiver the test runs:
//! photo.indexed, photo.failed and event.indexing_completed delivered with
//! an HMAC-SHA256 signature checked here by the documented recipe, retried
//! with exponential backoff while the receiver fails (the waits printed),
//! the delivery log, and a replay.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use facepass_integration_tests::gateway::{client, wait_indexed};
use facepass_integration_tests::{free_port, Cluster};
use facepass_proto::v1 as pb;
use facepass_synth::event_photo;
use sha2::{Digest, Sha256};
use tonic::Code;

#[derive(Debug, Clone)]
struct Received {
    at: Instant,
    event: String,
    delivery: String,
    signature: String,
    body: String,
}

/// HMAC-SHA256, written from RFC 2104 as a studio would (docs/webhooks.md).
fn hmac(key: &[u8], message: &[u8]) -> String {
    let mut block = [0u8; 64];
    block[..key.len()].copy_from_slice(key);
    let inner = Sha256::new()
        .chain_update(block.map(|b| b ^ 0x36))
        .chain_update(message)
        .finalize();
    let outer = Sha256::new()
        .chain_update(block.map(|b| b ^ 0x5c))
        .chain_update(inner)
        .finalize();
    outer.iter().map(|b| format!("{b:02x}")).collect()
}

/// The recipe: `t=<t>,v1=<hex>`, hex == HMAC(secret, "<t>.<body>"), t recent.
fn verify(secret: &str, header: &str, body: &str) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1 = Some(v.to_string()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    (now - t).abs() < 300 && hmac(secret.as_bytes(), format!("{t}.{body}").as_bytes()) == v1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhooks_are_signed_retried_logged_and_replayed() {
    // The receiver: answers 503 to the first two photo.failed attempts.
    let received: Arc<Mutex<Vec<Received>>> = Arc::default();
    let port = free_port();
    let log = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let log = log.clone();
            async move {
                let header = |n: &str| {
                    headers
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string()
                };
                let r = Received {
                    at: Instant::now(),
                    event: header("facepass-event"),
                    delivery: header("facepass-delivery"),
                    signature: header("facepass-signature"),
                    body,
                };
                let mut log = log.lock().unwrap();
                let failed_before = log.iter().filter(|x| x.event == "photo.failed").count();
                let fail = r.event == "photo.failed" && failed_before < 2;
                log.push(r);
                if fail {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let cluster = Cluster::start().await.expect("cluster");
    let (_studio, key) = cluster.create_studio("Studio").unwrap();
    let mut api = client(&cluster.gateway_grpc, Some(&key)).await.unwrap();
    let err = api
        .create_webhook(pb::CreateWebhookRequest {
            url: "ftp://127.0.0.1/hook".into(),
            events: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let created = api
        .create_webhook(pb::CreateWebhookRequest {
            url: format!("http://127.0.0.1:{port}/hook"),
            events: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    let hook = created.webhook.unwrap();
    assert_eq!(hook.events.len(), 3);
    let secret = created.secret;
    assert!(secret.starts_with("whsec_"));

    let event = api
        .create_event(pb::CreateEventRequest {
            name: "Hooked".into(),
            external_id: String::new(),
            retain_until: None,
        })
        .await
        .unwrap()
        .into_inner()
        .event
        .unwrap();
    let good = event_photo(990, 1200, 900, &[1, 2], (110, 150)).jpeg(90);
    for (id, bytes) in [("good", good), ("bad", b"not an image".to_vec())] {
        api.upload_photo(pb::UploadPhotoRequest {
            event_id: event.id.clone(),
            external_id: id.into(),
            content: bytes.into(),
            file_name: String::new(),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    wait_indexed(&mut api, &event.id, 2, Duration::from_secs(240))
        .await
        .unwrap();

    // photo.failed needs three attempts (two 503s): wait for the third.
    let deadline = Instant::now() + Duration::from_secs(60);
    let done = |log: &[Received]| {
        log.iter().filter(|r| r.event == "photo.failed").count() >= 3
            && log
                .iter()
                .any(|r| r.event == "event.indexing_completed" && r.body.contains("\"total\":2"))
            && log.iter().any(|r| r.event == "photo.indexed")
    };
    while !done(&received.lock().unwrap()) {
        assert!(
            Instant::now() < deadline,
            "deliveries missing: {:?}\n{}",
            received.lock().unwrap(),
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = received.lock().unwrap().clone();
    for r in &log {
        assert!(
            verify(&secret, &r.signature, &r.body),
            "bad signature: {r:?}"
        );
        assert!(!verify("whsec_wrong", &r.signature, &r.body));
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["type"], r.event);
    }
    let indexed: Vec<&Received> = log.iter().filter(|r| r.event == "photo.indexed").collect();
    assert_eq!(indexed.len(), 1, "delivered once");
    let body: serde_json::Value = serde_json::from_str(&indexed[0].body).unwrap();
    assert_eq!(body["data"]["face_count"], 2);
    let failed: Vec<&Received> = log.iter().filter(|r| r.event == "photo.failed").collect();
    assert!(
        failed.iter().all(|r| r.delivery == failed[0].delivery),
        "one delivery, retried"
    );
    let body: serde_json::Value = serde_json::from_str(&failed[0].body).unwrap();
    assert_eq!(body["data"]["failure_code"], "IMAGE_UNDECODABLE");
    let waits: Vec<f64> = failed
        .windows(2)
        .map(|w| (w[1].at - w[0].at).as_secs_f64())
        .collect();
    println!("photo.failed retried after {waits:.2?} s (base 0.3 s, doubling)");
    assert!(waits[0] >= 0.28, "{waits:?}");
    assert!(waits[1] >= 0.58 && waits[1] > waits[0], "{waits:?}");

    // --- the delivery log and a replay -------------------------------------
    let deliveries = api
        .list_webhook_deliveries(pb::ListWebhookDeliveriesRequest {
            webhook_id: hook.id.clone(),
            limit: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .deliveries;
    let f = deliveries
        .iter()
        .find(|d| d.event_type == "photo.failed")
        .unwrap();
    assert_eq!(
        (f.state.as_str(), f.attempts, f.last_status),
        ("delivered", 3, 200)
    );
    let i = deliveries
        .iter()
        .find(|d| d.event_type == "photo.indexed")
        .unwrap();
    assert_eq!((i.state.as_str(), i.attempts), ("delivered", 1));
    assert_eq!(i.body, indexed[0].body);
    let replayed = api
        .replay_webhook_delivery(pb::ReplayWebhookDeliveryRequest {
            delivery_id: i.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .delivery
        .unwrap();
    assert_ne!(replayed.id, i.id);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let again = received
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.event == "photo.indexed")
            .cloned()
            .collect::<Vec<_>>();
        if again.len() == 2 {
            assert_eq!(again[1].delivery, replayed.id);
            assert_eq!(again[1].body, again[0].body);
            break;
        }
        assert!(Instant::now() < deadline, "the replay did not arrive");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Another studio sees neither the webhook nor its deliveries.
    let (_other, other_key) = cluster.create_studio("Other").unwrap();
    let mut other = client(&cluster.gateway_grpc, Some(&other_key))
        .await
        .unwrap();
    let err = other
        .list_webhook_deliveries(pb::ListWebhookDeliveriesRequest {
            webhook_id: hook.id.clone(),
            limit: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    api.delete_webhook(pb::DeleteWebhookRequest {
        webhook_id: hook.id,
    })
    .await
    .unwrap();
    assert!(api
        .list_webhooks(pb::ListWebhooksRequest {})
        .await
        .unwrap()
        .into_inner()
        .webhooks
        .is_empty());
}
