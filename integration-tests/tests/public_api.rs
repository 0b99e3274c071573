//! The public API as an integrator meets it (issue 12), on the five real
//! binaries: idempotent writes (also when duplicates race), photo metadata,
//! keyset pagination that neither repeats nor skips while rows come and go,
//! one timestamp per resource, who owns a stored object, what a guest may
//! download, and no empty folders left behind.

use std::collections::BTreeSet;
use std::time::Duration;

use facepass_integration_tests::gateway::{
    client, error_code, files_under, upload, wait_indexed, Client,
};
use facepass_integration_tests::Cluster;
use facepass_proto::v1 as pb;
use facepass_synth::{event_photo, selfie, with_capture_time};
use tonic::Code;

fn existing_id(status: &tonic::Status) -> String {
    let details = tonic_types::StatusExt::get_error_details(status);
    details
        .error_info()
        .and_then(|i| i.metadata.get("existing_id").cloned())
        .unwrap_or_default()
}

async fn list_all(api: &mut Client, event_id: &str) -> Vec<pb::Photo> {
    api.list_photos(pb::ListPhotosRequest {
        event_id: event_id.into(),
        page_size: 1000,
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .photos
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_public_api_as_an_integrator_meets_it() {
    let cluster = Cluster::start().await.expect("cluster");
    let (studio_id, key) = cluster.create_studio("Studio").unwrap();
    let mut api = client(&cluster.gateway_grpc, Some(&key)).await.unwrap();

    // --- CreateEvent: retries return the event, races create one ---------
    let first = api
        .create_event(pb::CreateEventRequest {
            retain_until: None,
            name: "Wedding".into(),
            external_id: "px-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(first.created);
    let event = first.event.unwrap();
    let again = api
        .create_event(pb::CreateEventRequest {
            retain_until: None,
            name: "Wedding".into(),
            external_id: "px-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!again.created);
    let again = again.event.unwrap();
    assert_eq!(again.id, event.id);
    // One resource reads the same however it is read: created_at included.
    assert_eq!(again.created_at, event.created_at);
    let got = api
        .get_event(pb::GetEventRequest {
            event_id: event.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .event
        .unwrap();
    assert_eq!(got.created_at, event.created_at);
    assert_eq!(event.created_at.as_ref().unwrap().nanos % 1000, 0);

    let err = api
        .create_event(pb::CreateEventRequest {
            retain_until: None,
            name: "Another name".into(),
            external_id: "px-1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    assert_eq!(error_code(&err), "ALREADY_EXISTS");
    assert_eq!(existing_id(&err), event.id, "{err:?}");

    let racing = (0..8).map(|_| {
        let url = cluster.gateway_grpc.clone();
        let key = key.clone();
        tokio::spawn(async move {
            let mut api = client(&url, Some(&key)).await.unwrap();
            api.create_event(pb::CreateEventRequest {
                retain_until: None,
                name: "Raced".into(),
                external_id: "px-race".into(),
            })
            .await
            .unwrap()
            .into_inner()
        })
    });
    let raced: Vec<pb::CreateEventResponse> = futures_join(racing).await;
    let ids: BTreeSet<String> = raced.iter().map(|r| r.event.clone().unwrap().id).collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(raced.iter().filter(|r| r.created).count(), 1);

    // --- UploadPhoto: retries and races, one photo and one object --------
    let scene = event_photo(7, 1200, 900, &[1], (90, 150));
    let jpeg = with_capture_time(&scene.jpeg(90), "2026:06:20 15:30:00", Some("+03:00"));
    let racing = (0..6).map(|_| {
        let url = cluster.gateway_grpc.clone();
        let key = key.clone();
        let event_id = event.id.clone();
        let jpeg = jpeg.clone();
        tokio::spawn(async move {
            let mut api = client(&url, Some(&key)).await.unwrap();
            api.upload_photo(pb::UploadPhotoRequest {
                event_id,
                external_id: "img-1".into(),
                content: jpeg.into(),
                file_name: "IMG_0001.JPG".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
        })
    });
    let raced: Vec<pb::UploadPhotoResponse> = futures_join(racing).await;
    let ids: BTreeSet<String> = raced.iter().map(|r| r.photo.clone().unwrap().id).collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(raced.iter().filter(|r| r.created).count(), 1);
    let photo = raced[0].photo.clone().unwrap();
    let event_dir = cluster
        .storage_root
        .join(format!("studios/{studio_id}/events/{}", event.id));
    // The photos' own objects; previews (written once a photo is indexed,
    // which may already have happened) live under `previews/`.
    let originals = |dir: &std::path::Path| {
        files_under(dir)
            .into_iter()
            .filter(|p| !p.components().any(|c| c.as_os_str() == "previews"))
            .count()
    };
    assert_eq!(originals(&event_dir), 1, "one object for one photo");

    let err = api
        .upload_photo(pb::UploadPhotoRequest {
            event_id: event.id.clone(),
            external_id: "img-1".into(),
            content: scene.png().into(),
            file_name: "IMG_0001.PNG".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    assert_eq!(existing_id(&err), photo.id);
    assert_eq!(originals(&event_dir), 1, "a refused upload leaves nothing");

    // --- RegisterPhoto: who owns an object ------------------------------
    let err = api
        .register_photo(pb::RegisterPhotoRequest {
            event_id: event.id.clone(),
            external_id: "stolen".into(),
            object_key: format!(
                "studios/{studio_id}/events/{}/photos/{}",
                event.id, photo.id
            ),
            file_name: String::new(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    let own_key = format!("studios/{studio_id}/pixora/px-2.jpg");
    let own_path = cluster.storage_root.join(&own_key);
    std::fs::create_dir_all(own_path.parent().unwrap()).unwrap();
    std::fs::write(
        &own_path,
        event_photo(8, 1000, 800, &[2], (90, 150)).jpeg(90),
    )
    .unwrap();
    let register = |external_id: &str, object_key: &str| pb::RegisterPhotoRequest {
        event_id: event.id.clone(),
        external_id: external_id.into(),
        object_key: object_key.into(),
        file_name: "px-2.jpg".into(),
        ..Default::default()
    };
    let registered = api
        .register_photo(register("reg-1", &own_key))
        .await
        .unwrap()
        .into_inner();
    assert!(registered.created);
    let retried = api
        .register_photo(register("reg-1", &own_key))
        .await
        .unwrap()
        .into_inner();
    assert!(!retried.created);
    assert_eq!(
        retried.photo.unwrap().id,
        registered.photo.clone().unwrap().id
    );
    let err = api
        .register_photo(register("reg-1", &format!("studios/{studio_id}/other.jpg")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);

    // A file that is not an image: indexed as failed, never served to guests.
    let not_image = upload(
        &mut api,
        &event.id,
        "notes",
        b"<html><script>x</script>".to_vec(),
    )
    .await;
    assert_eq!(not_image.content_type, "");

    // --- metadata once indexed ------------------------------------------
    let indexed = wait_indexed(&mut api, &event.id, 3, Duration::from_secs(240))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    assert_eq!(indexed.photos_failed, 1);
    let got = api
        .get_photo(pb::GetPhotoRequest {
            photo_id: photo.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .photo
        .unwrap();
    assert_eq!(
        got.created_at, photo.created_at,
        "created_at reads the same"
    );
    assert_eq!(got.file_name, "IMG_0001.JPG");
    assert_eq!(got.content_type, "image/jpeg");
    assert_eq!((got.width, got.height), (1200, 900));
    assert_eq!(got.size_bytes, jpeg.len() as u64);
    // 15:30 at +03:00 is 12:30 UTC.
    let taken = got.captured_at.expect("captured_at from EXIF");
    assert_eq!(taken.seconds, 1_781_958_600, "{taken:?}");
    let reg = api
        .get_photo(pb::GetPhotoRequest {
            photo_id: registered.photo.unwrap().id,
        })
        .await
        .unwrap()
        .into_inner()
        .photo
        .unwrap();
    assert_eq!(reg.content_type, "image/jpeg", "known once indexed");
    assert_eq!((reg.width, reg.height), (1000, 800));
    assert!(reg.captured_at.is_none());
    let failed = api
        .list_photos(pb::ListPhotosRequest {
            event_id: event.id.clone(),
            status: pb::PhotoStatus::Failed as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .photos;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].id, not_image.id);
    assert_eq!(failed[0].failure_code, "IMAGE_UNDECODABLE");

    // --- guests: indexed photos only, never sniffed ---------------------
    let http = reqwest::Client::new();
    let base = format!(
        "{}/api/v1/guest/{}/photos",
        cluster.gateway_http, event.share_token
    );
    let ok = http
        .get(format!("{base}/{}", photo.id))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["x-content-type-options"], "nosniff");
    assert_eq!(ok.headers()["content-type"], "image/jpeg");
    let refused = http
        .get(format!("{base}/{}", not_image.id))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 404);
    assert_eq!(refused.headers()["x-content-type-options"], "nosniff");

    // --- keyset pagination while rows come and go ------------------------
    let listed = wait_for_pages(&mut api, &event.id, &studio_id).await;
    assert!(listed.repeats.is_empty(), "repeated: {:?}", listed.repeats);
    assert!(listed.skipped.is_empty(), "skipped: {:?}", listed.skipped);
    let err = api
        .list_photos(pb::ListPhotosRequest {
            event_id: event.id.clone(),
            page_token: "7".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    // Events list with the same cursor rules (newest first).
    for i in 0..5 {
        api.create_event(pb::CreateEventRequest {
            retain_until: None,
            name: format!("Event {i}"),
            external_id: String::new(),
        })
        .await
        .unwrap();
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = api
            .list_events(pb::ListEventsRequest {
                page_size: 2,
                page_token: token,
            })
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.events.iter().map(|e| e.id.clone()));
        if seen.len() == 2 {
            // Created between pages: newer than the cursor, so not in this pass.
            api.create_event(pb::CreateEventRequest {
                retain_until: None,
                name: "Late".into(),
                external_id: String::new(),
            })
            .await
            .unwrap();
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no event repeats");
    assert_eq!(seen.len(), 7, "2 + 5 events, the late one after the cursor");

    // --- REST: the same rules, 201 then 200, 409 naming the existing ------
    let events_url = format!("{}/api/v1/events", cluster.gateway_http);
    let post =
        |body: serde_json::Value| http.post(&events_url).bearer_auth(&key).json(&body).send();
    let created = post(serde_json::json!({"name": "Prom", "external_id": "px-rest"}))
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: serde_json::Value = created.json().await.unwrap();
    let repeated = post(serde_json::json!({"name": "Prom", "external_id": "px-rest"}))
        .await
        .unwrap();
    assert_eq!(repeated.status(), 200);
    let repeated: serde_json::Value = repeated.json().await.unwrap();
    assert_eq!(repeated["id"], created["id"]);
    assert_eq!(repeated["created_at"], created["created_at"]);
    let conflict = post(serde_json::json!({"name": "Ball", "external_id": "px-rest"}))
        .await
        .unwrap();
    assert_eq!(conflict.status(), 409);
    let conflict: serde_json::Value = conflict.json().await.unwrap();
    assert_eq!(conflict["error"]["code"], "ALREADY_EXISTS");
    assert_eq!(conflict["error"]["details"]["existing_id"], created["id"]);

    // --- DeleteEvent leaves no empty folders -----------------------------
    api.delete_event(pb::DeleteEventRequest {
        event_id: event.id.clone(),
    })
    .await
    .unwrap();
    assert!(
        !event_dir.exists(),
        "{} is still there",
        event_dir.display()
    );
    assert!(own_path.exists(), "the studio's own object stays");
}

/// What a paged walk over an event's photos saw.
struct Walk {
    repeats: Vec<String>,
    skipped: Vec<String>,
}

/// Uploads 9 more photos, then walks the event's photos 2 at a time while
/// uploading one and deleting an unseen one between pages.
async fn wait_for_pages(api: &mut Client, event_id: &str, _studio: &str) -> Walk {
    for i in 0..9 {
        let bytes = event_photo(100 + i, 640, 480, &[], (90, 150)).jpeg(80);
        upload(api, event_id, &format!("page-{i}"), bytes).await;
    }
    let before: Vec<String> = list_all(api, event_id)
        .await
        .into_iter()
        .map(|p| p.id)
        .collect();
    let mut seen: Vec<String> = Vec::new();
    let mut deleted: BTreeSet<String> = BTreeSet::new();
    let mut token = String::new();
    let mut round = 0;
    loop {
        let page = api
            .list_photos(pb::ListPhotosRequest {
                event_id: event_id.into(),
                page_size: 2,
                page_token: token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.photos.iter().map(|p| p.id.clone()));
        if round < 3 {
            // A newer photo (it comes later in this walk) and a deletion
            // of one the walk has not reached yet.
            let bytes = event_photo(200 + round, 640, 480, &[], (90, 150)).jpeg(80);
            upload(api, event_id, &format!("late-{round}"), bytes).await;
            let victim = before
                .iter()
                .rev()
                .find(|id| !seen.contains(id) && !deleted.contains(*id))
                .cloned()
                .unwrap();
            api.delete_photo(pb::DeletePhotoRequest {
                photo_id: victim.clone(),
            })
            .await
            .unwrap();
            deleted.insert(victim);
        }
        round += 1;
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let mut counted = BTreeSet::new();
    let repeats = seen
        .iter()
        .filter(|id| !counted.insert((*id).clone()))
        .cloned()
        .collect();
    let skipped = before
        .iter()
        .filter(|id| !deleted.contains(*id) && !seen.contains(id))
        .cloned()
        .collect();
    assert_eq!(
        seen.len(),
        before.len() - deleted.len() + 3,
        "the 3 late photos are seen too"
    );
    Walk { repeats, skipped }
}

async fn futures_join<T: Send + 'static>(
    handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut out = Vec::new();
    for h in handles.collect::<Vec<_>>() {
        out.push(h.await.unwrap());
    }
    out
}

/// The photo ids (by plan index) a search returned.
fn found(matches: &[pb::PhotoMatch], ids: &[String]) -> BTreeSet<usize> {
    matches
        .iter()
        .map(|m| {
            let id = &m.photo.as_ref().unwrap().id;
            ids.iter()
                .position(|x| x == id)
                .expect("a photo of the plan")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faces_and_searches_by_selfies_faces_and_people_together() {
    let cluster = Cluster::start().await.expect("cluster");
    let (_studio, key) = cluster.create_studio("Studio").unwrap();
    let (_other, other_key) = cluster.create_studio("Other studio").unwrap();
    let mut api = client(&cluster.gateway_grpc, Some(&key)).await.unwrap();
    let mut other = client(&cluster.gateway_grpc, Some(&other_key))
        .await
        .unwrap();
    let event = api
        .create_event(pb::CreateEventRequest {
            retain_until: None,
            name: "Faces".into(),
            external_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .event
        .unwrap();
    let plan: [&[u8]; 7] = [&[1], &[1, 2], &[2], &[1, 2, 3], &[3], &[], &[2, 3]];
    let mut ids = Vec::new();
    for (i, people) in plan.iter().enumerate() {
        let scene = event_photo(300 + i as u64, 1500, 1000, people, (110, 150));
        ids.push(
            upload(&mut api, &event.id, &format!("p{i}"), scene.jpeg(92))
                .await
                .id,
        );
    }
    wait_indexed(
        &mut api,
        &event.id,
        plan.len() as u64,
        Duration::from_secs(240),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    let with = |who: u8| -> BTreeSet<usize> {
        (0..plan.len())
            .filter(|i| plan[*i].contains(&who))
            .collect()
    };
    let selfie_of = |who: u8, seed: u64| selfie(seed, who).jpeg(90);

    // --- a photo's faces ---------------------------------------------------
    let faces = api
        .list_photo_faces(pb::ListPhotoFacesRequest {
            photo_id: ids[3].clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .faces;
    assert_eq!(faces.len(), 3);
    for (i, f) in faces.iter().enumerate() {
        assert_eq!(f.id, format!("{}.{i}", ids[3]));
        assert_eq!(f.photo_id, ids[3]);
        let face = f.face.as_ref().unwrap();
        let b = face.r#box.as_ref().unwrap();
        assert!(b.x2 - b.x1 > 80.0 && b.y2 - b.y1 > 80.0, "{b:?}");
        assert_eq!(face.landmarks.len(), 5);
        assert!(face.score > 0.5, "{}", face.score);
        assert!((0.0..=1.0).contains(&f.quality), "{}", f.quality);
    }
    let none = api
        .list_photo_faces(pb::ListPhotoFacesRequest {
            photo_id: ids[5].clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .faces;
    assert!(none.is_empty());
    // Another studio's photo does not exist for this one.
    let err = other
        .list_photo_faces(pb::ListPhotoFacesRequest {
            photo_id: ids[3].clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    // --- several selfies of one person ------------------------------------
    let search = |selfies: Vec<Vec<u8>>, together: Vec<pb::Companion>, tiers: pb::Tiers| {
        let mut selfies = selfies.into_iter();
        pb::SearchBySelfieRequest {
            consent: Some(pb::Consent {
                given: true,
                policy_version: "test-policy".into(),
            }),
            event_id: event.id.clone(),
            selfie: selfies.next().unwrap().into(),
            more_selfies: selfies.map(Into::into).collect(),
            together,
            tiers: tiers as i32,
            limit: 0,
        }
    };
    let one = api
        .search_by_selfie(search(
            vec![selfie_of(1, 11), selfie_of(1, 12), selfie_of(1, 13)],
            vec![],
            pb::Tiers::Unspecified,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found(&one.matches, &ids), with(1));
    for m in &one.matches {
        assert_eq!(m.faces.len(), 1);
        assert!(m.faces[0]
            .face_id
            .starts_with(&m.photo.as_ref().unwrap().id));
    }

    // --- "me and them" ------------------------------------------------------
    let companion = |who: u8, seed: u64| pb::Companion {
        selfies: vec![selfie_of(who, seed).into()],
        face_ids: vec![],
    };
    let two = api
        .search_by_selfie(search(
            vec![selfie_of(1, 21)],
            vec![companion(2, 22)],
            pb::Tiers::MatchOnly,
        ))
        .await
        .unwrap()
        .into_inner();
    let both: BTreeSet<usize> = with(1).intersection(&with(2)).copied().collect();
    assert_eq!(found(&two.matches, &ids), both);
    for m in &two.matches {
        assert_eq!(m.tier, pb::MatchTier::Match as i32);
        assert_eq!(m.faces.len(), 2, "one face per person");
        assert_ne!(m.faces[0].face_id, m.faces[1].face_id);
        let weakest = m.faces.iter().map(|f| f.similarity).fold(1.0, f32::min);
        assert!((m.similarity - weakest).abs() < 1e-5);
    }
    let three = api
        .search_by_selfie(search(
            vec![selfie_of(1, 31)],
            vec![companion(2, 32), companion(3, 33)],
            pb::Tiers::All,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found(&three.matches, &ids), BTreeSet::from([3]));
    let err = api
        .search_by_selfie(search(
            vec![selfie_of(1, 41)],
            vec![
                companion(2, 42),
                companion(3, 43),
                companion(1, 44),
                companion(2, 45),
            ],
            pb::Tiers::All,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "5 people");

    // --- "more photos of this person" ----------------------------------------
    let face_of_2 = api
        .list_photo_faces(pb::ListPhotoFacesRequest {
            photo_id: ids[2].clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .faces
        .remove(0)
        .id;
    let by_face = api
        .search_by_face(pb::SearchByFaceRequest {
            face_id: face_of_2.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found(&by_face.matches, &ids), with(2));
    // By a face, together with someone by a face too.
    let face_of_3 = api
        .list_photo_faces(pb::ListPhotoFacesRequest {
            photo_id: ids[4].clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .faces
        .remove(0)
        .id;
    let pair = api
        .search_by_face(pb::SearchByFaceRequest {
            face_id: face_of_2.clone(),
            together: vec![pb::Companion {
                selfies: vec![],
                face_ids: vec![face_of_3.clone()],
            }],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let both: BTreeSet<usize> = with(2).intersection(&with(3)).copied().collect();
    assert_eq!(found(&pair.matches, &ids), both);
    // A companion given by selfie brings a guest's biometric data: consent
    // is required there too, whatever the route.
    let by_selfie = |consent: Option<pb::Consent>| pb::SearchByFaceRequest {
        face_id: face_of_2.clone(),
        together: vec![companion(3, 36)],
        consent,
        ..Default::default()
    };
    let err = api.search_by_face(by_selfie(None)).await.unwrap_err();
    assert_eq!(error_code(&err), "CONSENT_REQUIRED");
    let with_consent = api
        .search_by_face(by_selfie(Some(pb::Consent {
            given: true,
            policy_version: "test-policy".into(),
        })))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found(&with_consent.matches, &ids), both);
    for bad in ["nope".to_string(), format!("{}.x", ids[2])] {
        let err = api
            .search_by_face(pb::SearchByFaceRequest {
                face_id: bad,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
    }
    let err = other
        .search_by_face(pb::SearchByFaceRequest {
            face_id: face_of_2.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "another studio's face");
    let err = api
        .search_by_face(pb::SearchByFaceRequest {
            face_id: format!("{}.9", ids[2]),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "a face the photo does not have");

    // --- REST: the same searches ------------------------------------------
    let http = reqwest::Client::new();
    let form = reqwest::multipart::Form::new()
        .part(
            "selfie",
            reqwest::multipart::Part::bytes(selfie_of(1, 51)).file_name("a.jpg"),
        )
        .part(
            "together.0",
            reqwest::multipart::Part::bytes(selfie_of(2, 52)).file_name("b.jpg"),
        );
    let rest: serde_json::Value = http
        .post(format!(
            "{}/api/v1/events/{}/search?tiers=match_only&consent=test-policy",
            cluster.gateway_http, event.id
        ))
        .bearer_auth(&key)
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rest_found: BTreeSet<usize> = rest["matches"]
        .as_array()
        .unwrap_or_else(|| panic!("{rest}"))
        .iter()
        .map(|m| {
            ids.iter()
                .position(|x| x == m["photo_id"].as_str().unwrap())
                .unwrap()
        })
        .collect();
    let both: BTreeSet<usize> = with(1).intersection(&with(2)).copied().collect();
    assert_eq!(rest_found, both);
    let rest_faces: serde_json::Value = http
        .get(format!(
            "{}/api/v1/photos/{}/faces",
            cluster.gateway_http, ids[1]
        ))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rest_faces["faces"].as_array().unwrap().len(), 2);

    // --- deleting one face ---------------------------------------------------
    // Person 1's face in photo 1 (found by the search above).
    let target = one
        .matches
        .iter()
        .find(|m| m.photo.as_ref().unwrap().id == ids[1])
        .unwrap()
        .faces[0]
        .face_id
        .clone();
    let err = other
        .delete_face(pb::DeleteFaceRequest {
            face_id: target.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::NotFound,
        "another studio cannot delete it"
    );
    let deleted = http
        .delete(format!("{}/api/v1/faces/{target}", cluster.gateway_http))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    let again = api
        .delete_face(pb::DeleteFaceRequest {
            face_id: target.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.faces_deleted, 0, "already gone");
    let after = api
        .search_by_selfie(search(vec![selfie_of(1, 61)], vec![], pb::Tiers::All))
        .await
        .unwrap()
        .into_inner();
    let mut expected = with(1);
    expected.remove(&1);
    assert_eq!(found(&after.matches, &ids), expected);
    let photo = api
        .get_photo(pb::GetPhotoRequest {
            photo_id: ids[1].clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .photo
        .unwrap();
    assert_eq!(photo.face_count, 1);
    // Person 2 in that photo is still found.
    let still = api
        .search_by_face(pb::SearchByFaceRequest {
            face_id: face_of_2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found(&still.matches, &ids), with(2));
}
