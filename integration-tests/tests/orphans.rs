//! No orphans (issue 15, point 2), on the real binaries with a local store:
//!
//! - the gateway is killed (SIGKILL) while an upload streams in: after the
//!   grace period the sweeper of the restarted gateway removes what the cut
//!   upload left (its staged part), and the client's retry with the same
//!   external id stores the photo once;
//! - an object whose photo row never committed (the state a crash between
//!   the object's write and the row's commit leaves) is removed;
//! - an event deletion interrupted halfway (the face store down, then the
//!   gateway killed) is finished by the sweeper: no object, face or row is
//!   left, and the audit log has one entry.

use std::time::{Duration, Instant};

use bytes::Bytes;
use facepass_integration_tests::gateway::{client, create_event, upload, wait_indexed};
use facepass_integration_tests::{wait_serving, Cluster, ClusterOptions};
use facepass_proto::v1 as pb;
use facepass_synth::event_photo;

/// Every file under `dir`, recursively, as paths relative to it.
fn files(dir: &std::path::Path) -> Vec<String> {
    facepass_integration_tests::gateway::files_under(dir)
        .into_iter()
        .map(|p| p.strip_prefix(dir).unwrap().display().to_string())
        .collect()
}

/// Polls `check` every 200 ms until it holds, or panics after `timeout`.
async fn eventually<F: FnMut() -> bool>(what: &str, timeout: Duration, mut check: F) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_uploads_and_interrupted_deletions_leave_nothing_behind() {
    let env = |k: &str, v: &str| (k.to_string(), v.to_string());
    let mut cluster = Cluster::start_with(ClusterOptions {
        env: vec![
            // An upload may take up to 5 s here; its journal entry is an
            // orphan after 6 s, and the sweeper looks twice a second.
            env("FACEPASS_GRPC__REQUEST_TIMEOUT_MS", "5000"),
            env("FACEPASS_ORPHAN_GRACE_MS", "6000"),
            env("FACEPASS_SWEEP_POLL_MS", "500"),
        ],
        ..ClusterOptions::default()
    })
    .await
    .expect("cluster");
    let (studio, key) = cluster.create_studio("Orphans").unwrap();
    let mut api = client(&cluster.gateway_grpc, Some(&key)).await.unwrap();
    let event = create_event(&mut api, "Orphans").await;
    let event_dir = cluster
        .storage_root
        .join(format!("studios/{studio}/events/{}", event.id));
    let photo = |i: u64| event_photo(600 + i, 1000, 750, &[1 + (i % 3) as u8], (90, 150)).jpeg(85);

    // --- An upload cut by a gateway crash --------------------------------
    let bytes = photo(0);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(1);
    let body = reqwest::Body::wrap_stream(futures::stream::poll_fn(move |cx| {
        rx.poll_recv(cx).map(|b| b.map(Ok::<_, std::io::Error>))
    }));
    let url = format!(
        "{}/api/v1/events/{}/photos?external_id=cut",
        cluster.gateway_http, event.id
    );
    let http = reqwest::Client::new();
    let request = tokio::spawn(
        http.post(&url)
            .bearer_auth(&key)
            .header("content-type", "image/jpeg")
            .body(body)
            .send(),
    );
    // Half the photo, then nothing: the gateway is writing it.
    tx.send(Bytes::copy_from_slice(&bytes[..bytes.len() / 2]))
        .await
        .unwrap();
    eventually("the upload's staged part", Duration::from_secs(10), || {
        files(&event_dir).iter().any(|f| f.contains('#'))
    })
    .await;
    let staged = files(&event_dir);
    assert_eq!(
        cluster
            .db
            .query_text("SELECT count(*) FROM catalog.pending_objects")
            .unwrap()
            .trim(),
        "1",
        "the upload is journaled before its object is written"
    );
    let gateway = cluster.service("gateway");
    gateway.child.kill().unwrap();
    gateway.child.wait().unwrap();
    drop(tx);
    assert!(request.await.unwrap().is_err(), "the cut upload failed");
    assert_eq!(files(&event_dir), staged, "the crash left the staged part");

    cluster.restart("gateway").unwrap();
    wait_serving(&cluster.gateway_grpc, Duration::from_secs(60))
        .await
        .unwrap();
    let mut api = client(&cluster.gateway_grpc, Some(&key)).await.unwrap();
    // The client retries with the same external id: one photo.
    let stored = upload(&mut api, &event.id, "cut", bytes.clone()).await;
    let again = upload(&mut api, &event.id, "cut", bytes.clone()).await;
    assert_eq!(stored.id, again.id);

    // --- An object whose row never committed -----------------------------
    let stray_key = format!(
        "studios/{studio}/events/{}/photos/{}",
        event.id,
        uuid::Uuid::new_v4()
    );
    std::fs::write(cluster.storage_root.join(&stray_key), b"never committed").unwrap();
    cluster
        .db
        .query_text(&format!(
            "INSERT INTO catalog.pending_objects (key) VALUES ('{stray_key}')"
        ))
        .unwrap();

    let stored_file = format!("photos/{}", stored.id);
    eventually(
        "the sweeper removing what the crash left",
        Duration::from_secs(30),
        || {
            let left = files(&event_dir);
            !left.iter().any(|f| f.contains('#'))
                && !left.iter().any(|f| stray_key.ends_with(f.as_str()))
        },
    )
    .await;
    let left = files(&event_dir);
    assert!(left.contains(&stored_file), "{left:?}");
    assert!(
        left.iter()
            .all(|f| f == &stored_file || f.starts_with("previews/")),
        "only the stored photo and its previews remain: {left:?}"
    );
    assert_eq!(
        cluster
            .db
            .query_text("SELECT count(*) FROM catalog.pending_objects")
            .unwrap()
            .trim(),
        "0"
    );

    // --- An event deletion interrupted halfway -----------------------------
    for i in 1..3 {
        upload(&mut api, &event.id, &format!("p-{i}"), photo(i)).await;
    }
    wait_indexed(&mut api, &event.id, 3, Duration::from_secs(90))
        .await
        .unwrap();
    assert!(!files(&event_dir).is_empty());
    cluster
        .service("search")
        .stop(Duration::from_secs(20))
        .unwrap();
    let err = api
        .delete_event(pb::DeleteEventRequest {
            event_id: event.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    // Hidden at once, although not gone yet.
    let err = api
        .get_event(pb::GetEventRequest {
            event_id: event.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    assert!(!files(&event_dir).is_empty(), "nothing deleted yet");
    // And the gateway that began it dies.
    let gateway = cluster.service("gateway");
    gateway.child.kill().unwrap();
    gateway.child.wait().unwrap();
    cluster.restart("search").unwrap();
    cluster.restart("gateway").unwrap();
    wait_serving(&cluster.gateway_grpc, Duration::from_secs(60))
        .await
        .unwrap();
    let db = &cluster.db;
    eventually(
        "the sweeper finishing the deletion",
        Duration::from_secs(60),
        || {
            db.query_text(&format!(
                "SELECT count(*) FROM catalog.events WHERE id = '{}'",
                event.id
            ))
            .map(|n| n.trim() == "0")
            .unwrap_or(false)
        },
    )
    .await;
    assert_eq!(
        files(&event_dir),
        Vec::<String>::new(),
        "no object of the event is left"
    );
    assert!(!event_dir.exists(), "nor its folder");
    let left_in_store = db
        .query_text(&format!(
            "SELECT (SELECT count(*) FROM faces.event_faces WHERE event_id = '{0}') \
                  + (SELECT count(*) FROM faces.events WHERE event_id = '{0}')",
            event.id
        ))
        .unwrap();
    assert_eq!(left_in_store.trim(), "0", "no face of the event is left");
    let mut api = client(&cluster.gateway_grpc, Some(&key)).await.unwrap();
    let audit = api
        .list_audit_log(pb::ListAuditLogRequest::default())
        .await
        .unwrap()
        .into_inner()
        .entries;
    let deleted: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "event.deleted")
        .collect();
    assert_eq!(deleted.len(), 1, "{audit:?}");
    assert!(deleted[0].actor.starts_with("key:"), "{:?}", deleted[0]);
    cluster.clean_broker().await;
}
