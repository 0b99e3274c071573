//! The face store through the real `facepass-search` binary, over gRPC,
//! against PostgreSQL + pgvector. Every search is checked against a
//! brute-force reference computed here in f64 from the generated
//! embeddings, independent of the store's code.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use facepass_integration_tests::faces::{combine, cosine, FaceGen};
use facepass_integration_tests::{fixture_models, tempfile_dir, Service, TestDatabase};
use facepass_proto::search::v1 as pb;
use facepass_proto::types::v1 as types;
use pb::search_service_client::SearchServiceClient;
use tonic::transport::Channel;
use tonic::{Code, Status};
use uuid::Uuid;

type Client = facepass_integration_tests::search::Client;

struct Search {
    _service: Service,
    client: Client,
    model: String,
    url: String,
}

/// Starts `facepass-search` on `db` with the fixture model pack and the
/// given store settings.
async fn start(
    db: &TestDatabase,
    dir: &tempfile_dir::Dir,
    name: &'static str,
    settings: &[(&str, &str)],
) -> Search {
    let mut env: Vec<(String, String)> = vec![(
        "FACEPASS_MODEL__PACK".into(),
        fixture_models().unwrap().display().to_string(),
    )];
    for (k, v) in settings {
        env.push((format!("FACEPASS_STORE__{k}"), v.to_string()));
    }
    let started = facepass_integration_tests::search::start(db, dir, name, env)
        .await
        .expect("start facepass-search");
    Search {
        _service: started.service,
        client: started.client,
        // The fixture pack's id (tools/fixtures/make_models.py).
        model: "fixture@1".into(),
        url: started.url,
    }
}

/// One stored face, as the test knows it.
#[derive(Clone)]
struct Stored {
    photo: Uuid,
    index: u32,
    embedding: Vec<f32>,
    bbox: Vec<f32>,
}

/// An event's faces, with the identities they belong to.
struct Event {
    studio: Uuid,
    id: Uuid,
    faces: Vec<Stored>,
    centres: Vec<Vec<f32>>,
}

/// `photos` photos with 1-5 faces each, drawn from `identities` people
/// (a few of them in many photos, like the couple at a wedding).
fn make_event(gen: &mut FaceGen, photos: usize, identities: usize) -> Event {
    let centres: Vec<Vec<f32>> = (0..identities).map(|_| gen.centre()).collect();
    let mut faces = Vec::new();
    for _ in 0..photos {
        let photo = Uuid::new_v4();
        let n = gen.range(1, 5).min(identities);
        let mut people = BTreeSet::new();
        while people.len() < n {
            // Identities 0-2 appear in a third of the photos.
            let who = if gen.below(3) == 0 {
                gen.below(3)
            } else {
                gen.below(identities)
            };
            people.insert(who);
        }
        for (index, who) in people.into_iter().enumerate() {
            faces.push(Stored {
                photo,
                index: index as u32,
                embedding: gen.face_of(&centres[who]),
                bbox: gen.bbox(),
            });
        }
    }
    Event {
        studio: Uuid::new_v4(),
        id: Uuid::new_v4(),
        faces,
        centres,
    }
}

fn pb_face(f: &Stored) -> pb::Face {
    pb::Face {
        face_index: f.index,
        embedding: f.embedding.clone(),
        face: Some(types::Face {
            r#box: Some(types::FaceBox {
                x1: f.bbox[0],
                y1: f.bbox[1],
                x2: f.bbox[2],
                y2: f.bbox[3],
            }),
            landmarks: vec![types::Point { x: 0.0, y: 0.0 }; 5],
            score: 0.9,
        }),
        quality: 0.8,
    }
}

fn by_photo(faces: &[Stored]) -> BTreeMap<Uuid, Vec<Stored>> {
    let mut photos: BTreeMap<Uuid, Vec<Stored>> = BTreeMap::new();
    for f in faces {
        photos.entry(f.photo).or_default().push(f.clone());
    }
    photos
}

/// Loads the event through BulkUpsertPhotoFaces, `chunk` photos a call.
async fn load(search: &mut Search, event: &Event, chunk: usize) {
    let photos: Vec<pb::PhotoFaces> = by_photo(&event.faces)
        .into_iter()
        .map(|(photo, faces)| pb::PhotoFaces {
            photo_id: photo.to_string(),
            faces: faces.iter().map(pb_face).collect(),
        })
        .collect();
    for part in photos.chunks(chunk) {
        search
            .client
            .bulk_upsert_photo_faces(pb::BulkUpsertPhotoFacesRequest {
                studio_id: event.studio.to_string(),
                event_id: event.id.to_string(),
                model: search.model.clone(),
                photos: part.to_vec(),
            })
            .await
            .unwrap();
    }
}

/// Expected photos of a query: (photo, score, the faces making it).
/// Several people: each on a different face, the score the weakest
/// person's similarity, maximised over assignments.
fn reference(faces: &[Stored], people: &[Vec<f32>], floor: f64) -> Vec<(Uuid, f64)> {
    let mut out = Vec::new();
    for (photo, faces) in by_photo(faces) {
        let sims: Vec<Vec<f64>> = faces
            .iter()
            .map(|f| people.iter().map(|q| cosine(&f.embedding, q)).collect())
            .collect();
        let best = best_assignment(&sims, 0, &mut vec![false; faces.len()]);
        if let Some(score) = best.filter(|s| *s >= floor) {
            out.push((photo, score));
        }
    }
    out
}

fn best_assignment(sims: &[Vec<f64>], person: usize, used: &mut Vec<bool>) -> Option<f64> {
    let people = sims.first().map_or(0, Vec::len);
    if person == people {
        return Some(f64::INFINITY);
    }
    let mut best: Option<f64> = None;
    for face in 0..sims.len() {
        if used[face] {
            continue;
        }
        used[face] = true;
        if let Some(rest) = best_assignment(sims, person + 1, used) {
            let score = rest.min(sims[face][person]);
            best = Some(best.map_or(score, |b: f64| b.max(score)));
        }
        used[face] = false;
    }
    best
}

/// Every page of a search, concatenated, with the first response.
async fn search_all(
    search: &mut Search,
    event: &Event,
    people: Vec<Vec<Vec<f32>>>,
    page_size: u32,
) -> (Vec<pb::PhotoHit>, pb::SearchEventResponse) {
    let request = |token: String| pb::SearchEventRequest {
        studio_id: event.studio.to_string(),
        event_id: event.id.to_string(),
        model: search.model.clone(),
        people: people
            .iter()
            .map(|selfies| pb::Person {
                faces: vec![],
                selfies: selfies
                    .iter()
                    .map(|v| types::Embedding { values: v.clone() })
                    .collect(),
            })
            .collect(),
        page_size,
        page_token: token,
        matches_only: false,
    };
    let first = search
        .client
        .search_event(request(String::new()))
        .await
        .unwrap()
        .into_inner();
    let mut hits = first.hits.clone();
    let mut token = first.next_page_token.clone();
    while !token.is_empty() {
        let page = search
            .client
            .search_event(request(token))
            .await
            .unwrap()
            .into_inner();
        assert!(page.hits.len() <= page_size as usize);
        hits.extend(page.hits);
        token = page.next_page_token;
    }
    (hits, first)
}

/// The store's answer equals the reference: the same photos (up to faces
/// within 1e-5 of the floor, where float32 and f64 may disagree), the same
/// scores, best first, with the right tiers.
fn assert_exact(hits: &[pb::PhotoHit], want: &[(Uuid, f64)], floor: f64, match_t: f64, what: &str) {
    let got: BTreeMap<Uuid, &pb::PhotoHit> = hits
        .iter()
        .map(|h| (Uuid::parse_str(&h.photo_id).unwrap(), h))
        .collect();
    assert_eq!(got.len(), hits.len(), "{what}: a photo returned twice");
    for (photo, score) in want {
        match got.get(photo) {
            Some(hit) => {
                assert!(
                    (hit.similarity as f64 - score).abs() < 1e-4,
                    "{what}: photo {photo} scored {} instead of {score}",
                    hit.similarity
                );
                if (score - match_t).abs() > 1e-5 {
                    let tier = if *score >= match_t {
                        pb::MatchTier::Match
                    } else {
                        pb::MatchTier::Possible
                    };
                    assert_eq!(hit.tier, tier as i32, "{what}: tier of {photo} ({score})");
                }
            }
            None => assert!(
                *score < floor + 1e-5,
                "{what}: photo {photo} (score {score}) is missing"
            ),
        }
    }
    let wanted: BTreeSet<Uuid> = want.iter().map(|w| w.0).collect();
    for (photo, hit) in &got {
        assert!(
            wanted.contains(photo) || (hit.similarity as f64) < floor + 1e-5,
            "{what}: photo {photo} returned but not expected"
        );
    }
    for pair in hits.windows(2) {
        assert!(
            pair[0].similarity >= pair[1].similarity,
            "{what}: hits are not ranked best first"
        );
    }
}

async fn wait_for_strategy(search: &mut Search, event: &Event, strategy: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let stats = search
            .client
            .get_event_stats(pb::GetEventStatsRequest {
                studio_id: event.studio.to_string(),
                event_id: event.id.to_string(),
            })
            .await
            .unwrap()
            .into_inner();
        if stats.strategy == strategy {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "event still searched by {:?}, not {strategy:?}",
            stats.strategy
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searches_equal_brute_force_in_postgres_and_in_memory() {
    let db = TestDatabase::create("fp_store_exact").await.unwrap();
    let dir = tempfile_dir::Dir::new("facepass-store").unwrap();
    let mut sql = start(&db, &dir, "search-sql", &[("CACHE_MB", "0")]).await;
    let mut gen = FaceGen::new(41);
    let event = make_event(&mut gen, 600, 60);
    load(&mut sql, &event, 150).await;

    // Queries: a fresh selfie of several people; three selfies of one
    // person combined; two people together ("me and them").
    let selfie = |gen: &mut FaceGen, who: usize| gen.face_of(&event.centres[who]);
    let mut queries: Vec<(String, Vec<Vec<Vec<f32>>>)> = Vec::new();
    for who in [0usize, 1, 7, 33] {
        queries.push((format!("person {who}"), vec![vec![selfie(&mut gen, who)]]));
    }
    queries.push((
        "person 2, three selfies".into(),
        vec![(0..3).map(|_| selfie(&mut gen, 2)).collect()],
    ));
    queries.push((
        "persons 0 and 1 together".into(),
        vec![vec![selfie(&mut gen, 0)], vec![selfie(&mut gen, 1)]],
    ));

    let mut checked = 0;
    for (what, people) in &queries {
        let (hits, first) = search_all(&mut sql, &event, people.clone(), 7).await;
        assert_eq!(first.strategy, "exact", "{what}");
        assert_eq!(
            (first.match_threshold, first.possible_threshold),
            (0.5, 0.4)
        );
        assert_eq!(
            first.total_photos as usize,
            hits.len(),
            "{what}: total over pages"
        );
        let combined: Vec<Vec<f32>> = people.iter().map(|s| combine(s)).collect();
        let want = reference(&event.faces, &combined, 0.4);
        assert!(!want.is_empty(), "{what}: the reference finds photos");
        assert_exact(&hits, &want, 0.4, 0.5, what);
        if people.len() == 2 {
            for hit in &hits {
                assert_eq!(hit.faces.len(), 2, "one face per person");
                assert_ne!(hit.faces[0].face_index, hit.faces[1].face_index);
            }
        }
        checked += want.len();
    }
    assert!(checked > 300, "the queries cover many photos ({checked})");

    // The same store searched from memory (a second instance with copies
    // on): first search in SQL, then the copy, with identical answers.
    let mut mem = start(&db, &dir, "search-mem", &[("CACHE_MIN_FACES", "100")]).await;
    let (_, first) = search_all(&mut mem, &event, queries[0].1.clone(), 100).await;
    assert_eq!(first.strategy, "exact");
    wait_for_strategy(&mut mem, &event, "memory", Duration::from_secs(30)).await;
    for (what, people) in &queries {
        let (hits, first) = search_all(&mut mem, &event, people.clone(), 50).await;
        assert_eq!(first.strategy, "memory", "{what}");
        let combined: Vec<Vec<f32>> = people.iter().map(|s| combine(s)).collect();
        assert_exact(
            &hits,
            &reference(&event.faces, &combined, 0.4),
            0.4,
            0.5,
            what,
        );
    }

    // "Forget me" through the SQL instance: the memory instance's copy is
    // stale at once and never shows a forgotten face.
    let forget_query = selfie(&mut gen, 1);
    let receipt = sql
        .client
        .forget_faces(pb::ForgetFacesRequest {
            studio_id: event.studio.to_string(),
            event_id: event.id.to_string(),
            model: sql.model.clone(),
            embedding: Some(types::Embedding {
                values: forget_query.clone(),
            }),
            min_similarity: 0.0, // the pack's match threshold
            suppress: false,
        })
        .await
        .unwrap()
        .into_inner()
        .faces;
    let want: BTreeSet<(Uuid, u32)> = event
        .faces
        .iter()
        .filter(|f| cosine(&f.embedding, &forget_query) >= 0.5 + 1e-5)
        .map(|f| (f.photo, f.index))
        .collect();
    let got: BTreeSet<(Uuid, u32)> = receipt
        .iter()
        .map(|f| (Uuid::parse_str(&f.photo_id).unwrap(), f.face_index))
        .collect();
    assert!(
        want.len() > 20,
        "identity 1 has many faces ({})",
        want.len()
    );
    assert!(got.is_superset(&want), "receipt lists every matching face");
    assert!(receipt.iter().all(|f| f.similarity >= 0.5));
    let remaining: Vec<Stored> = event
        .faces
        .iter()
        .filter(|f| !got.contains(&(f.photo, f.index)))
        .cloned()
        .collect();
    let (hits, first) = search_all(&mut mem, &event, vec![vec![forget_query.clone()]], 100).await;
    assert_eq!(first.strategy, "exact", "a stale copy is not used");
    assert_exact(
        &hits,
        &reference(&remaining, std::slice::from_ref(&forget_query), 0.4),
        0.4,
        0.5,
        "after forget",
    );
    for hit in &hits {
        assert!(hit.similarity < 0.5, "a forgotten face was found again");
    }
    wait_for_strategy(&mut mem, &event, "memory", Duration::from_secs(30)).await;
    let (hits, _) = search_all(&mut mem, &event, vec![vec![forget_query.clone()]], 100).await;
    assert_exact(
        &hits,
        &reference(&remaining, &[forget_query], 0.4),
        0.4,
        0.5,
        "reloaded copy",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_events_get_their_own_hnsw_index_and_keep_recall() {
    let db = TestDatabase::create("fp_store_hnsw").await.unwrap();
    let dir = tempfile_dir::Dir::new("facepass-store").unwrap();
    let mut search = start(
        &db,
        &dir,
        "search-hnsw",
        &[
            ("CACHE_MB", "0"),
            ("EXACT_MAX_FACES", "1500"),
            ("INDEX_CHECK_SECS", "1"),
        ],
    )
    .await;
    let mut gen = FaceGen::new(7);
    let event = make_event(&mut gen, 1200, 150);
    assert!(event.faces.len() > 3000);
    // A small event next to it stays exact.
    let small = Event {
        studio: event.studio,
        ..make_event(&mut gen, 50, 10)
    };
    load(&mut search, &event, 400).await;
    load(&mut search, &small, 400).await;
    wait_for_strategy(&mut search, &event, "hnsw", Duration::from_secs(120)).await;

    let (mut found, mut expected) = (0usize, 0usize);
    for who in 0..12 {
        let q = gen.face_of(&event.centres[who]);
        let (hits, first) = search_all(&mut search, &event, vec![vec![q.clone()]], 1000).await;
        assert_eq!(first.strategy, "hnsw");
        let want = reference(&event.faces, &[q], 0.4);
        let got: BTreeSet<String> = hits.iter().map(|h| h.photo_id.clone()).collect();
        expected += want.len();
        found += want
            .iter()
            .filter(|w| got.contains(&w.0.to_string()))
            .count();
        // Nothing below the floor, and scores are float32-exact.
        let scores: BTreeMap<Uuid, f64> = want.into_iter().collect();
        for hit in &hits {
            let id = Uuid::parse_str(&hit.photo_id).unwrap();
            if let Some(s) = scores.get(&id) {
                assert!((hit.similarity as f64 - s).abs() < 1e-4);
            } else {
                assert!((hit.similarity as f64) < 0.4 + 1e-5);
            }
        }
    }
    let recall = found as f64 / expected as f64;
    assert!(expected > 500, "the queries cover many photos ({expected})");
    eprintln!("hnsw recall {recall} ({found}/{expected})");
    assert!(recall >= 0.99, "recall {recall} ({found}/{expected})");

    // A stranger: the iterative scan stops at the threshold with nothing.
    let (hits, _) = search_all(&mut search, &event, vec![vec![gen.centre()]], 100).await;
    assert!(hits.is_empty());
    let (_, first) = search_all(
        &mut search,
        &small,
        vec![vec![gen.face_of(&small.centres[0])]],
        100,
    )
    .await;
    assert_eq!(first.strategy, "exact", "the small event is not indexed");
}

async fn stats(search: &mut Search, event: &Event) -> Result<pb::GetEventStatsResponse, Status> {
    search
        .client
        .get_event_stats(pb::GetEventStatsRequest {
            studio_id: event.studio.to_string(),
            event_id: event.id.to_string(),
        })
        .await
        .map(|r| r.into_inner())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_idempotent_and_deletions_complete() {
    let db = TestDatabase::create("fp_store_writes").await.unwrap();
    let dir = tempfile_dir::Dir::new("facepass-store").unwrap();
    let mut search = start(&db, &dir, "search-writes", &[("CACHE_MIN_FACES", "1")]).await;
    let mut gen = FaceGen::new(99);
    let event = make_event(&mut gen, 40, 8);
    let photos = by_photo(&event.faces);
    load(&mut search, &event, 1000).await;
    let total = event.faces.len() as u64;
    let s = stats(&mut search, &event).await.unwrap();
    assert_eq!(
        (s.faces, s.photos, s.photos_indexed, s.photos_failed),
        (total, 40, 40, 0)
    );
    assert_eq!(s.photos_with_faces, 40);
    assert_eq!(s.model, "fixture@1");

    // A redelivered upsert changes nothing.
    let (photo, faces) = photos.iter().next().unwrap();
    let upsert = pb::UpsertPhotoFacesRequest {
        studio_id: event.studio.to_string(),
        event_id: event.id.to_string(),
        photo_id: photo.to_string(),
        model: search.model.clone(),
        faces: faces.iter().map(pb_face).collect(),
    };
    for _ in 0..2 {
        let r = search
            .client
            .upsert_photo_faces(upsert.clone())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (r.faces_stored, r.faces_replaced),
            (faces.len() as u32, faces.len() as u32)
        );
    }
    assert_eq!(stats(&mut search, &event).await.unwrap().faces, total);

    // Delete one face; it is never found again (the in-memory copy too).
    let victim = &faces[0];
    let warm = || vec![vec![victim.embedding.clone()]];
    search_all(&mut search, &event, warm(), 10).await;
    wait_for_strategy(&mut search, &event, "memory", Duration::from_secs(30)).await;
    let r = search
        .client
        .delete_faces(pb::DeleteFacesRequest {
            studio_id: event.studio.to_string(),
            event_id: event.id.to_string(),
            faces: vec![
                pb::FaceRef {
                    photo_id: photo.to_string(),
                    face_index: victim.index,
                },
                pb::FaceRef {
                    photo_id: photo.to_string(),
                    face_index: 99,
                },
            ],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.faces_deleted, 1, "only the face that existed");
    let (hits, _) = search_all(&mut search, &event, warm(), 10).await;
    assert!(
        hits.iter()
            .all(|h| h.photo_id != photo.to_string() || h.face_index != victim.index),
        "a deleted face was found"
    );
    assert_eq!(stats(&mut search, &event).await.unwrap().faces, total - 1);

    // A photo that fails (after a first attempt stored faces) is counted as
    // failed and keeps no faces.
    let (photo2, faces2) = photos.iter().nth(1).unwrap();
    let r = search
        .client
        .mark_photo_failed(pb::MarkPhotoFailedRequest {
            studio_id: event.studio.to_string(),
            event_id: event.id.to_string(),
            photo_id: photo2.to_string(),
            reason: "CORRUPT_IMAGE: not a JPEG".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.faces_deleted, faces2.len() as u64);
    let s = stats(&mut search, &event).await.unwrap();
    let left = total - 1 - faces2.len() as u64;
    assert_eq!(
        (s.faces, s.photos, s.photos_indexed, s.photos_failed),
        (left, 40, 39, 1)
    );

    // Deleting a photo removes its faces and its record.
    let (photo3, faces3) = photos.iter().nth(2).unwrap();
    let r = search
        .client
        .delete_photo_faces(pb::DeletePhotoFacesRequest {
            studio_id: event.studio.to_string(),
            photo_id: photo3.to_string(),
            event_id: String::new(), // found from the photo records
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.faces_deleted, faces3.len() as u64);
    let s = stats(&mut search, &event).await.unwrap();
    assert_eq!((s.faces, s.photos), (left - faces3.len() as u64, 39));

    // Another studio sees nothing of the event and can delete nothing.
    let other = Event {
        studio: Uuid::new_v4(),
        id: event.id,
        faces: vec![],
        centres: vec![],
    };
    assert_eq!(
        stats(&mut search, &other).await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(delete_event(&mut search, &other).await, 0);
    let partitions = facepass_db::pool(&db.url, 1).unwrap();
    let partition_sql = format!(
        "SELECT 1 FROM pg_class WHERE relname = 'ev_{}'",
        event.id.simple()
    );
    let partition_rows = || facepass_db::execute(&partitions, &partition_sql);
    assert_eq!(
        partition_rows().await.unwrap(),
        1,
        "the event has its partition"
    );

    // Deleting the event drops everything; doing it again is harmless.
    assert_eq!(
        delete_event(&mut search, &event).await,
        left - faces3.len() as u64
    );
    assert_eq!(
        stats(&mut search, &event).await.unwrap_err().code(),
        Code::NotFound
    );
    let err = search
        .client
        .search_event(pb::SearchEventRequest {
            studio_id: event.studio.to_string(),
            event_id: event.id.to_string(),
            model: search.model.clone(),
            people: vec![pb::Person {
                faces: vec![],
                selfies: vec![types::Embedding {
                    values: victim.embedding.clone(),
                }],
            }],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(delete_event(&mut search, &event).await, 0);
    assert_eq!(
        partition_rows().await.unwrap(),
        0,
        "the event's partition is dropped"
    );
}

/// DeleteEventFaces as `event.studio`: the number of faces deleted.
async fn delete_event(search: &mut Search, event: &Event) -> u64 {
    search
        .client
        .delete_event_faces(pb::DeleteEventFacesRequest {
            studio_id: event.studio.to_string(),
            event_id: event.id.to_string(),
        })
        .await
        .unwrap()
        .into_inner()
        .faces_deleted
}

fn code_of(status: &Status) -> String {
    status
        .metadata()
        .get("x-facepass-error-code")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors_with_stable_codes() {
    let db = TestDatabase::create("fp_store_errors").await.unwrap();
    let dir = tempfile_dir::Dir::new("facepass-store").unwrap();
    let mut search = start(&db, &dir, "search-errors", &[]).await;
    let mut gen = FaceGen::new(5);
    let event = make_event(&mut gen, 5, 3);
    load(&mut search, &event, 10).await;
    let q = gen.face_of(&event.centres[0]);
    let person = |v: &Vec<f32>| pb::Person {
        faces: vec![],
        selfies: vec![types::Embedding { values: v.clone() }],
    };
    let base = pb::SearchEventRequest {
        studio_id: event.studio.to_string(),
        event_id: event.id.to_string(),
        model: search.model.clone(),
        people: vec![person(&q)],
        ..Default::default()
    };
    let cases: Vec<(&str, pb::SearchEventRequest, Code, &str, &str)> = vec![
        (
            "unknown event",
            pb::SearchEventRequest {
                event_id: Uuid::new_v4().to_string(),
                ..base.clone()
            },
            Code::NotFound,
            "NOT_FOUND",
            "no faces",
        ),
        (
            "another studio",
            pb::SearchEventRequest {
                studio_id: Uuid::new_v4().to_string(),
                ..base.clone()
            },
            Code::NotFound,
            "NOT_FOUND",
            "no faces",
        ),
        (
            "bad event id",
            pb::SearchEventRequest {
                event_id: "x".into(),
                ..base.clone()
            },
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
            "event_id",
        ),
        (
            "wrong dimension",
            pb::SearchEventRequest {
                people: vec![person(&q[..128].to_vec())],
                ..base.clone()
            },
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
            "128 dimensions",
        ),
        (
            "not normalised",
            pb::SearchEventRequest {
                people: vec![person(&q.iter().map(|v| v * 3.0).collect())],
                ..base.clone()
            },
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
            "normalised",
        ),
        (
            "other model pack",
            pb::SearchEventRequest {
                model: "buffalo_l@1".into(),
                ..base.clone()
            },
            Code::FailedPrecondition,
            "MODEL_MISMATCH",
            "fixture@1",
        ),
        (
            "no model",
            pb::SearchEventRequest {
                model: String::new(),
                ..base.clone()
            },
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
            "model",
        ),
        (
            "nobody",
            pb::SearchEventRequest {
                people: vec![],
                ..base.clone()
            },
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
            "at least one person",
        ),
        (
            "five people",
            pb::SearchEventRequest {
                people: vec![person(&q); 5],
                ..base.clone()
            },
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
            "limit of 4",
        ),
        (
            "six selfies",
            pb::SearchEventRequest {
                people: vec![pb::Person {
                    faces: vec![],
                    selfies: vec![types::Embedding { values: q.clone() }; 6],
                }],
                ..base.clone()
            },
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
            "selfies",
        ),
        (
            "huge page",
            pb::SearchEventRequest {
                page_size: 5000,
                ..base.clone()
            },
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
            "page_size",
        ),
        (
            "forged page token",
            pb::SearchEventRequest {
                page_token: "00ff".into(),
                ..base.clone()
            },
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
            "page_token",
        ),
    ];
    for (what, request, code, stable, words) in cases {
        let err = search.client.search_event(request).await.unwrap_err();
        assert_eq!(err.code(), code, "{what}: {err:?}");
        assert_eq!(code_of(&err), stable, "{what}");
        assert!(err.message().contains(words), "{what}: {:?}", err.message());
    }

    // A page token only continues the query it came from.
    let mut paged = base.clone();
    paged.page_size = 1;
    let first = search
        .client
        .search_event(paged.clone())
        .await
        .unwrap()
        .into_inner();
    assert!(!first.next_page_token.is_empty());
    let other = gen.face_of(&event.centres[1]);
    let err = search
        .client
        .search_event(pb::SearchEventRequest {
            people: vec![person(&other)],
            page_token: first.next_page_token,
            ..paged
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    // Writes: the other pack, too many photos, a duplicated face.
    let face = pb_face(&event.faces[0]);
    let write = pb::UpsertPhotoFacesRequest {
        studio_id: event.studio.to_string(),
        event_id: event.id.to_string(),
        photo_id: Uuid::new_v4().to_string(),
        model: search.model.clone(),
        faces: vec![face.clone()],
    };
    let err = search
        .client
        .upsert_photo_faces(pb::UpsertPhotoFacesRequest {
            model: "buffalo_l@1".into(),
            ..write.clone()
        })
        .await
        .unwrap_err();
    assert_eq!(code_of(&err), "MODEL_MISMATCH");
    let err = search
        .client
        .upsert_photo_faces(pb::UpsertPhotoFacesRequest {
            faces: vec![face.clone(), face.clone()],
            ..write.clone()
        })
        .await
        .unwrap_err();
    assert!(err.message().contains("appears twice"), "{err:?}");
    let mut nan = face.clone();
    nan.face.as_mut().unwrap().score = f32::NAN;
    let err = search
        .client
        .upsert_photo_faces(pb::UpsertPhotoFacesRequest {
            faces: vec![nan],
            ..write.clone()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = search
        .client
        .bulk_upsert_photo_faces(pb::BulkUpsertPhotoFacesRequest {
            studio_id: event.studio.to_string(),
            event_id: event.id.to_string(),
            model: search.model.clone(),
            photos: (0..1001)
                .map(|_| pb::PhotoFaces {
                    photo_id: Uuid::new_v4().to_string(),
                    faces: vec![],
                })
                .collect(),
        })
        .await
        .unwrap_err();
    assert!(err.message().contains("1000"), "{err:?}");
    // Nothing above was stored.
    assert_eq!(
        stats(&mut search, &event).await.unwrap().faces,
        event.faces.len() as u64
    );

    // No token, no service.
    let channel = Channel::from_shared(search.url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let err = SearchServiceClient::new(channel)
        .get_event_stats(pb::GetEventStatsRequest {
            studio_id: event.studio.to_string(),
            event_id: event.id.to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
}
