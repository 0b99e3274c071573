//! Distributed traces: the five services export their spans by OTLP/gRPC to
//! a receiver in this test. One upload is one trace whose spans come from
//! all five services (gateway → outbox → RabbitMQ → indexer → detector,
//! embedder, search → the gateway applying the outcome), with every parent
//! link inside the trace; one selfie search is one trace across the
//! gateway, the detector, the embedder and search.
//!
//! The services batch spans for an hour (OTEL_BSP_SCHEDULE_DELAY), so what
//! the receiver gets, it gets from the flush each service does when it
//! stops (SIGTERM).

use std::collections::BTreeSet;
use std::time::Duration;

use facepass_integration_tests::gateway::{
    client, create_event, search_selfie, upload, wait_indexed,
};
use facepass_integration_tests::otlp::{link_problems, services, OtlpReceiver};
use facepass_integration_tests::{Cluster, ClusterOptions};
use facepass_synth::{event_photo, selfie};

const UPLOAD: &str = "/facepass.v1.FacePassService/UploadPhoto";
const SEARCH: &str = "/facepass.v1.FacePassService/SearchBySelfie";

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| format!("facepass-{n}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_and_a_search_are_one_trace_each_across_the_services() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let env = |k: &str, v: String| (k.to_string(), v);
    let mut cluster = Cluster::start_with(ClusterOptions {
        env: vec![
            env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
            env("OTEL_BSP_SCHEDULE_DELAY", "3600000".into()),
        ],
        ..ClusterOptions::default()
    })
    .await
    .expect("cluster exporting traces");
    let (_studio, key) = cluster.create_studio("Traced").unwrap();
    let mut api = client(&cluster.gateway_grpc, Some(&key)).await.unwrap();
    let event = create_event(&mut api, "Traced event").await;

    upload(
        &mut api,
        &event.id,
        "t-1",
        event_photo(31, 1600, 1200, &[1, 2], (90, 150)).jpeg(90),
    )
    .await;
    let indexed = wait_indexed(&mut api, &event.id, 1, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(indexed.faces_total, 2);
    let found = search_selfie(&mut api, &event.id, selfie(32, 1).jpeg(90)).await;
    assert_eq!(found.matches.len(), 1);
    // Nothing has been exported yet: an hour's batching is not over.
    assert!(receiver.spans().is_empty(), "{:?}", receiver.spans());

    // Each service flushes its spans as it stops.
    for name in ["gateway", "indexer", "detector", "embedder", "search"] {
        cluster.service(name).stop(Duration::from_secs(30)).unwrap();
    }

    let everyone = set(&["gateway", "indexer", "detector", "embedder", "search"]);
    let trace = receiver
        .trace_of(UPLOAD, Duration::from_secs(20), |t| services(t) == everyone)
        .await;
    for span in &trace {
        eprintln!(
            "upload trace {}: {:<18} {:<55} parent {}",
            &span.trace_id[..8],
            span.service,
            span.name,
            span.parent_span_id
        );
    }
    let names: BTreeSet<&str> = trace.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        services(&trace),
        everyone,
        "spans of the upload's trace: {trace:#?}"
    );
    for step in [
        UPLOAD,
        "outbox publish",
        "index photo",
        "/facepass.detector.v1.DetectorService/Detect",
        "/facepass.embedder.v1.EmbedderService/Embed",
        "/facepass.search.v1.SearchService/UpsertPhotoFaces",
        "apply outcome",
    ] {
        assert!(
            names.contains(step),
            "no {step:?} in the upload's trace: {names:?}"
        );
    }
    assert_eq!(link_problems(&trace), Vec::<String>::new(), "{trace:#?}");
    let root = trace.iter().find(|s| s.parent_span_id.is_empty()).unwrap();
    assert_eq!(
        (root.name.as_str(), root.service.as_str()),
        (UPLOAD, "facepass-gateway")
    );

    let four = set(&["gateway", "detector", "embedder", "search"]);
    let trace = receiver
        .trace_of(SEARCH, Duration::from_secs(20), |t| services(t) == four)
        .await;
    assert_eq!(
        services(&trace),
        four,
        "spans of the search's trace: {trace:#?}"
    );
    assert_eq!(link_problems(&trace), Vec::<String>::new(), "{trace:#?}");
    // Health checks never make spans.
    assert!(!receiver
        .spans()
        .iter()
        .any(|s| s.name.starts_with("/grpc.health")));
    cluster.clean_broker().await;
}
