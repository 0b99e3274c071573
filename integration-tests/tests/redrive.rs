//! Failed photos are not the end (issue 15, point 1): a studio re-drives
//! one photo or an event's failed photos (gRPC and REST), an operator all of
//! them with a failure code (`facepass admin photos retry`), and a message
//! dead-lettered in RabbitMQ is listed and replayed with
//! `facepass admin dead-letters`. The real binaries, broker and database.

use std::time::{Duration, Instant};

use facepass_integration_tests::gateway::{
    client, create_event, error_code, event as get_event, photo as get_photo, upload, wait_indexed,
};
use facepass_integration_tests::{amqp_url, Cluster};
use facepass_proto::v1 as pb;
use facepass_queue::lapin::options::{BasicGetOptions, BasicRejectOptions};
use facepass_synth::event_photo;
use tonic::Code;

fn photo(i: u64) -> Vec<u8> {
    event_photo(500 + i, 1000, 750, &[1 + (i % 3) as u8], (90, 150)).jpeg(85)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_photos_are_redriven_and_dead_letters_replayed() {
    // The harness caps attempts at 5 (back-off from 200 ms): with the
    // embedder down, photos fail within seconds.
    let mut cluster = Cluster::start().await.expect("cluster");
    let (_studio, key) = cluster.create_studio("Redrive").unwrap();
    let (_other, other_key) = cluster.create_studio("Someone else").unwrap();
    let mut api = client(&cluster.gateway_grpc, Some(&key)).await.unwrap();
    let mut stranger = client(&cluster.gateway_grpc, Some(&other_key))
        .await
        .unwrap();
    let event = create_event(&mut api, "Redrive").await;

    cluster
        .service("embedder")
        .stop(Duration::from_secs(20))
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(
            upload(&mut api, &event.id, &format!("r-{i}"), photo(i))
                .await
                .id,
        );
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    while get_event(&mut api, &event.id).await.photos_failed < 4 {
        assert!(
            Instant::now() < deadline,
            "photos did not fail\n{}",
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let failed = get_photo(&mut api, &ids[0]).await;
    assert_eq!(failed.status, pb::PhotoStatus::Failed as i32);
    assert_eq!(failed.failure_code, "UNAVAILABLE", "{failed:?}");
    assert_eq!(failed.last_error_code, "UNAVAILABLE");
    assert_eq!(failed.attempts, 5, "{failed:?}");
    cluster.restart("embedder").unwrap();

    // One photo, over gRPC: pending again, then indexed.
    let retried = api
        .retry_photo(pb::RetryPhotoRequest {
            photo_id: ids[0].clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .photo
        .unwrap();
    assert_eq!(retried.status, pb::PhotoStatus::Pending as i32);
    assert_eq!(
        (retried.failure_code.as_str(), retried.attempts),
        ("", 0),
        "a re-driven photo starts a new run: {retried:?}"
    );
    // Another studio cannot see it, let alone retry it.
    let err = stranger
        .retry_photo(pb::RetryPhotoRequest {
            photo_id: ids[1].clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let deadline = Instant::now() + Duration::from_secs(60);
    while get_photo(&mut api, &ids[0]).await.status != pb::PhotoStatus::Indexed as i32 {
        assert!(Instant::now() < deadline, "not indexed\n{}", cluster.logs());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // An indexed photo is not "retried".
    let err = api
        .retry_photo(pb::RetryPhotoRequest {
            photo_id: ids[0].clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), error_code(&err).as_str()),
        (Code::InvalidArgument, "INVALID_ARGUMENT")
    );

    // REST: one photo (202, pending), a filter that matches nothing, a bad code.
    let http = reqwest::Client::new();
    let base = &cluster.gateway_http;
    let r = http
        .post(format!("{base}/api/v1/photos/{}/retry", ids[1]))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "pending", "{body}");
    let retry_failed = |body: &'static str| {
        http.post(format!("{base}/api/v1/events/{}/retry-failed", event.id))
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let r = retry_failed(r#"{"failure_code": "IMAGE_UNDECODABLE"}"#)
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["photos_requeued"], 0, "{body}");
    let r = retry_failed(r#"{"failure_code": "NOT_A_CODE"}"#)
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "INVALID_ARGUMENT", "{body}");
    assert_eq!(body["error"]["field"], "failure_code", "{body}");

    // The operator: every photo that failed UNAVAILABLE, across studios.
    let (ok, out) = cluster.admin_cli(&["photos", "retry", "--code", "UNAVAILABLE"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("2 failed photo(s) queued for indexing again"),
        "{out}"
    );
    let done = wait_indexed(&mut api, &event.id, 4, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        (done.photos_indexed, done.photos_failed, done.faces_total),
        (4, 0, 4)
    );
    let indexed = get_photo(&mut api, &ids[3]).await;
    assert_eq!(
        (indexed.last_error_code.as_str(), indexed.next_attempt_at),
        ("", None)
    );

    // A message dead-lettered in RabbitMQ: with the indexer stopped, an
    // upload's photo.uploaded is taken from its queue and rejected, as a
    // consumer that cannot handle it would.
    cluster
        .service("indexer")
        .stop(Duration::from_secs(20))
        .unwrap();
    let lost = upload(&mut api, &event.id, "dead-lettered", photo(9)).await;
    let topology = facepass_queue::AmqpConfig {
        url: amqp_url(),
        namespace: cluster.namespace.clone(),
    }
    .topology();
    let connection = facepass_queue::connect(&amqp_url(), "redrive-test")
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let message = loop {
        if let Some(m) = channel
            .basic_get(
                topology.indexer_queue().as_str().into(),
                BasicGetOptions { no_ack: false },
            )
            .await
            .unwrap()
        {
            break m;
        }
        assert!(Instant::now() < deadline, "photo.uploaded never queued");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    message
        .delivery
        .reject(BasicRejectOptions { requeue: false })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Listed (twice: listing takes nothing out), with its photo and reason.
    for _ in 0..2 {
        let (ok, out) = cluster.admin_cli(&["dead-letters", "list"]);
        assert!(ok, "{out}");
        assert!(out.contains(&lost.id), "{out}");
        assert!(out.contains("rejected"), "{out}");
        assert!(out.contains(&topology.indexer_queue()), "{out}");
        assert!(out.contains("1 dead-lettered message(s)"), "{out}");
    }
    let (ok, out) = cluster.admin_cli(&["dead-letters", "replay"]);
    assert!(!ok, "replay without --id or --all must refuse: {out}");
    cluster.restart("indexer").unwrap();
    let (ok, out) = cluster.admin_cli(&["dead-letters", "replay", "--id", &lost.id]);
    assert!(ok, "{out}");
    assert!(out.contains("1 message(s) sent back"), "{out}");
    let done = wait_indexed(&mut api, &event.id, 5, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!((done.photos_indexed, done.photos_failed), (5, 0));
    let (ok, out) = cluster.admin_cli(&["dead-letters", "list"]);
    assert!(ok && out.contains("0 dead-lettered message(s)"), "{out}");
    let _ = connection.close(200, "bye".into()).await;
    cluster.clean_broker().await;
}
