//! A recogniser of another dimension through its manifest alone: the five
//! real binaries on a pack whose recogniser gives 128-d embeddings (the
//! fixture's identities projected to 128 dimensions). The embedder says
//! 128, the face store keeps the event's faces at 128 dimensions, and a
//! selfie finds exactly its person's photos. (Mixing two dimensions in one
//! store, exact and HNSW, is tests/store_dimensions.rs.)

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use facepass_integration_tests::gateway::{client, error_code, wait_indexed};
use facepass_integration_tests::{fixture_models_of, Cluster};
use facepass_proto::v1 as pb;
use facepass_synth::{event_photo, selfie};

fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-tAc", sql])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_128_d_pack_indexes_and_searches_at_its_own_dimension() {
    let pack = fixture_models_of(128).unwrap();
    let manifest = facepass_core::pack::PackManifest::load(&pack).unwrap();
    assert_eq!(manifest.recogniser.dimension, 128);
    let cluster = Cluster::start_with_pack(&pack).await.unwrap();
    let (_studio, key) = cluster.create_studio("Dimension Studio").unwrap();
    let mut api = client(&cluster.gateway_grpc, Some(&key)).await.unwrap();
    let event = api
        .create_event(pb::CreateEventRequest {
            retain_until: None,
            name: "128-d".into(),
            external_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .event
        .unwrap();
    let plan: [&[u8]; 4] = [&[1, 2], &[1], &[3], &[2, 3]];
    let mut with_one = BTreeSet::new();
    for (i, people) in plan.iter().enumerate() {
        let photo = event_photo(300 + i as u64, 1280, 960, people, (110, 150));
        let uploaded = api
            .upload_photo(pb::UploadPhotoRequest {
                event_id: event.id.clone(),
                external_id: format!("p{i}"),
                content: photo.jpeg(92).into(),
                file_name: format!("p{i}.jpg"),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .photo
            .unwrap();
        if people.contains(&1) {
            with_one.insert(uploaded.id);
        }
    }
    let indexed = wait_indexed(
        &mut api,
        &event.id,
        plan.len() as u64,
        Duration::from_secs(180),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    assert_eq!(indexed.photos_failed, 0, "{}", cluster.logs());

    // The store keeps this event's faces at 128 dimensions.
    let dims = psql(
        &cluster.db.url,
        "SELECT string_agg(DISTINCT vector_dims(embedding)::text, ',') || ' ' || count(*) \
         FROM faces.event_faces",
    );
    assert_eq!(dims, "128 6", "dimension and face count in the store");
    assert_eq!(
        psql(&cluster.db.url, "SELECT dimension FROM faces.events"),
        "128"
    );

    let result = api
        .search_by_selfie(pb::SearchBySelfieRequest {
            consent: Some(pb::Consent {
                given: true,
                policy_version: "test-policy".into(),
            }),
            more_selfies: vec![],
            together: vec![],
            tiers: 0,
            event_id: event.id.clone(),
            selfie: selfie(77, 1).jpeg(92).into(),
            limit: 0,
        })
        .await
        .unwrap_or_else(|e| panic!("{} {}", error_code(&e), e.message()))
        .into_inner();
    let found: BTreeSet<String> = result
        .matches
        .iter()
        .map(|m| m.photo.as_ref().unwrap().id.clone())
        .collect();
    println!(
        "128-d selfie of identity 1: {:?}",
        result
            .matches
            .iter()
            .map(|m| m.similarity)
            .collect::<Vec<_>>()
    );
    assert_eq!(found, with_one, "exactly identity 1's photos");
}
