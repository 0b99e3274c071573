//! Indexing outlasts a long outage: with the embedder down for two minutes
//! while photos arrive, no photo is ever failed; they wait, retried with
//! back-off (up to 5 s here), and every one is indexed once it is back.
//! (Production retries for `retry_for_ms`, 6 hours by default; the harness's
//! other clusters cap attempts at 5 so that their "down for good" cases end
//! fast.) Meanwhile they are reported `retrying`, with the last error and
//! the next attempt. `FACEPASS_TEST_OUTAGE_SECS` changes the outage's length.

use std::time::{Duration, Instant};

use facepass_integration_tests::gateway::{self, client, create_event, upload, wait_indexed};
use facepass_integration_tests::{prom, Cluster, ClusterOptions};
use facepass_proto::v1 as pb;
use facepass_synth::event_photo;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photos_wait_out_a_two_minute_embedder_outage() {
    let outage = Duration::from_secs(
        std::env::var("FACEPASS_TEST_OUTAGE_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(120),
    );
    let env = |k: &str, v: &str| (k.to_string(), v.to_string());
    let mut cluster = Cluster::start_with(ClusterOptions {
        env: vec![
            env("FACEPASS_MAX_ATTEMPTS", "0"),
            env("FACEPASS_RETRY_MAX_MS", "5000"),
            env("FACEPASS_RETRY_FOR_MS", "3600000"),
        ],
        ..ClusterOptions::default()
    })
    .await
    .expect("cluster");
    let (_studio, key) = cluster.create_studio("Outage").unwrap();
    let mut api = client(&cluster.gateway_grpc, Some(&key)).await.unwrap();
    let event = create_event(&mut api, "Long outage").await;
    let photo = |i: u64| event_photo(400 + i, 1200, 900, &[1 + (i % 3) as u8], (90, 150)).jpeg(85);
    for i in 0..10 {
        upload(&mut api, &event.id, &format!("o-{i}"), photo(i)).await;
    }
    wait_indexed(&mut api, &event.id, 10, Duration::from_secs(90))
        .await
        .unwrap();

    cluster
        .service("embedder")
        .stop(Duration::from_secs(20))
        .unwrap();
    let down_since = Instant::now();
    for i in 10..20 {
        upload(&mut api, &event.id, &format!("o-{i}"), photo(i)).await;
    }
    let mut waiting = 0;
    let mut retrying = 0;
    while down_since.elapsed() < outage {
        let counts = gateway::event(&mut api, &event.id).await;
        assert_eq!(
            counts.photos_failed,
            0,
            "a photo failed during the outage\n{}",
            cluster.logs()
        );
        waiting = counts.photos_pending;
        retrying = counts.photos_retrying;
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    assert_eq!(waiting, 10, "the photos uploaded during the outage wait");
    assert_eq!(retrying, 10, "and are reported as retrying");
    // Each says why and when it is tried next (gRPC and REST alike).
    let listed = api
        .list_photos(pb::ListPhotosRequest {
            event_id: event.id.clone(),
            status: pb::PhotoStatus::Retrying as i32,
            page_size: 100,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .photos;
    assert_eq!(listed.len(), 10);
    for p in &listed {
        assert_eq!(p.last_error_code, "UNAVAILABLE", "{p:?}");
        assert!(p.last_error_reason.contains("embedder"), "{p:?}");
        assert!(p.attempts >= 2, "{p:?}");
        let (next, until) = (
            p.next_attempt_at.unwrap().seconds,
            p.retry_until.unwrap().seconds,
        );
        assert!(next < until, "{p:?}");
        assert!(p.failure_code.is_empty(), "retrying is not failed: {p:?}");
    }
    let rest: serde_json::Value = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/photos/{}",
            cluster.gateway_http, listed[0].id
        ))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rest["status"], "retrying", "{rest}");
    assert_eq!(rest["last_error_code"], "UNAVAILABLE", "{rest}");
    assert!(rest["next_attempt_at"].is_string(), "{rest}");
    let retried = prom::sum(
        &cluster.scrape("indexer").await.unwrap(),
        "facepass_indexer_photos_total",
        &[("outcome", "retried")],
    )
    .unwrap_or(0.0);
    assert!(retried >= 10.0, "retries during the outage: {retried}");

    cluster.restart("embedder").unwrap();
    let back = Instant::now();
    let done = wait_indexed(&mut api, &event.id, 20, Duration::from_secs(120))
        .await
        .unwrap();
    assert_eq!(
        (done.photos_indexed, done.photos_failed, done.faces_total),
        (20, 0, 20)
    );
    let after = gateway::photo(&mut api, &listed[0].id).await;
    assert_eq!(after.status, pb::PhotoStatus::Indexed as i32);
    assert_eq!(
        (after.last_error_code.as_str(), after.next_attempt_at),
        ("", None),
        "an indexed photo carries no retry state"
    );
    eprintln!(
        "embedder down {} s: {retried} retries, no photo failed; all 20 indexed {:.1} s after it returned",
        outage.as_secs(),
        back.elapsed().as_secs_f64()
    );
    cluster.clean_broker().await;
}
