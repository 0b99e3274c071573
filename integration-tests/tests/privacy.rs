//! Privacy controls (issue 12, item 7) on the real binaries: consent for
//! every guest search, "forget me" that also covers photos indexed later,
//! the audit log, retention with automatic purges, and proof that a selfie
//! is never written anywhere: not in the object store, not in any database
//! table (bytes or embedding), not in any log, except the suppression entry
//! the guest asked for, which goes with the event.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use facepass_analysis::FaceAnalysis;
use facepass_integration_tests::gateway::{
    client, create_event, error_code, files_under, upload, wait_indexed,
};
use facepass_integration_tests::Cluster;
use facepass_proto::v1 as pb;
use facepass_synth::{event_photo, selfie};
use tonic::transport::Channel;
use tonic::Code;

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Standard base64 (no dependency for one check).
fn base64(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..=chunk.len() {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn cos(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Every vector stored in any table of the database, with where it is.
fn all_vectors(cluster: &Cluster) -> Vec<(String, Vec<f32>)> {
    let columns = cluster
        .db
        .query_text(
            "SELECT table_schema || '.' || table_name || '.' || column_name FROM information_schema.columns \
             WHERE udt_name IN ('vector', 'halfvec') AND table_schema IN ('faces', 'catalog')",
        )
        .unwrap();
    let mut out = Vec::new();
    for column in columns.lines().filter(|l| !l.is_empty()) {
        let (table, name) = column.rsplit_once('.').unwrap();
        let rows = cluster
            .db
            .query_text(&format!("SELECT {name}::text FROM {table}"))
            .unwrap();
        for row in rows.lines().filter(|l| l.starts_with('[')) {
            let v: Vec<f32> = row
                .trim_matches(|c| c == '[' || c == ']')
                .split(',')
                .map(|x| x.parse().unwrap())
                .collect();
            out.push((column.to_string(), v));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consent_forget_me_audit_and_retention() {
    let cluster = Cluster::start().await.expect("cluster");
    let (studio_id, key) = cluster.create_studio("Studio").unwrap();
    let mut api = client(&cluster.gateway_grpc, Some(&key)).await.unwrap();
    let http = reqwest::Client::new();

    let wedding = create_event(&mut api, "Wedding").await;
    let plan: [&[u8]; 4] = [&[1], &[1, 2], &[2], &[2, 3]];
    for (i, who) in plan.iter().enumerate() {
        let scene = event_photo(700 + i as u64, 1500, 1000, who, (110, 150));
        upload(&mut api, &wedding.id, &format!("w{i}"), scene.jpeg(92)).await;
    }
    wait_indexed(&mut api, &wedding.id, 4, Duration::from_secs(240))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    let guest = format!(
        "{}/api/v1/guest/{}",
        cluster.gateway_http, wedding.share_token
    );
    // --- the link's token at rest: its hash and a sealed copy, never itself --
    let tables = cluster
        .db
        .query_text(
            "SELECT table_name FROM information_schema.tables \
             WHERE table_schema = 'catalog' AND table_type = 'BASE TABLE'",
        )
        .unwrap();
    let mut catalog = String::new();
    for table in tables.lines().filter(|l| !l.is_empty()) {
        let rows = cluster
            .db
            .query_text(&format!("SELECT t::text FROM catalog.\"{table}\" t"))
            .unwrap();
        catalog.push_str(&rows);
    }
    assert!(
        !catalog.contains(&wedding.share_token),
        "a guest link's token is stored in the clear"
    );
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
        wedding.share_token.as_bytes(),
    ));
    assert!(
        catalog.contains(&hash),
        "links are looked up by the token's hash"
    );

    // The selfies of this test: one only searched, one searched and forgotten.
    let searched = selfie(801, 2).jpeg(90);
    let forgotten = selfie(802, 1).jpeg(90);

    // --- consent ------------------------------------------------------------
    let info: serde_json::Value = http.get(&guest).send().await.unwrap().json().await.unwrap();
    let policy = info["policy_version"].as_str().unwrap().to_string();
    assert!(!policy.is_empty());
    let refused = http
        .post(format!("{guest}/search"))
        .body(searched.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 428);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "CONSENT_REQUIRED");
    assert_eq!(body["error"]["field"], "consent");
    let err = api
        .search_by_selfie(pb::SearchBySelfieRequest {
            event_id: wedding.id.clone(),
            selfie: searched.clone().into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(error_code(&err), "CONSENT_REQUIRED");
    assert_eq!(
        cluster
            .db
            .query_text("SELECT count(*) FROM catalog.consents")
            .unwrap()
            .trim(),
        "0"
    );

    let search = |bytes: Vec<u8>| {
        let http = http.clone();
        let url = format!("{guest}/search?consent={policy}");
        async move {
            let r = http.post(url).body(bytes).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.json::<serde_json::Value>().await.unwrap()
        }
    };
    let found = search(searched.clone()).await;
    assert_eq!(found["matches"].as_array().unwrap().len(), 3, "{found}");
    let before = search(forgotten.clone()).await;
    assert_eq!(before["matches"].as_array().unwrap().len(), 2, "{before}");
    let consents = cluster
        .db
        .query_text("SELECT event_id, policy_version, channel FROM catalog.consents")
        .unwrap();
    assert_eq!(consents.lines().count(), 2, "{consents}");
    for line in consents.lines() {
        assert_eq!(line, format!("{}|{policy}|guest_link", wedding.id));
    }

    // --- "forget me", also for photos indexed later --------------------------
    let receipt: serde_json::Value = http
        .post(format!("{guest}/forget"))
        .body(forgotten.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(receipt["faces_deleted"], 2, "{receipt}");
    let later = event_photo(710, 1500, 1000, &[1, 3], (110, 150));
    let late = upload(&mut api, &wedding.id, "late", later.jpeg(92)).await;
    wait_indexed(&mut api, &wedding.id, 5, Duration::from_secs(240))
        .await
        .unwrap();
    let late = api
        .get_photo(pb::GetPhotoRequest {
            photo_id: late.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .photo
        .unwrap();
    assert_eq!(late.face_count, 1, "only person 3's face is kept");
    let after = search(selfie(803, 1).jpeg(90)).await;
    assert_eq!(after["matches"].as_array().unwrap().len(), 0, "{after}");
    let three = search(selfie(804, 3).jpeg(90)).await;
    let ids: BTreeSet<&str> = three["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["photo_id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(late.id.as_str()), "{three}");
    let suppressions = cluster
        .db
        .query_text("SELECT count(*) FROM faces.suppressions")
        .unwrap();
    assert_eq!(suppressions.trim(), "1");

    // --- audit log -----------------------------------------------------------------
    let photos = api
        .list_photos(pb::ListPhotosRequest {
            event_id: wedding.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .photos;
    api.delete_photo(pb::DeletePhotoRequest {
        photo_id: photos[0].id.clone(),
    })
    .await
    .unwrap();
    api.delete_event(pb::DeleteEventRequest {
        event_id: wedding.id.clone(),
    })
    .await
    .unwrap();
    assert_eq!(
        cluster
            .db
            .query_text("SELECT count(*) FROM faces.suppressions")
            .unwrap()
            .trim(),
        "0",
        "the suppression entry goes with the event"
    );
    let log = api
        .list_audit_log(pb::ListAuditLogRequest::default())
        .await
        .unwrap()
        .into_inner()
        .entries;
    let actions: Vec<(&str, &str)> = log
        .iter()
        .map(|e| (e.action.as_str(), e.actor.as_str()))
        .collect();
    let prefix = format!("key:{}", &key[..11]);
    assert_eq!(
        actions,
        vec![
            ("event.deleted", prefix.as_str()),
            ("photo.deleted", prefix.as_str()),
            ("guest.forgotten", "guest"),
        ],
        "newest first"
    );
    assert_eq!(log[2].counts["faces"], 2);
    assert_eq!(log[2].counts["photos"], 2);
    assert_eq!(log[1].photo_id, photos[0].id);
    assert_eq!(log[0].counts["photos"], 4);
    // Paged.
    let page = api
        .list_audit_log(pb::ListAuditLogRequest {
            page_size: 2,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.entries.len(), 2);
    let rest = api
        .list_audit_log(pb::ListAuditLogRequest {
            page_size: 2,
            page_token: page.next_page_token,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.entries.len(), 1);
    assert!(rest.next_page_token.is_empty());

    // --- retention: purged automatically, with a receipt -----------------------
    let short = create_event(&mut api, "Short-lived").await;
    upload(
        &mut api,
        &short.id,
        "s0",
        event_photo(720, 1200, 800, &[2], (110, 150)).jpeg(90),
    )
    .await;
    wait_indexed(&mut api, &short.id, 1, Duration::from_secs(240))
        .await
        .unwrap();
    let kept = api
        .set_event_retention(pb::SetEventRetentionRequest {
            event_id: short.id.clone(),
            retain_until: Some(facepass_proto::prost_types::Timestamp {
                seconds: 4_102_444_800,
                nanos: 0,
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .event
        .unwrap();
    assert_eq!(kept.retain_until.unwrap().seconds, 4_102_444_800);
    tokio::time::sleep(Duration::from_millis(800)).await;
    api.get_event(pb::GetEventRequest {
        event_id: short.id.clone(),
    })
    .await
    .expect("a future date keeps the event");
    api.set_event_retention(pb::SetEventRetentionRequest {
        event_id: short.id.clone(),
        retain_until: Some(facepass_proto::prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        }),
    })
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = api
            .get_event(pb::GetEventRequest {
                event_id: short.id.clone(),
            })
            .await;
        if matches!(&got, Err(e) if e.code() == Code::NotFound) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the expired event was not purged"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The event is NOT_FOUND as soon as its deletion begins; the purge's
    // receipt is written when the deletion is complete, a moment later.
    let purge = loop {
        let newest = api
            .list_audit_log(pb::ListAuditLogRequest::default())
            .await
            .unwrap()
            .into_inner()
            .entries
            .remove(0);
        if newest.action == "event.purged" || Instant::now() >= deadline {
            break newest;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        (purge.action.as_str(), purge.actor.as_str()),
        ("event.purged", "retention")
    );
    assert_eq!(purge.event_id, short.id);
    assert_eq!(purge.counts["photos"], 1);
    assert_eq!(purge.counts["faces"], 1);
    // Every object under the event's prefix: the photo and its previews.
    assert_eq!(
        purge.counts["objects"],
        1 + facepass_core::preview::Size::ALL.len() as u64
    );
    let event_dir = cluster
        .storage_root
        .join(format!("studios/{studio_id}/events/{}", short.id));
    assert!(!event_dir.exists(), "the purged event's objects are gone");
}

/// Asserts that no trace of `selfies` is kept: not their bytes in any
/// stored object, the database (pg_dump) or a log, and no embedding as
/// close as a re-embedding of the same image (cos >= 0.999) in any vector
/// column, except `allowed` (selfie index) in the suppression entries.
fn assert_no_selfie_kept(
    cluster: &Cluster,
    phase: &str,
    selfies: &[&[u8]],
    embeddings: &[Vec<f32>],
    allowed: Option<usize>,
) {
    for path in files_under(&cluster.storage_root) {
        let bytes = std::fs::read(&path).unwrap();
        for (i, selfie) in selfies.iter().enumerate() {
            let window = &selfie[selfie.len() / 2..selfie.len() / 2 + 64];
            assert!(
                !contains(&bytes, window),
                "{phase}: selfie {i} is in {}",
                path.display()
            );
        }
    }
    let dump = std::process::Command::new("pg_dump")
        .args(["--data-only", &cluster.db.url])
        .output()
        .unwrap();
    assert!(dump.status.success());
    let dump = String::from_utf8_lossy(&dump.stdout);
    let logs = cluster.logs();
    for (i, selfie) in selfies.iter().enumerate() {
        let window = &selfie[selfie.len() / 2..selfie.len() / 2 + 32];
        assert!(
            !dump.contains(&hex::encode(window)),
            "{phase}: selfie {i}'s bytes in the database"
        );
        assert!(
            !logs.contains(&hex::encode(&window[..24])),
            "{phase}: selfie {i} (hex) in a log"
        );
        assert!(
            !logs.contains(&base64(&window[..24])),
            "{phase}: selfie {i} (base64) in a log"
        );
    }
    let vectors = all_vectors(cluster);
    assert!(
        !vectors.is_empty() || phase.contains("deleted"),
        "{phase}: no vectors read"
    );
    for (i, e) in embeddings.iter().enumerate() {
        assert!(
            !logs.contains(&format!("{}, {}", e[0], e[1])),
            "{phase}: embedding {i} in a log"
        );
        for (column, v) in &vectors {
            let same = cos(v, e) >= 0.999;
            let ok = allowed == Some(i) && column.starts_with("faces.suppressions");
            assert!(
                !same || ok,
                "{phase}: selfie {i}'s embedding is in {column} (cos {})",
                cos(v, e)
            );
        }
    }
}

/// On real faces, where every image embeds differently: after searches and
/// a "forget me", neither selfie is anywhere but the suppression entry the
/// forgetting guest asked for; after the event is deleted, not even that.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_selfie_is_never_stored() {
    let (models, photos) = facepass_integration_tests::real_pack().expect("the real model pack");
    let cluster = Cluster::start_with_pack(&models).await.expect("cluster");
    let (_studio, key) = cluster.create_studio("Studio").unwrap();
    let mut api = client(&cluster.gateway_grpc, Some(&key)).await.unwrap();
    let http = reqwest::Client::new();
    let faces = FaceAnalysis::new(
        Channel::from_shared(cluster.url("detector"))
            .unwrap()
            .connect_lazy(),
        Channel::from_shared(cluster.url("embedder"))
            .unwrap()
            .connect_lazy(),
        &cluster.internal_token,
        64 << 20,
    );
    let read = |name: &str| std::fs::read(photos.join(name)).unwrap();
    let party = create_event(&mut api, "Party").await;
    let names = [
        "obama.jpg",
        "obama3.jpg",
        "obama_partial_face.jpg",
        "biden.jpg",
    ];
    for (i, name) in names.iter().enumerate() {
        upload(&mut api, &party.id, &format!("p{i}"), read(name)).await;
    }
    wait_indexed(
        &mut api,
        &party.id,
        names.len() as u64,
        Duration::from_secs(240),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    // Two other photos of the same man: one searches, one asks to be forgotten.
    let searched = read("32bit.png");
    let forgotten = read("obama2.jpg");
    let embed = |bytes: &Vec<u8>| {
        let faces = faces.clone();
        let bytes = bytes.clone();
        async move {
            faces
                .analyze_selfie(bytes.into())
                .await
                .unwrap()
                .embedding
                .values
        }
    };
    let embeddings = vec![embed(&searched).await, embed(&forgotten).await];
    let guest = format!(
        "{}/api/v1/guest/{}",
        cluster.gateway_http, party.share_token
    );
    for selfie in [&searched, &forgotten] {
        let found: serde_json::Value = http
            .post(format!("{guest}/search?consent=test-policy"))
            .body(selfie.clone())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(found["matches"].as_array().unwrap().len(), 3, "{found}");
    }
    let err = api
        .search_by_selfie(pb::SearchBySelfieRequest {
            event_id: party.id.clone(),
            selfie: searched.clone().into(),
            more_selfies: vec![forgotten.clone().into()],
            consent: Some(pb::Consent {
                given: true,
                policy_version: "test-policy".into(),
            }),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().matches.len());
    assert_eq!(err.unwrap(), 3);
    let receipt: serde_json::Value = http
        .post(format!("{guest}/forget"))
        .body(forgotten.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(receipt["faces_deleted"], 3, "{receipt}");
    let selfies: [&[u8]; 2] = [&searched, &forgotten];
    assert_no_selfie_kept(
        &cluster,
        "after searches and forget",
        &selfies,
        &embeddings,
        Some(1),
    );
    let suppressed = all_vectors(&cluster)
        .into_iter()
        .filter(|(c, v)| c.starts_with("faces.suppressions") && cos(v, &embeddings[1]) >= 0.999)
        .count();
    assert_eq!(suppressed, 1, "the guest's suppression entry");
    api.delete_event(pb::DeleteEventRequest {
        event_id: party.id.clone(),
    })
    .await
    .unwrap();
    assert_no_selfie_kept(
        &cluster,
        "after the event is deleted",
        &selfies,
        &embeddings,
        None,
    );
    assert_eq!(
        cluster
            .db
            .query_text("SELECT count(*) FROM faces.suppressions")
            .unwrap()
            .trim(),
        "0"
    );
}
