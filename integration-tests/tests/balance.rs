//! Client-side gRPC balancing: three embedder processes on 127.0.0.2, .3 and
//! .4 answer to one name (as a Kubernetes headless Service's pods do); the
//! gateway and the indexer resolve it to all three, spread their calls
//! over them, and when one is killed mid-run no photo is lost or indexed
//! twice. Each embedder's own /metrics tells how many calls it served.

use std::collections::BTreeMap;
use std::time::Duration;

use facepass_integration_tests::gateway::{
    client, create_event, search_selfie, upload, wait_indexed,
};
use facepass_integration_tests::{prom, Cluster, ClusterOptions};
use facepass_synth::{event_photo, selfie};

const EMBEDDERS: [&str; 3] = ["embedder", "embedder-2", "embedder-3"];
const EMBED: &str = "/facepass.embedder.v1.EmbedderService/Embed";

async fn embeds_served(cluster: &Cluster) -> BTreeMap<&'static str, f64> {
    let mut served = BTreeMap::new();
    for name in EMBEDDERS {
        let value = match cluster.scrape(name).await {
            Ok(text) => prom::sum(
                &text,
                "facepass_rpc_server_requests_total",
                &[("method", EMBED), ("code", "OK")],
            )
            .unwrap_or(0.0),
            Err(_) => f64::NAN, // killed
        };
        served.insert(name, value);
    }
    served
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_spread_over_every_embedder_and_a_killed_one_loses_nothing() {
    let mut cluster = Cluster::start_with(ClusterOptions {
        embedders: vec!["127.0.0.2", "127.0.0.3", "127.0.0.4"],
        ..ClusterOptions::default()
    })
    .await
    .expect("cluster with three embedders");
    let (studio, key) = cluster.create_studio("Balanced").unwrap();
    let mut api = client(&cluster.gateway_grpc, Some(&key)).await.unwrap();
    let event = create_event(&mut api, "Many embedders").await;

    // --- 18 photos with one face of identity 1 or 2 each -------------------
    let mut faces = 0;
    for i in 0..18u64 {
        let identity = 1 + (i % 2) as u8;
        let bytes = event_photo(200 + i, 1200, 900, &[identity], (90, 150)).jpeg(85);
        upload(&mut api, &event.id, &format!("p-{i}"), bytes).await;
        faces += 1;
    }
    let indexed = wait_indexed(&mut api, &event.id, 18, Duration::from_secs(120))
        .await
        .unwrap();
    assert_eq!(
        (indexed.photos_indexed, indexed.faces_total),
        (18, faces),
        "{}",
        cluster.logs()
    );
    let served = embeds_served(&cluster).await;
    let total: f64 = served.values().sum();
    assert!(total >= 18.0, "{served:?}");
    for (name, n) in &served {
        // Power of two choices over three idle replicas: each gets a share.
        assert!(
            *n >= 1.0,
            "{name} served {n} of {total} Embed calls: {served:?}"
        );
    }
    eprintln!("Embed calls per embedder after 18 photos: {served:?}");

    // --- one embedder killed while photos are in flight -------------------------
    let mut uploads = Vec::new();
    for i in 18..36u64 {
        let identity = 1 + (i % 2) as u8;
        uploads.push(event_photo(200 + i, 1200, 900, &[identity], (90, 150)).jpeg(85));
    }
    for (n, bytes) in uploads.into_iter().enumerate() {
        upload(&mut api, &event.id, &format!("p-{}", 18 + n), bytes).await;
        faces += 1;
        if n == 3 {
            cluster.service("embedder-2").child.kill().unwrap();
        }
    }
    let indexed = wait_indexed(&mut api, &event.id, 36, Duration::from_secs(180))
        .await
        .unwrap();
    assert_eq!(
        (
            indexed.photos_indexed,
            indexed.photos_failed,
            indexed.faces_total
        ),
        (36, 0, faces),
        "{}",
        cluster.logs()
    );
    let after = embeds_served(&cluster).await;
    assert!(after["embedder-2"].is_nan(), "embedder-2 still answers");
    for name in ["embedder", "embedder-3"] {
        assert!(
            after[name] > served[name],
            "{name} got none of the later calls: {after:?}"
        );
    }
    eprintln!("Embed calls per embedder after the kill: {after:?}");

    // 36 photos, 36 faces in the store (a photo's faces are replaced, never
    // added twice).
    let stats = cluster.event_stats(&studio, &event.id).await.unwrap();
    assert_eq!(stats.faces, faces);

    // --- a guest's selfie goes through the gateway's balanced channel -------
    let found = search_selfie(&mut api, &event.id, selfie(77, 1).jpeg(90)).await;
    assert_eq!(found.matches.len(), 18);
    cluster.clean_broker().await;
}
