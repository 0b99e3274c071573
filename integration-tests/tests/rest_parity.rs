//! REST routes for the studio's facepass.v1 operations beyond events and
//! uploads (issue 12, item 8, first part), on the real binaries: a photo,
//! the studio's "forget me", share links, retention, the audit log and
//! webhooks, each answering what its gRPC call answers.

use std::time::Duration;

use facepass_integration_tests::gateway::{client, wait_indexed};
use facepass_integration_tests::Cluster;
use facepass_proto::v1 as pb;
use facepass_synth::{event_photo, selfie};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_studio_operation_has_a_rest_route() {
    let cluster = Cluster::start().await.expect("cluster");
    let (_studio, key) = cluster.create_studio("Studio").unwrap();
    let mut api = client(&cluster.gateway_grpc, Some(&key)).await.unwrap();
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}/api/v1{path}", cluster.gateway_http);
    let send = |req: reqwest::RequestBuilder| {
        let key = key.clone();
        async move {
            let r = req.bearer_auth(key).send().await.unwrap();
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            (status, body)
        }
    };

    let (status, event) = send(http.post(url("/events")).json(&json!({"name": "REST"}))).await;
    assert_eq!(status, 201);
    let event_id = event["id"].as_str().unwrap().to_string();
    let mut photo_ids = Vec::new();
    for (i, who) in [&[1u8][..], &[1, 2]].iter().enumerate() {
        let (status, photo) = send(
            http.post(url(&format!("/events/{event_id}/photos?external_id=p{i}")))
                .body(event_photo(40 + i as u64, 1400, 1000, who, (110, 150)).jpeg(90)),
        )
        .await;
        assert_eq!(status, 202, "{photo}");
        photo_ids.push(photo["id"].as_str().unwrap().to_string());
    }
    wait_indexed(&mut api, &event_id, 2, Duration::from_secs(240))
        .await
        .unwrap();

    // One photo.
    let (status, photo) = send(http.get(url(&format!("/photos/{}", photo_ids[1])))).await;
    assert_eq!((status, photo["face_count"].as_i64()), (200, Some(2)));

    // The studio's "forget me": person 1 leaves both photos.
    let (status, receipt) = send(
        http.post(url(&format!("/events/{event_id}/forget")))
            .body(selfie(5, 1).jpeg(90)),
    )
    .await;
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(receipt["faces_deleted"], 2);

    // Delete a photo.
    let (status, deleted) = send(http.delete(url(&format!("/photos/{}", photo_ids[0])))).await;
    assert_eq!((status, deleted["faces_deleted"].as_u64()), (200, Some(0)));
    let (status, _) = send(http.get(url(&format!("/photos/{}", photo_ids[0])))).await;
    assert_eq!(status, 404);

    // Share links and retention.
    let old_token = event["share_token"].as_str().unwrap().to_string();
    let (status, rotated) =
        send(http.post(url(&format!("/events/{event_id}/share-link/rotate")))).await;
    assert_eq!(status, 200);
    assert_ne!(rotated["share_token"].as_str().unwrap(), old_token);
    let (status, off) = send(
        http.put(url(&format!("/events/{event_id}/share-link")))
            .json(&json!({"enabled": false, "expires_at": "2030-01-01T00:00:00Z"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(off["share_enabled"], false);
    assert_eq!(off["share_expires_at"], "2030-01-01T00:00:00Z");
    let (status, kept) = send(
        http.put(url(&format!("/events/{event_id}/retention")))
            .json(&json!({"retain_until": "2031-06-01T00:00:00Z"})),
    )
    .await;
    assert_eq!(
        (status, kept["retain_until"].as_str()),
        (200, Some("2031-06-01T00:00:00Z"))
    );
    let (status, bad) = send(
        http.put(url(&format!("/events/{event_id}/retention")))
            .json(&json!({"retain_until": "tomorrow"})),
    )
    .await;
    assert_eq!(
        (status, bad["error"]["code"].as_str()),
        (400, Some("INVALID_ARGUMENT"))
    );

    // The audit log, as gRPC lists it.
    let (status, audit) = send(http.get(url("/audit"))).await;
    assert_eq!(status, 200);
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["photo.deleted", "guest.forgotten"]);
    let grpc = api
        .list_audit_log(pb::ListAuditLogRequest::default())
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert_eq!(grpc.len(), 2);

    // Webhooks: create, list, deliveries, delete.
    let (status, created) = send(
        http.post(url("/webhooks"))
            .json(&json!({"url": "http://127.0.0.1:9/none", "events": ["photo.indexed"]})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    let hook = created["webhook"]["id"].as_str().unwrap().to_string();
    let (status, list) = send(http.get(url("/webhooks"))).await;
    assert_eq!(
        (status, list["webhooks"].as_array().unwrap().len()),
        (200, 1)
    );
    let (status, log) = send(http.get(url(&format!("/webhooks/{hook}/deliveries")))).await;
    assert_eq!(
        (status, log["deliveries"].as_array().unwrap().len()),
        (200, 0)
    );
    let (status, _) = send(http.delete(url(&format!("/webhooks/{hook}")))).await;
    assert_eq!(status, 204);
    let (status, _) = send(http.delete(url(&format!("/webhooks/{hook}")))).await;
    assert_eq!(status, 404);
    let (status, err) =
        send(http.post(url(&format!("/deliveries/{}/replay", uuid::Uuid::new_v4())))).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (404, Some("NOT_FOUND"))
    );
}
