//! Live before bulk (issue 16, point 3): a photo uploaded during the event
//! is indexed before the waiting photos of a bulk import, over gRPC and
//! REST; a bad priority is refused; the indexer queue of earlier releases
//! (without priorities) is emptied into the priority queue and deleted.
//! The real binaries, broker and database.

use std::time::Duration;

use facepass_integration_tests::gateway::{
    client, create_event, error_code, photo, upload, wait_indexed,
};
use facepass_integration_tests::{amqp_url, Cluster, ClusterOptions};
use facepass_proto::v1 as pb;
use facepass_queue::lapin::options::QueueDeclareOptions;
use facepass_queue::lapin::types::FieldTable;
use facepass_synth::event_photo;
use tonic::Code;

/// (exists, messages) of a queue, by a passive declare on its own channel.
async fn queue_depth(queue: &str) -> (bool, u32) {
    let connection = facepass_queue::connect(&amqp_url(), "priority-probe")
        .await
        .unwrap();
    let probe = connection.create_channel().await.unwrap();
    match probe
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
    {
        Ok(q) => (true, q.message_count()),
        Err(_) => (false, 0),
    }
}

fn jpeg(i: u64) -> Vec<u8> {
    event_photo(700 + i, 1000, 750, &[1 + (i % 3) as u8], (90, 150)).jpeg(85)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_uploads_overtake_a_waiting_bulk_import() {
    // One photo at a time in the indexer, so the order is the queue's.
    let mut cluster = Cluster::start_with(ClusterOptions {
        env: vec![("FACEPASS_PREFETCH".into(), "1".into())],
        ..ClusterOptions::default()
    })
    .await
    .expect("cluster");
    let (_studio, key) = cluster.create_studio("Priority").unwrap();
    let mut api = client(&cluster.gateway_grpc, Some(&key)).await.unwrap();
    let event = create_event(&mut api, "Wedding").await;
    let topology = facepass_queue::AmqpConfig {
        url: String::new(),
        namespace: cluster.namespace.clone(),
    }
    .topology();
    let connection = facepass_queue::connect(&amqp_url(), "priority-test")
        .await
        .unwrap();

    // The indexer is down while a studio imports its archive.
    cluster
        .service("indexer")
        .stop(Duration::from_secs(20))
        .unwrap();
    let bulk = 12u64;
    let mut bulk_ids = Vec::new();
    for i in 0..bulk {
        let photo = api
            .upload_photo(pb::UploadPhotoRequest {
                event_id: event.id.clone(),
                external_id: format!("archive-{i}"),
                content: jpeg(i).into(),
                priority: pb::IndexingPriority::Bulk as i32,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .photo
            .unwrap();
        bulk_ids.push(photo.id);
    }
    // Then photos taken at the event: gRPC's default is live, REST's too,
    // and REST says so explicitly as well.
    let mut live_ids = vec![
        // No priority given: live.
        upload(&mut api, &event.id, "live-grpc", jpeg(100)).await.id,
    ];
    let http = reqwest::Client::new();
    let photos_url = format!("{}/api/v1/events/{}/photos", cluster.gateway_http, event.id);
    let rest_upload = |query: &'static str, i: u64| {
        http.post(format!("{photos_url}?{query}"))
            .bearer_auth(&key)
            .body(jpeg(i))
            .send()
    };
    for (query, i) in [
        ("external_id=live-rest", 101),
        ("external_id=live-rest-2&priority=live", 102),
    ] {
        let response = rest_upload(query, i).await.unwrap();
        assert_eq!(response.status(), 202, "{query}");
        let body: serde_json::Value = response.json().await.unwrap();
        live_ids.push(body["id"].as_str().unwrap().to_string());
    }
    // A REST bulk upload, and priorities that do not exist.
    let response = rest_upload("external_id=archive-rest&priority=bulk", 103)
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let body: serde_json::Value = response.json().await.unwrap();
    bulk_ids.push(body["id"].as_str().unwrap().to_string());
    let response = rest_upload("external_id=x&priority=urgent", 104)
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "INVALID_ARGUMENT", "{body}");
    assert_eq!(body["error"]["field"], "priority", "{body}");
    let err = api
        .upload_photo(pb::UploadPhotoRequest {
            event_id: event.id.clone(),
            external_id: "y".into(),
            content: jpeg(105).into(),
            priority: 7,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(error_code(&err), "INVALID_ARGUMENT");
    let total = bulk + 1 + live_ids.len() as u64;

    // The relay has published everything into the priority queue.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let depths = cluster.queue_depths().await.unwrap();
        let depth = |q: &str| depths.iter().find(|(n, _)| n == q).map(|(_, d)| *d);
        if depth(&topology.indexer_queue()) == Some(total as u32) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "queues: {depths:?}\n{}",
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    cluster.restart("indexer").unwrap();
    wait_indexed(&mut api, &event.id, total, Duration::from_secs(120))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));

    // The order photos were indexed in.
    let mut order = Vec::new();
    for id in live_ids.iter().chain(&bulk_ids) {
        let p = photo(&mut api, id).await;
        assert_eq!(p.status, pb::PhotoStatus::Indexed as i32, "{p:?}");
        let at = p.indexed_at.expect("indexed_at");
        order.push(((at.seconds, at.nanos), live_ids.contains(id)));
    }
    order.sort();
    let last_live = order.iter().rposition(|(_, live)| *live).unwrap();
    let bulk_before = order[..last_live].iter().filter(|(_, live)| !live).count();
    println!(
        "indexing order (L live, b bulk): {}",
        order
            .iter()
            .map(|(_, live)| if *live { 'L' } else { 'b' })
            .collect::<String>()
    );
    // Uploaded last, indexed first: at most the one bulk photo the indexer
    // had already taken (prefetch 1) goes before them.
    assert!(
        bulk_before <= 1,
        "{bulk_before} bulk photos were indexed before the last live one"
    );

    // An older release's indexer queue, still bound, as during a rolling
    // upgrade: the relay's messages land there too. The next indexer start
    // moves them into the priority queue and deletes it.
    cluster
        .service("indexer")
        .stop(Duration::from_secs(20))
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let legacy = topology.legacy_indexer_queue();
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(legacy.as_str().into(), durable, FieldTable::default())
        .await
        .unwrap();
    channel
        .queue_bind(
            legacy.as_str().into(),
            topology.events_exchange().as_str().into(),
            facepass_queue::PHOTO_UPLOADED.into(),
            Default::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();

    for i in 0..2u64 {
        let response = rest_upload("", 110 + i).await.unwrap();
        assert_eq!(response.status(), 202);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, legacy_depth) = queue_depth(&legacy).await;
        let (_, depth) = queue_depth(&topology.indexer_queue()).await;
        if legacy_depth == 2 && depth == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "legacy queue has {legacy_depth}, the new one {depth}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Only the old queue holds them now: they are indexed only if moved.
    channel
        .queue_purge(topology.indexer_queue().as_str().into(), Default::default())
        .await
        .unwrap();
    cluster.restart("indexer").unwrap();
    wait_indexed(&mut api, &event.id, total + 2, Duration::from_secs(120))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    // The old queue is gone.
    assert!(!queue_depth(&legacy).await.0, "{legacy} still exists");
    let logs = cluster.logs();
    assert!(
        logs.contains("moved the old indexer queue's messages"),
        "no retirement logged"
    );
    cluster.clean_broker().await;
}
