//! The services' Prometheus metrics agree with what happened: after a
//! known run (five photos with four faces in all, one corrupt file, two
//! selfie searches, two REST calls) every service's /metrics is scraped and
//! each count is checked against the run.

use std::time::{Duration, Instant};

use facepass_integration_tests::gateway::{
    client, create_event, search_selfie, upload, wait_indexed,
};
use facepass_integration_tests::{prom, Cluster};
use facepass_synth::{corrupt_jpeg, event_photo, selfie};

fn count(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    prom::sum(text, name, labels).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_happened() {
    let cluster = Cluster::start().await.expect("cluster");
    let (_studio, key) = cluster.create_studio("Counted").unwrap();
    let mut api = client(&cluster.gateway_grpc, Some(&key)).await.unwrap();
    let event = create_event(&mut api, "Counted event").await;

    // Five photos, 4 faces: [1], [2], [1, 2], [] and [] ... and a corrupt file.
    let plan: [&[u8]; 5] = [&[1], &[2], &[1, 2], &[], &[]];
    for (i, ids) in plan.iter().enumerate() {
        let bytes = event_photo(60 + i as u64, 1200, 900, ids, (90, 150)).jpeg(85);
        upload(&mut api, &event.id, &format!("m-{i}"), bytes).await;
    }
    upload(&mut api, &event.id, "m-corrupt", corrupt_jpeg(7)).await;
    let done = wait_indexed(&mut api, &event.id, 6, Duration::from_secs(90))
        .await
        .unwrap();
    assert_eq!(
        (done.photos_indexed, done.photos_failed, done.faces_total),
        (5, 1, 4)
    );
    for identity in [1u8, 2] {
        let found = search_selfie(
            &mut api,
            &event.id,
            selfie(70 + identity as u64, identity).jpeg(90),
        )
        .await;
        assert_eq!(found.matches.len(), 2, "identity {identity}");
    }
    let http = reqwest::Client::new();
    let listed = http
        .get(format!("{}/api/v1/events", cluster.gateway_http))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    let missing = http
        .get(format!(
            "{}/api/v1/events/{}",
            cluster.gateway_http,
            uuid::Uuid::new_v4()
        ))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    // --- gateway ----------------------------------------------------------
    let gateway = cluster.scrape("gateway").await.unwrap();
    let rpc = "facepass_rpc_server_requests_total";
    let upload_ok = [
        ("service", "gateway"),
        ("method", "/facepass.v1.FacePassService/UploadPhoto"),
        ("code", "OK"),
    ];
    assert_eq!(count(&gateway, rpc, &upload_ok), 6.0, "{gateway}");
    let search_ok = [
        ("method", "/facepass.v1.FacePassService/SearchBySelfie"),
        ("code", "OK"),
    ];
    assert_eq!(count(&gateway, rpc, &search_ok), 2.0);
    let http_count = "facepass_http_server_requests_total";
    assert_eq!(
        count(
            &gateway,
            http_count,
            &[
                ("route", "/api/v1/events"),
                ("method", "GET"),
                ("status", "200")
            ]
        ),
        1.0,
        "{gateway}"
    );
    assert_eq!(
        count(
            &gateway,
            http_count,
            &[("route", "/api/v1/events/{event_id}"), ("status", "404")]
        ),
        1.0
    );
    assert!(
        count(
            &gateway,
            "facepass_rpc_server_duration_seconds_count",
            &[("method", "/facepass.v1.FacePassService/UploadPhoto")]
        ) == 6.0
    );

    // --- indexer ----------------------------------------------------------
    let indexer = cluster.scrape("indexer").await.unwrap();
    let photos = "facepass_indexer_photos_total";
    assert_eq!(
        count(&indexer, photos, &[("outcome", "indexed")]),
        5.0,
        "{indexer}"
    );
    assert_eq!(
        count(
            &indexer,
            photos,
            &[("outcome", "failed"), ("code", "IMAGE_UNDECODABLE")]
        ),
        1.0
    );
    assert_eq!(count(&indexer, photos, &[("outcome", "retried")]), 0.0);
    assert_eq!(count(&indexer, "facepass_indexer_faces_total", &[]), 4.0);
    assert_eq!(
        count(
            &indexer,
            "facepass_indexer_upload_to_indexed_seconds_count",
            &[]
        ),
        5.0
    );
    assert_eq!(
        count(
            &indexer,
            "facepass_indexer_attempt_duration_seconds_count",
            &[]
        ),
        6.0
    );
    // The backlog drained: nothing ready in the work queue, one consumer.
    let work_queue = format!("{}.indexer.photos", cluster.namespace);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = cluster.scrape("indexer").await.unwrap();
        let labels = [("queue", work_queue.as_str())];
        let consumers = prom::sum(&text, "facepass_queue_consumers", &labels);
        let ready = prom::sum(&text, "facepass_queue_messages", &labels);
        if consumers == Some(1.0) && ready == Some(0.0) {
            let dead = format!("{}.dead-letters", cluster.namespace);
            assert_eq!(
                prom::sum(
                    &text,
                    "facepass_queue_messages",
                    &[("queue", dead.as_str())]
                ),
                Some(0.0),
                "{text}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "queue gauges never showed the drained queue: {text}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // --- detector: five photos decoded, one refused, two selfies -------------
    // (+1 detection of each mode, and +2 decodes: the warm-up at start-up runs
    // a photo and a selfie.)
    let detector = cluster.scrape("detector").await.unwrap();
    assert_eq!(
        count(
            &detector,
            "facepass_detector_detect_seconds_count",
            &[("mode", "photo")]
        ),
        5.0 + 1.0,
        "{detector}"
    );
    assert_eq!(
        count(
            &detector,
            "facepass_detector_detect_seconds_count",
            &[("mode", "selfie")]
        ),
        2.0 + 1.0
    );
    assert_eq!(
        count(&detector, "facepass_detector_decode_seconds_count", &[]),
        7.0 + 2.0
    );
    assert_eq!(
        count(
            &detector,
            rpc,
            &[("method", "/facepass.detector.v1.DetectorService/Detect")]
        ),
        6.0 + 2.0
    );
    assert_eq!(
        count(&detector, "facepass_detector_preview_seconds_count", &[]),
        5.0
    );
    assert_eq!(
        count(
            &detector,
            rpc,
            &[("service", "detector"), ("code", "INVALID_ARGUMENT")]
        ) + count(
            &detector,
            rpc,
            &[("service", "detector"), ("code", "FAILED_PRECONDITION")]
        ),
        1.0,
        "the corrupt file is refused once: {detector}"
    );

    // --- embedder: 4 faces of photos + 2 selfies ----------------------------
    let embedder = cluster.scrape("embedder").await.unwrap();
    assert_eq!(
        count(&embedder, "facepass_embedder_faces_total", &[]),
        6.0,
        "{embedder}"
    );
    // The batches also carried the warm-up's and the health probes' crops.
    assert!(count(&embedder, "facepass_embedder_batch_size_sum", &[]) >= 6.0 + 1.0);
    assert_eq!(count(&embedder, "facepass_embedder_queued_faces", &[]), 0.0);

    // --- search: two event searches, six photos recorded --------------------
    let search = cluster.scrape("search").await.unwrap();
    assert_eq!(
        count(&search, "facepass_search_event_seconds_count", &[]),
        2.0,
        "{search}"
    );
    let recorded = count(
        &search,
        rpc,
        &[
            (
                "method",
                "/facepass.search.v1.SearchService/UpsertPhotoFaces",
            ),
            ("code", "OK"),
        ],
    ) + count(
        &search,
        rpc,
        &[
            (
                "method",
                "/facepass.search.v1.SearchService/MarkPhotoFailed",
            ),
            ("code", "OK"),
        ],
    );
    assert_eq!(recorded, 6.0, "{search}");
    cluster.clean_broker().await;
}
