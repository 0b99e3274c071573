//! One face store, model packs of different dimensions: each event keeps
//! its pack's embeddings at their own dimension (here 512 and 128), is
//! searched exactly and through its own HNSW index at that dimension, and
//! a request of another pack or dimension is refused with MODEL_MISMATCH
//! before anything is compared.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use facepass_integration_tests::search::{start, Search};
use facepass_integration_tests::{fixture_models, tempfile_dir, TestDatabase};
use facepass_proto::search::v1 as pb;
use facepass_proto::types::v1 as types;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

fn unit(v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

fn random_unit(rng: &mut StdRng, dim: usize) -> Vec<f32> {
    unit((0..dim).map(|_| rng.gen_range(-1.0f32..1.0)).collect())
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn face(index: u32, embedding: Vec<f32>) -> pb::Face {
    pb::Face {
        face_index: index,
        embedding,
        face: Some(types::Face {
            r#box: Some(types::FaceBox {
                x1: 10.0,
                y1: 10.0,
                x2: 90.0,
                y2: 90.0,
            }),
            landmarks: vec![types::Point { x: 50.0, y: 50.0 }; 5],
            score: 0.9,
        }),
        quality: 0.0,
    }
}

/// Faces as (photo, embedding).
type Faces = Vec<(Uuid, Vec<f32>)>;

/// An event of `photos` photos, one face each, of `people` identities:
/// each face is its identity's centre plus noise. Returns the centres and
/// the faces as (photo, embedding).
fn event_faces(
    rng: &mut StdRng,
    dim: usize,
    people: usize,
    photos: usize,
) -> (Vec<Vec<f32>>, Faces) {
    let centres: Vec<Vec<f32>> = (0..people).map(|_| random_unit(rng, dim)).collect();
    let faces = (0..photos)
        .map(|i| {
            let c = &centres[i % people];
            let noise = random_unit(rng, dim);
            let v = unit(c.iter().zip(&noise).map(|(a, b)| a + 0.6 * b).collect());
            (Uuid::new_v4(), v)
        })
        .collect();
    (centres, faces)
}

async fn write(
    search: &mut Search,
    studio: Uuid,
    event: Uuid,
    model: &str,
    faces: &[(Uuid, Vec<f32>)],
) {
    let response = search
        .client
        .bulk_upsert_photo_faces(pb::BulkUpsertPhotoFacesRequest {
            studio_id: studio.to_string(),
            event_id: event.to_string(),
            model: model.into(),
            photos: faces
                .iter()
                .map(|(photo, v)| pb::PhotoFaces {
                    photo_id: photo.to_string(),
                    faces: vec![face(0, v.clone())],
                })
                .collect(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.faces_stored as usize, faces.len());
}

async fn search_event(
    search: &mut Search,
    studio: Uuid,
    event: Uuid,
    model: &str,
    query: &[f32],
) -> Result<pb::SearchEventResponse, tonic::Status> {
    search
        .client
        .search_event(pb::SearchEventRequest {
            studio_id: studio.to_string(),
            event_id: event.to_string(),
            model: model.into(),
            people: vec![pb::Person {
                faces: vec![],
                selfies: vec![types::Embedding {
                    values: query.to_vec(),
                }],
            }],
            page_size: 1000,
            page_token: String::new(),
            matches_only: false,
        })
        .await
        .map(|r| r.into_inner())
}

fn photos(response: &pb::SearchEventResponse) -> BTreeSet<String> {
    response.hits.iter().map(|h| h.photo_id.clone()).collect()
}

/// The photos a brute-force scan finds at or above `threshold`.
fn expected(faces: &[(Uuid, Vec<f32>)], query: &[f32], threshold: f32) -> BTreeSet<String> {
    faces
        .iter()
        .filter(|(_, v)| cosine(v, query) >= threshold)
        .map(|(p, _)| p.to_string())
        .collect()
}

fn code_of(status: &tonic::Status) -> String {
    facepass_integration_tests::gateway::error_code(status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_keep_their_packs_dimension_and_never_mix() {
    let db = TestDatabase::create("fp_store_dims").await.unwrap();
    let dir = tempfile_dir::Dir::new("facepass-dims").unwrap();
    let env = |pairs: &[(&str, String)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    };
    // A: the fixture pack (512-d) from its manifest. B: a 128-d pack given
    // by name and dimension; small events get their HNSW index early.
    let mut a = start(
        &db,
        &dir,
        "search-512",
        env(&[
            (
                "FACEPASS_MODEL__PACK",
                fixture_models().unwrap().display().to_string(),
            ),
            ("FACEPASS_STORE__CACHE_MB", "0".into()),
        ]),
    )
    .await
    .unwrap();
    let small_events = [
        ("FACEPASS_STORE__CACHE_MB", "0".to_string()),
        ("FACEPASS_STORE__EXACT_MAX_FACES", "100".into()),
        ("FACEPASS_STORE__INDEX_CHECK_SECS", "1".into()),
    ];
    let mut b_env = env(&small_events);
    b_env.extend(env(&[
        ("FACEPASS_MODEL__NAME", "mini128@1".into()),
        ("FACEPASS_MODEL__DIMENSION", "128".into()),
    ]));
    let mut b = start(&db, &dir, "search-128", b_env).await.unwrap();
    // C: misconfigured, the 128-d pack's name with 512 dimensions.
    let mut c_env = env(&small_events);
    c_env.extend(env(&[
        ("FACEPASS_MODEL__NAME", "mini128@1".into()),
        ("FACEPASS_MODEL__DIMENSION", "512".into()),
    ]));
    let mut c = start(&db, &dir, "search-wrong", c_env).await.unwrap();

    let mut rng = StdRng::seed_from_u64(128);
    let studio = Uuid::new_v4();
    let (event_512, event_128) = (Uuid::new_v4(), Uuid::new_v4());
    let (centres_512, faces_512) = event_faces(&mut rng, 512, 4, 40);
    let (centres_128, faces_128) = event_faces(&mut rng, 128, 5, 400);
    write(&mut a, studio, event_512, "fixture@1", &faces_512).await;
    write(&mut b, studio, event_128, "mini128@1", &faces_128).await;

    // Each event is searched at its own dimension, exactly as brute force.
    let threshold = 0.4; // the possible-match tier, every hit's floor
    for centre in &centres_512 {
        let got = search_event(&mut a, studio, event_512, "fixture@1", centre)
            .await
            .unwrap();
        assert_eq!(photos(&got), expected(&faces_512, centre, threshold));
        assert!(!got.hits.is_empty());
    }
    let first = search_event(&mut b, studio, event_128, "mini128@1", &centres_128[0])
        .await
        .unwrap();
    assert_eq!(first.strategy, "exact");
    for centre in &centres_128 {
        let got = search_event(&mut b, studio, event_128, "mini128@1", centre)
            .await
            .unwrap();
        assert_eq!(photos(&got), expected(&faces_128, centre, threshold));
        assert_eq!(
            got.hits.len(),
            80,
            "each of 5 people is in 80 of 400 photos"
        );
    }

    // The 128-d event outgrew exact_max_faces: its HNSW index is built on
    // halfvec(128) and gives the same answers.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let got = search_event(&mut b, studio, event_128, "mini128@1", &centres_128[0])
            .await
            .unwrap();
        if got.strategy == "hnsw" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no HNSW index on the 128-d event\n{}",
            b.service.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for centre in &centres_128 {
        let got = search_event(&mut b, studio, event_128, "mini128@1", centre)
            .await
            .unwrap();
        assert_eq!(got.strategy, "hnsw");
        assert_eq!(photos(&got), expected(&faces_128, centre, threshold));
    }

    // Never mixed: another pack's query, either way round, and a query or
    // write of the right name but the wrong dimension.
    let err = search_event(&mut b, studio, event_512, "mini128@1", &centres_128[0])
        .await
        .unwrap_err();
    assert_eq!(code_of(&err), "MODEL_MISMATCH", "{err:?}");
    let err = search_event(&mut a, studio, event_128, "fixture@1", &centres_512[0])
        .await
        .unwrap_err();
    assert_eq!(code_of(&err), "MODEL_MISMATCH", "{err:?}");
    let err = search_event(&mut c, studio, event_128, "mini128@1", &centres_512[0])
        .await
        .unwrap_err();
    assert_eq!(code_of(&err), "MODEL_MISMATCH", "{err:?}");
    assert!(err.message().contains("128-dimensional"), "{err:?}");
    let err = c
        .client
        .upsert_photo_faces(pb::UpsertPhotoFacesRequest {
            studio_id: studio.to_string(),
            event_id: event_128.to_string(),
            photo_id: Uuid::new_v4().to_string(),
            model: "mini128@1".into(),
            faces: vec![face(0, centres_512[0].clone())],
        })
        .await
        .unwrap_err();
    assert_eq!(code_of(&err), "MODEL_MISMATCH", "{err:?}");
    // A 128-d query sent to the 512-d service is refused by its own check.
    let err = search_event(&mut a, studio, event_512, "fixture@1", &centres_128[0])
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");

    // Nothing above was stored.
    let stats = b
        .client
        .get_event_stats(pb::GetEventStatsRequest {
            studio_id: studio.to_string(),
            event_id: event_128.to_string(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.faces, 400);
    assert_eq!(stats.model, "mini128@1");
}
