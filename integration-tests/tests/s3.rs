//! Photos in an S3 bucket: the five services against a real S3-protocol
//! server (moto in server mode), reached through a cuttable TCP link.
//!
//! Upload and register by key, index, find by selfie, serve the original
//! and the previews, delete with nothing of FacePass's left in the bucket
//! (a registered object stays its owner's); and with the
//! store unreachable, uploads fail with a clear UNAVAILABLE while photos
//! already queued are retried until the store is back, not lost.

use std::time::Duration;

use facepass_integration_tests::gateway::{
    client, create_event, error_code, search_selfie, upload, wait_indexed,
};
use facepass_integration_tests::s3::S3Server;
use facepass_integration_tests::switch::Switch;
use facepass_integration_tests::{prom, tempfile_dir, Cluster, ClusterOptions};
use facepass_proto::v1 as pb;
use facepass_synth::{event_photo, selfie};
use tonic::Code;

const BUCKET: &str = "facepass-e2e";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photos_live_in_an_s3_bucket_and_survive_an_outage() {
    let logs = tempfile_dir::Dir::new("facepass-s3").unwrap();
    let s3 = S3Server::start(logs.path()).await.expect("moto_server");
    s3.create_bucket(BUCKET).await.unwrap();
    let link = Switch::start(&format!("127.0.0.1:{}", s3.port))
        .await
        .unwrap();
    let prefix = format!("run-{}", uuid::Uuid::new_v4().simple());
    let env = |k: &str, v: String| (k.to_string(), v);
    let mut cluster = Cluster::start_with(ClusterOptions {
        env: vec![
            env("FACEPASS_STORAGE_ROOT", format!("s3://{BUCKET}/{prefix}")),
            env(
                "FACEPASS_S3__ENDPOINT",
                format!("http://127.0.0.1:{}", link.port),
            ),
            env("FACEPASS_S3__ALLOW_HTTP", "true".into()),
            env("FACEPASS_S3__REGION", "us-east-1".into()),
            // Fail fast while the store is cut, so the test does not wait.
            env("FACEPASS_S3__REQUEST_TIMEOUT_MS", "3000".into()),
            env("FACEPASS_S3__MAX_RETRIES", "1".into()),
            // Enough attempts to outlast the outage below (0.2 s doubling).
            env("FACEPASS_MAX_ATTEMPTS", "12".into()),
            env("AWS_ACCESS_KEY_ID", "facepass-test".into()),
            env("AWS_SECRET_ACCESS_KEY", "facepass-test-secret".into()),
        ],
        ..ClusterOptions::default()
    })
    .await
    .expect("cluster on S3");
    let (studio, key) = cluster.create_studio("S3 studio").unwrap();
    let mut api = client(&cluster.gateway_grpc, Some(&key)).await.unwrap();
    let event = create_event(&mut api, "On S3").await;
    let http = reqwest::Client::new();

    // --- upload, and register by key what Pixora put in the bucket ---------
    let uploaded = upload(
        &mut api,
        &event.id,
        "up-1",
        event_photo(1, 1600, 1200, &[1, 2], (90, 150)).jpeg(90),
    )
    .await;
    // Outside events/: the object stays Pixora's, FacePass only reads it.
    let pixora_key = format!("studios/{studio}/pixora/reg-1.jpg");
    s3.put(
        BUCKET,
        &format!("{prefix}/{pixora_key}"),
        event_photo(2, 1600, 1200, &[1], (90, 150)).jpeg(90),
    )
    .await
    .unwrap();
    let registered = api
        .register_photo(pb::RegisterPhotoRequest {
            event_id: event.id.clone(),
            external_id: "reg-1".into(),
            object_key: pixora_key.clone(),
            file_name: "reg-1.jpg".into(),
            ..Default::default()
        })
        .await
        .expect("RegisterPhoto by key in the bucket")
        .into_inner()
        .photo
        .unwrap();
    let indexed = wait_indexed(&mut api, &event.id, 2, Duration::from_secs(90))
        .await
        .unwrap();
    assert_eq!(indexed.faces_total, 3, "{}", cluster.logs());

    // Originals and both previews of each photo are in the bucket.
    let keys = s3.keys(BUCKET, &format!("{prefix}/")).await.unwrap();
    assert!(keys.iter().any(|k| k.ends_with(&pixora_key)), "{keys:?}");
    for photo in [&uploaded.id, &registered.id] {
        for size in ["thumb", "screen"] {
            assert!(
                keys.iter()
                    .any(|k| k.contains(&format!("previews/{photo}/{size}.jpg"))),
                "no {size} preview of {photo}: {keys:?}"
            );
        }
    }

    // --- a selfie finds both; the gateway serves them from the bucket -------
    let found = search_selfie(&mut api, &event.id, selfie(11, 1).jpeg(90)).await;
    let mut ids: Vec<String> = found
        .matches
        .iter()
        .map(|m| m.photo.as_ref().unwrap().id.clone())
        .collect();
    ids.sort();
    let mut want = vec![uploaded.id.clone(), registered.id.clone()];
    want.sort();
    assert_eq!(ids, want);
    for size in ["original", "screen", "thumb"] {
        let response = http
            .get(format!(
                "{}/api/v1/photos/{}/image?size={size}",
                cluster.gateway_http, uploaded.id
            ))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{size}");
        let bytes = response.bytes().await.unwrap();
        assert_eq!(&bytes[..2], &[0xFF, 0xD8], "{size} is a JPEG");
    }

    // --- the store goes away --------------------------------------------------
    // A photo queued while it is away: the indexer is stopped, the photo is
    // stored and queued, then the link is cut and the indexer comes back.
    cluster
        .service("indexer")
        .stop(Duration::from_secs(20))
        .unwrap();
    let queued = upload(
        &mut api,
        &event.id,
        "queued-1",
        event_photo(3, 1600, 1200, &[2], (90, 150)).jpeg(90),
    )
    .await;
    link.cut();
    let started = std::time::Instant::now();
    let refused = api
        .upload_photo(pb::UploadPhotoRequest {
            event_id: event.id.clone(),
            external_id: "during-outage".into(),
            content: event_photo(4, 1600, 1200, &[1], (90, 150)).jpeg(90).into(),
            file_name: "x.jpg".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert_eq!(error_code(&refused), "UNAVAILABLE");
    assert!(
        refused.message().contains("photo storage"),
        "{}",
        refused.message()
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the refusal took {:?}",
        started.elapsed()
    );
    cluster.restart("indexer").unwrap();
    // Long enough for the first attempts to fail against the cut link.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let photo = api
        .get_photo(pb::GetPhotoRequest {
            photo_id: queued.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .photo
        .unwrap();
    assert_eq!(
        (photo.status, photo.last_error_code.as_str()),
        (pb::PhotoStatus::Retrying as i32, "UNAVAILABLE"),
        "indexed or failed while the store was cut? {photo:?}\n{}",
        cluster.logs()
    );
    link.restore();
    // The refused upload is retried by the client with the same external id.
    let retried = upload(
        &mut api,
        &event.id,
        "during-outage",
        event_photo(4, 1600, 1200, &[1], (90, 150)).jpeg(90),
    )
    .await;
    let indexed = wait_indexed(&mut api, &event.id, 4, Duration::from_secs(120))
        .await
        .unwrap();
    assert_eq!(indexed.faces_total, 3 + 1 + 1, "{}", cluster.logs());
    // The indexer retried the queued photo: its transient failures are counted.
    let metrics = cluster.scrape("indexer").await.unwrap();
    let retries = prom::sum(
        &metrics,
        "facepass_indexer_photos_total",
        &[("outcome", "retried")],
    )
    .unwrap_or(0.0);
    assert!(retries >= 1.0, "no retry counted:\n{metrics}");

    // --- deleting leaves nothing in the bucket ------------------------------------
    api.delete_photo(pb::DeletePhotoRequest {
        photo_id: retried.id.clone(),
    })
    .await
    .unwrap();
    let keys = s3.keys(BUCKET, &format!("{prefix}/")).await.unwrap();
    assert!(!keys.iter().any(|k| k.contains(&retried.id)), "{keys:?}");
    api.delete_event(pb::DeleteEventRequest {
        event_id: event.id.clone(),
    })
    .await
    .unwrap();
    // Only Pixora's own object is left: FacePass deleted every original it
    // stored and every preview, the registered photo's included.
    let left = s3.keys(BUCKET, &format!("{prefix}/")).await.unwrap();
    assert_eq!(
        left,
        vec![format!("{prefix}/{pixora_key}")],
        "objects left after the event was deleted"
    );
    cluster.clean_broker().await;
}
