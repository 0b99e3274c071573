//! Failure handling across the real services: a dependency that is down
//! does not lose photos. Transient failures are retried with backoff and
//! succeed once the dependency is back; when it stays down, the photo ends
//! `failed` with a readable reason instead of vanishing.

use std::time::{Duration, Instant};

use facepass_integration_tests::{wait_serving, Cluster};
use facepass_proto::v1 as pb;
use facepass_proto::v1::face_pass_service_client::FacePassServiceClient;
use facepass_synth::event_photo;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::Request;

async fn photo_status(
    api: &mut FacePassServiceClient<
        tonic::service::interceptor::InterceptedService<
            Channel,
            impl FnMut(Request<()>) -> Result<Request<()>, tonic::Status>,
        >,
    >,
    id: &str,
) -> pb::Photo {
    api.get_photo(pb::GetPhotoRequest {
        photo_id: id.into(),
    })
    .await
    .unwrap()
    .into_inner()
    .photo
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photos_survive_a_detector_outage() {
    let mut cluster = Cluster::start().await.expect("start the five services");
    let (_, key) = cluster.create_studio("Faulty studio").unwrap();
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
    let event = api
        .create_event(pb::CreateEventRequest {
            retain_until: None,
            name: "Outage".into(),
            external_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .event
        .unwrap();

    // The detector goes down; a photo arrives and is retried in the background.
    let status = cluster
        .service("detector")
        .stop(Duration::from_secs(20))
        .unwrap();
    assert!(status.success());
    let upload = |seed: u64| pb::UploadPhotoRequest {
        event_id: event.id.clone(),
        external_id: format!("p{seed}"),
        content: event_photo(seed, 1600, 1200, &[1, 2], (90, 150))
            .png()
            .into(),
        file_name: String::new(),
        ..Default::default()
    };
    let recovered = api
        .upload_photo(upload(1))
        .await
        .unwrap()
        .into_inner()
        .photo
        .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    // Waiting for a retry, and saying why.
    let waiting = photo_status(&mut api, &recovered.id).await;
    assert_eq!(
        (waiting.status, waiting.last_error_code.as_str()),
        (pb::PhotoStatus::Retrying as i32, "UNAVAILABLE"),
        "{waiting:?}"
    );

    // It comes back before the retries run out: the photo is indexed.
    cluster.restart("detector").unwrap();
    wait_serving(&cluster.url("detector"), Duration::from_secs(60))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let photo = photo_status(&mut api, &recovered.id).await;
        if photo.status == pb::PhotoStatus::Indexed as i32 {
            assert_eq!(photo.face_count, 2);
            break;
        }
        assert!(
            photo.status == pb::PhotoStatus::Pending as i32
                || photo.status == pb::PhotoStatus::Retrying as i32,
            "{photo:?}\n{}",
            cluster.logs()
        );
        assert!(
            Instant::now() < deadline,
            "photo never indexed\n{}",
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Down for good: after the configured attempts the photo fails, with a reason.
    cluster
        .service("detector")
        .stop(Duration::from_secs(20))
        .unwrap();
    let lost = api
        .upload_photo(upload(2))
        .await
        .unwrap()
        .into_inner()
        .photo
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let failed = loop {
        let photo = photo_status(&mut api, &lost.id).await;
        if photo.status != pb::PhotoStatus::Pending as i32
            && photo.status != pb::PhotoStatus::Retrying as i32
        {
            break photo;
        }
        assert!(
            Instant::now() < deadline,
            "photo stayed pending\n{}",
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(failed.status, pb::PhotoStatus::Failed as i32);
    assert_eq!(failed.failure_code, "UNAVAILABLE");
    assert!(
        failed.failure_reason.contains("gave up after 5 attempts"),
        "{}",
        failed.failure_reason
    );
    assert!(
        failed.failure_reason.contains("detector"),
        "{}",
        failed.failure_reason
    );
    cluster.clean_broker().await;
}
