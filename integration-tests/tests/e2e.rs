//! End to end: the five real binaries as separate processes, real
//! PostgreSQL + pgvector, real RabbitMQ, real ONNX Runtime. A studio
//! registers synthetic photos of known identities; once indexed, a fresh
//! selfie of each identity finds exactly that identity's photos.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use facepass_integration_tests::Cluster;
use facepass_proto::events::v1::PhotoUploaded;
use facepass_proto::search::v1 as srch;
use facepass_proto::v1 as pb;
use facepass_proto::v1::face_pass_service_client::FacePassServiceClient;
use facepass_synth::{corrupt_jpeg, event_photo, selfie};
use prost::Message;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

/// Attaches the studio's key (if any) to every call.
type AuthInterceptor = Box<dyn FnMut(Request<()>) -> Result<Request<()>, Status> + Send>;
type Client = FacePassServiceClient<InterceptedService<Channel, AuthInterceptor>>;

async fn client(url: &str, key: Option<&str>) -> Client {
    let channel = Channel::from_shared(url.to_string())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let header: Option<MetadataValue<_>> = key.map(|k| format!("Bearer {k}").parse().unwrap());
    let interceptor: AuthInterceptor = Box::new(move |mut request: Request<()>| {
        if let Some(h) = &header {
            request.metadata_mut().insert("authorization", h.clone());
        }
        Ok(request)
    });
    FacePassServiceClient::with_interceptor(channel, interceptor)
        .max_encoding_message_size(64 << 20)
}

/// What a photo holds, to check the results against.
struct Planned {
    identities: Vec<u8>,
    corrupt: bool,
}

fn error_code(status: &Status) -> String {
    status
        .metadata()
        .get("x-facepass-error-code")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

async fn wait_indexed(
    client: &mut Client,
    event_id: &str,
    expected: u64,
    cluster: &Cluster,
) -> pb::Event {
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let event = client
            .get_event(pb::GetEventRequest {
                event_id: event_id.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .event
            .unwrap();
        if event.photos_total == expected && event.photos_pending == 0 {
            return event;
        }
        assert!(
            Instant::now() < deadline,
            "event {event_id} still has {} of {} photos pending\n{}",
            event.photos_pending,
            event.photos_total,
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn all_photos(client: &mut Client, event_id: &str) -> Vec<pb::Photo> {
    let mut photos = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_photos(pb::ListPhotosRequest {
                event_id: event_id.into(),
                status: 0,
                page_size: 7,
                page_token: token,
            })
            .await
            .unwrap()
            .into_inner();
        photos.extend(page.photos);
        if page.next_page_token.is_empty() {
            return photos;
        }
        token = page.next_page_token;
    }
}

async fn search_stats(cluster: &Cluster, studio: &str, event: &str) -> srch::GetEventStatsResponse {
    try_search_stats(cluster, studio, event).await.unwrap()
}

async fn try_search_stats(
    cluster: &Cluster,
    studio: &str,
    event: &str,
) -> Result<srch::GetEventStatsResponse, tonic::Status> {
    let channel = Channel::from_shared(cluster.search_grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let token: MetadataValue<_> = format!("Bearer {}", cluster.internal_token)
        .parse()
        .unwrap();
    let mut search = srch::search_service_client::SearchServiceClient::with_interceptor(
        channel,
        move |mut r: Request<()>| {
            r.metadata_mut().insert("authorization", token.clone());
            Ok(r)
        },
    );
    search
        .get_event_stats(srch::GetEventStatsRequest {
            studio_id: studio.into(),
            event_id: event.into(),
        })
        .await
        .map(|r| r.into_inner())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photos_travel_through_the_pipeline_and_a_selfie_finds_them() {
    let mut cluster = Cluster::start().await.expect("start the five services");
    let (studio_id, key) = cluster.create_studio("Studio One").unwrap();
    let (_other_studio, other_key) = cluster.create_studio("Studio Two").unwrap();
    let mut api = client(&cluster.gateway_grpc, Some(&key)).await;

    // --- auth: no key, a wrong key, another studio's key --------------------
    let mut anonymous = client(&cluster.gateway_grpc, None).await;
    let err = anonymous
        .list_events(pb::ListEventsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let mut forged = client(&cluster.gateway_grpc, Some("fp_not_a_key")).await;
    let err = forged
        .list_events(pb::ListEventsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    let event_a = api
        .create_event(pb::CreateEventRequest {
            retain_until: None,
            name: "Wedding A".into(),
            external_id: "pixora-1".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .event
        .unwrap();
    let event_b = api
        .create_event(pb::CreateEventRequest {
            retain_until: None,
            name: "School day B".into(),
            external_id: "pixora-2".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .event
        .unwrap();
    let dup = api
        .create_event(pb::CreateEventRequest {
            retain_until: None,
            name: "again".into(),
            external_id: "pixora-1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(dup.code(), Code::AlreadyExists);
    let bad = api
        .create_event(pb::CreateEventRequest {
            retain_until: None,
            name: "   ".into(),
            external_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);

    // --- photos of event A: 3 identities, groups, empty photos, one corrupt ---
    let plan_a: Vec<Vec<u8>> = vec![
        vec![1],
        vec![1],
        vec![1],
        vec![1],
        vec![1],
        vec![1],
        vec![2],
        vec![2],
        vec![2],
        vec![2],
        vec![3],
        vec![3],
        vec![3],
        vec![3],
        vec![1, 2],
        vec![2, 3],
        vec![1, 2, 3],
        vec![1, 3, 9],
        vec![9, 10],
        vec![],
        vec![],
        vec![],
    ];
    let mut planned: HashMap<String, Planned> = HashMap::new();
    let sizes = [(1600, 1200), (1200, 1600), (2000, 1333)];
    for (i, ids) in plan_a.iter().enumerate() {
        let (w, h) = sizes[i % sizes.len()];
        let scene = event_photo(100 + i as u64, w, h, ids, (90, 150));
        let bytes = if i % 2 == 0 {
            scene.jpeg(92)
        } else {
            scene.png()
        };
        let external_id = format!("a-{i}");
        let photo = if i % 4 == 3 {
            // Pixora's path: the file is already in the store, registered by key.
            let key = format!("studios/{studio_id}/pixora/{external_id}.img");
            let path = cluster.storage_root.join(&key);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &bytes).unwrap();
            api.register_photo(pb::RegisterPhotoRequest {
                event_id: event_a.id.clone(),
                external_id,
                object_key: key,
                file_name: format!("{i}.img"),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .photo
            .unwrap()
        } else {
            api.upload_photo(pb::UploadPhotoRequest {
                event_id: event_a.id.clone(),
                external_id,
                content: bytes.into(),
                file_name: format!("{i}.jpg"),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .photo
            .unwrap()
        };
        assert_eq!(photo.status, pb::PhotoStatus::Pending as i32);
        planned.insert(
            photo.id,
            Planned {
                identities: ids.clone(),
                corrupt: false,
            },
        );
    }
    let corrupt = api
        .upload_photo(pb::UploadPhotoRequest {
            event_id: event_a.id.clone(),
            external_id: "a-corrupt".into(),
            content: corrupt_jpeg(5).into(),
            file_name: "broken.jpg".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .photo
        .unwrap();
    planned.insert(
        corrupt.id.clone(),
        Planned {
            identities: vec![],
            corrupt: true,
        },
    );

    // Registering outside the studio's prefix, or a missing object, is refused.
    let err = api
        .register_photo(pb::RegisterPhotoRequest {
            event_id: event_a.id.clone(),
            external_id: String::new(),
            object_key: "studios/someone-else/x.jpg".into(),
            file_name: String::new(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = api
        .register_photo(pb::RegisterPhotoRequest {
            event_id: event_a.id.clone(),
            external_id: String::new(),
            object_key: format!("studios/{studio_id}/missing.jpg"),
            file_name: String::new(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    // --- event B: identity 1 again, and identity 4 ---------------------------
    let mut photos_b = BTreeSet::new();
    for (i, ids) in [vec![1u8], vec![1, 4], vec![4]].iter().enumerate() {
        let scene = event_photo(500 + i as u64, 1600, 1200, ids, (90, 150));
        let photo = api
            .upload_photo(pb::UploadPhotoRequest {
                event_id: event_b.id.clone(),
                external_id: format!("b-{i}"),
                content: scene.jpeg(92).into(),
                file_name: String::new(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .photo
            .unwrap();
        if ids.contains(&1) {
            photos_b.insert(photo.id.clone());
        }
    }

    // --- wait for indexing and check every photo's outcome -------------------
    let total_a = planned.len() as u64;
    let event = wait_indexed(&mut api, &event_a.id, total_a, &cluster).await;
    assert_eq!(event.photos_failed, 1, "only the corrupt file fails");
    assert_eq!(event.photos_indexed, total_a - 1);
    wait_indexed(&mut api, &event_b.id, 3, &cluster).await;

    let photos = all_photos(&mut api, &event_a.id).await;
    assert_eq!(
        photos.len() as u64,
        total_a,
        "pagination returns every photo once"
    );
    let mut expected_faces = 0u64;
    for photo in &photos {
        let plan = &planned[&photo.id];
        if plan.corrupt {
            assert_eq!(photo.status, pb::PhotoStatus::Failed as i32);
            assert_eq!(photo.failure_code, "IMAGE_UNDECODABLE");
            assert!(!photo.failure_reason.is_empty());
        } else {
            assert_eq!(photo.status, pb::PhotoStatus::Indexed as i32, "{photo:?}");
            assert_eq!(
                photo.face_count as usize,
                plan.identities.len(),
                "faces of {photo:?}"
            );
            expected_faces += plan.identities.len() as u64;
        }
    }
    assert_eq!(event.faces_total, expected_faces);
    let stats = search_stats(&cluster, &studio_id, &event_a.id).await;
    assert_eq!(stats.faces, expected_faces);
    // The store's own photo records agree with the catalogue: the corrupt
    // file is counted as failed, every other photo as indexed.
    assert_eq!(stats.photos, total_a);
    assert_eq!(stats.photos_failed, 1);
    assert_eq!(stats.photos_indexed, total_a - 1);
    assert!(
        stats.model.contains('@'),
        "pack id name@version: {}",
        stats.model
    );
    assert_eq!(stats.strategy, "exact");

    // --- a fresh selfie of each identity finds exactly its photos ------------
    // Also a phone's HEIC selfie of identity 1 (tools/fixtures/make_heif.py),
    // decoded by libheif in the detector.
    let heic = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../services/detector/testdata/heif-selfie.heic"
    ))
    .unwrap();
    let selfies = [(1u8, heic)]
        .into_iter()
        .chain([1u8, 2, 3].map(|id| (id, selfie(1000 + id as u64, id).jpeg(90))));
    for (identity, selfie_bytes) in selfies {
        let expected: BTreeSet<String> = planned
            .iter()
            .filter(|(_, p)| p.identities.contains(&identity))
            .map(|(id, _)| id.clone())
            .collect();
        assert!(!expected.is_empty());
        let result = api
            .search_by_selfie(pb::SearchBySelfieRequest {
                consent: Some(pb::Consent {
                    given: true,
                    policy_version: "test-policy".into(),
                }),
                more_selfies: vec![],
                together: vec![],
                tiers: 0,
                event_id: event_a.id.clone(),
                selfie: selfie_bytes.into(),
                limit: 0,
            })
            .await
            .unwrap()
            .into_inner();
        let found: BTreeSet<String> = result
            .matches
            .iter()
            .map(|m| m.photo.as_ref().unwrap().id.clone())
            .collect();
        assert_eq!(found, expected, "identity {identity}");
        assert!(result
            .matches
            .iter()
            .all(|m| m.tier == pb::MatchTier::Match as i32 && m.similarity > 0.9));
        assert!(
            !photos_b.iter().any(|id| found.contains(id)),
            "event B leaked into event A"
        );
    }
    // Identity 1 in event B finds only B's photos of identity 1.
    let result = api
        .search_by_selfie(pb::SearchBySelfieRequest {
            consent: Some(pb::Consent {
                given: true,
                policy_version: "test-policy".into(),
            }),
            more_selfies: vec![],
            together: vec![],
            tiers: 0,
            event_id: event_b.id.clone(),
            selfie: selfie(77, 1).png().into(),
            limit: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let found: BTreeSet<String> = result
        .matches
        .iter()
        .map(|m| m.photo.as_ref().unwrap().id.clone())
        .collect();
    assert_eq!(found, photos_b);
    // Identity 4 is not in event A at all.
    let result = api
        .search_by_selfie(pb::SearchBySelfieRequest {
            consent: Some(pb::Consent {
                given: true,
                policy_version: "test-policy".into(),
            }),
            more_selfies: vec![],
            together: vec![],
            tiers: 0,
            event_id: event_a.id.clone(),
            selfie: selfie(78, 4).png().into(),
            limit: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        result.matches.is_empty(),
        "stranger matched: {:?}",
        result.matches
    );

    // --- bad selfies get clear, stable errors ---------------------------------
    let no_face = event_photo(79, 640, 480, &[], (90, 90)).png();
    let err = api
        .search_by_selfie(pb::SearchBySelfieRequest {
            consent: Some(pb::Consent {
                given: true,
                policy_version: "test-policy".into(),
            }),
            more_selfies: vec![],
            together: vec![],
            tiers: 0,
            event_id: event_a.id.clone(),
            selfie: no_face.into(),
            limit: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(error_code(&err), "NO_FACE");
    let err = api
        .search_by_selfie(pb::SearchBySelfieRequest {
            consent: Some(pb::Consent {
                given: true,
                policy_version: "test-policy".into(),
            }),
            more_selfies: vec![],
            together: vec![],
            tiers: 0,
            event_id: event_a.id.clone(),
            selfie: b"not an image".to_vec().into(),
            limit: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(error_code(&err), "IMAGE_UNDECODABLE");
    let err = api
        .search_by_selfie(pb::SearchBySelfieRequest {
            consent: Some(pb::Consent {
                given: true,
                policy_version: "test-policy".into(),
            }),
            more_selfies: vec![],
            together: vec![],
            tiers: 0,
            event_id: "nope".into(),
            selfie: vec![1u8].into(),
            limit: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    // --- another studio sees nothing of ours ----------------------------------
    let mut other = client(&cluster.gateway_grpc, Some(&other_key)).await;
    let err = other
        .get_event(pb::GetEventRequest {
            event_id: event_a.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = other
        .search_by_selfie(pb::SearchBySelfieRequest {
            consent: Some(pb::Consent {
                given: true,
                policy_version: "test-policy".into(),
            }),
            more_selfies: vec![],
            together: vec![],
            tiers: 0,
            event_id: event_a.id.clone(),
            selfie: selfie(1, 1).png().into(),
            limit: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = other
        .get_photo(pb::GetPhotoRequest {
            photo_id: corrupt.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(other
        .list_events(pb::ListEventsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .events
        .is_empty());

    // --- redelivery of photo.uploaded creates no duplicate faces -------------
    let group = planned
        .iter()
        .find(|(_, p)| p.identities == vec![1, 2, 3])
        .map(|(id, _)| id.clone())
        .unwrap();
    let group_photo = api
        .get_photo(pb::GetPhotoRequest {
            photo_id: group.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .photo
        .unwrap();
    let conn = facepass_queue::connect(&facepass_integration_tests::amqp_url(), "e2e-redeliver")
        .await
        .unwrap();
    let channel = facepass_queue::confirmed_channel(&conn).await.unwrap();
    let topology = facepass_queue::AmqpConfig {
        url: String::new(),
        namespace: cluster.namespace.clone(),
    }
    .topology();
    let message = PhotoUploaded {
        photo_id: group.clone(),
        event_id: event_a.id.clone(),
        studio_id: studio_id.clone(),
        object_key: group_photo.object_key.clone(),
        uploaded_at: None,
        attempt: 1,
        first_attempt_at: None,
    };
    for _ in 0..2 {
        facepass_queue::publish_confirmed(
            &channel,
            facepass_queue::Outgoing {
                exchange: &topology.events_exchange(),
                routing_key: facepass_queue::PHOTO_UPLOADED,
                message_type: "facepass.events.v1.PhotoUploaded",
                payload: &message.encode_to_vec(),
                expiration_ms: None,
                message_id: &group,
                headers: &[],
                priority: None,
            },
        )
        .await
        .unwrap();
    }
    // Wait until the redelivered photo has been re-indexed (its indexed_at moves).
    let before = group_photo.indexed_at.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let p = api
            .get_photo(pb::GetPhotoRequest {
                photo_id: group.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .photo
            .unwrap();
        let at = p.indexed_at.unwrap();
        if (at.seconds, at.nanos) > (before.seconds, before.nanos) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "redelivered photo was not re-indexed\n{}",
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await; // let the second copy land too
    assert_eq!(
        search_stats(&cluster, &studio_id, &event_a.id).await.faces,
        expected_faces
    );
    let _ = conn.close(200, "bye".into()).await;

    // --- guest REST: the share link finds the same photos ---------------------
    let http = reqwest::Client::new();
    let url = format!(
        "{}/api/v1/guest/{}/search?consent=test-policy",
        cluster.gateway_http, event_a.share_token
    );
    let response = http
        .post(&url)
        .body(selfie(2002, 2).jpeg(90))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    let guest_found: BTreeSet<String> = body["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["photo_id"].as_str().unwrap().to_string())
        .collect();
    let expected_2: BTreeSet<String> = planned
        .iter()
        .filter(|(_, p)| p.identities.contains(&2))
        .map(|(id, _)| id.clone())
        .collect();
    assert_eq!(guest_found, expected_2);
    let first_url = body["matches"][0]["url"].as_str().unwrap();
    let image = http
        .get(format!("{}{first_url}", cluster.gateway_http))
        .send()
        .await
        .unwrap();
    assert_eq!(image.status(), 200);
    assert!(image.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("image/"));
    let page = http
        .get(format!(
            "{}/e/{}",
            cluster.gateway_http, event_a.share_token
        ))
        .send()
        .await
        .unwrap();
    // The guest app's shell (what it does in a browser: tests/guest_app.rs).
    assert!(page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("script-src 'self'"));
    assert!(page.text().await.unwrap().contains("<div id=\"app\">"));
    let response = http
        .post(format!(
            "{}/api/v1/guest/not-a-token/search",
            cluster.gateway_http
        ))
        .body(selfie(1, 1).png())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "NOT_FOUND");

    // --- deleting a photo removes its faces; deleting an event removes all ----
    let deleted = api
        .delete_photo(pb::DeletePhotoRequest {
            photo_id: group.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.faces_deleted, 3);
    assert_eq!(
        search_stats(&cluster, &studio_id, &event_a.id).await.faces,
        expected_faces - 3
    );
    let err = api
        .get_photo(pb::GetPhotoRequest { photo_id: group })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let removed = api
        .delete_event(pb::DeleteEventRequest {
            event_id: event_b.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(removed.photos_deleted, 3);
    // The store forgot the event entirely (its partition is dropped).
    assert_eq!(
        try_search_stats(&cluster, &studio_id, &event_b.id)
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    let err = api
        .get_event(pb::GetEventRequest {
            event_id: event_b.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    // Uploaded bytes of event B are gone from the store.
    let leftover = walk(
        &cluster
            .storage_root
            .join(format!("studios/{studio_id}/events/{}", event_b.id)),
    );
    assert!(leftover.is_empty(), "files left behind: {leftover:?}");

    // --- "forget me": identity 3 has every face of it deleted from event A -----
    let deleted_group = planned
        .iter()
        .find(|(_, p)| p.identities == vec![1, 2, 3])
        .map(|(id, _)| id.clone())
        .unwrap();
    let with_3: BTreeSet<String> = planned
        .iter()
        .filter(|(id, p)| p.identities.contains(&3) && **id != deleted_group)
        .map(|(id, _)| id.clone())
        .collect();
    let faces_before = search_stats(&cluster, &studio_id, &event_a.id).await.faces;
    let response = http
        .post(format!(
            "{}/api/v1/guest/{}/forget",
            cluster.gateway_http, event_a.share_token
        ))
        .body(selfie(3003, 3).jpeg(90))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let receipt: serde_json::Value = response.json().await.unwrap();
    let forgotten: BTreeSet<String> = receipt["photo_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        forgotten, with_3,
        "receipt lists exactly identity 3's photos"
    );
    assert_eq!(
        receipt["faces_deleted"].as_u64().unwrap() as usize,
        with_3.len()
    );
    assert_eq!(
        search_stats(&cluster, &studio_id, &event_a.id).await.faces,
        faces_before - with_3.len() as u64
    );
    let after = api
        .search_by_selfie(pb::SearchBySelfieRequest {
            consent: Some(pb::Consent {
                given: true,
                policy_version: "test-policy".into(),
            }),
            more_selfies: vec![],
            together: vec![],
            tiers: 0,
            event_id: event_a.id.clone(),
            selfie: selfie(3004, 3).jpeg(90).into(),
            limit: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        after.matches.is_empty(),
        "identity 3 still found: {:?}",
        after.matches
    );
    let solo_3 = planned
        .iter()
        .find(|(_, p)| p.identities == vec![3])
        .map(|(id, _)| id.clone())
        .unwrap();
    let photo = api
        .get_photo(pb::GetPhotoRequest { photo_id: solo_3 })
        .await
        .unwrap()
        .into_inner()
        .photo
        .unwrap();
    assert_eq!(
        photo.face_count, 0,
        "catalog face count follows the deletion"
    );
    // Everyone else is still findable.
    let still = api
        .search_by_selfie(pb::SearchBySelfieRequest {
            consent: Some(pb::Consent {
                given: true,
                policy_version: "test-policy".into(),
            }),
            more_selfies: vec![],
            together: vec![],
            tiers: 0,
            event_id: event_a.id.clone(),
            selfie: selfie(3005, 1).jpeg(90).into(),
            limit: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let expected_1 = planned
        .iter()
        .filter(|(id, p)| p.identities.contains(&1) && **id != deleted_group)
        .count();
    assert_eq!(still.matches.len(), expected_1);

    // --- every service stops cleanly on SIGTERM -------------------------------
    for name in ["gateway", "indexer", "detector", "embedder", "search"] {
        let status = cluster.service(name).stop(Duration::from_secs(20)).unwrap();
        assert!(
            status.success(),
            "{name} exited with {status}\n{}",
            cluster.logs()
        );
    }
    cluster.clean_broker().await;
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                files.extend(walk(&path));
            } else {
                files.push(path);
            }
        }
    }
    files
}
