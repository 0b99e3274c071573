//! Bulk and large uploads (issue 12, item 4) on the real binaries:
//! RegisterPhotos with 1,000 items and a result per item; client-streaming
//! gRPC and streaming REST uploads written to the object store as they
//! arrive; and the gateway's memory while 16 clients upload 50 MB photos
//! at once (printed: the closing note quotes it).

use std::time::{Duration, Instant};

use bytes::Bytes;
use facepass_integration_tests::gateway::{client, create_event, wait_indexed};
use facepass_integration_tests::Cluster;
use facepass_proto::v1 as pb;
use facepass_synth::event_photo;
use tonic::Code;

const MB: usize = 1 << 20;

/// The gateway's peak and current resident memory (VmHWM, VmRSS) in MiB.
fn memory(cluster: &mut Cluster) -> (f64, f64) {
    cluster.memory_mib("gateway")
}

fn stream_request(
    event_id: &str,
    external_id: &str,
    data: Bytes,
    chunk: usize,
) -> impl futures::Stream<Item = pb::UploadPhotoStreamRequest> + Send + 'static {
    let header = pb::UploadPhotoStreamRequest {
        part: Some(pb::upload_photo_stream_request::Part::Header(
            pb::UploadPhotoHeader {
                event_id: event_id.into(),
                external_id: external_id.into(),
                file_name: format!("{external_id}.jpg"),
                ..Default::default()
            },
        )),
    };
    let chunks: Vec<pb::UploadPhotoStreamRequest> = (0..data.len())
        .step_by(chunk)
        .map(|at| pb::UploadPhotoStreamRequest {
            part: Some(pb::upload_photo_stream_request::Part::Chunk(
                data.slice(at..(at + chunk).min(data.len())),
            )),
        })
        .collect();
    futures::stream::iter(std::iter::once(header).chain(chunks))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bulk_registration_and_streamed_uploads() {
    let mut cluster = Cluster::start().await.expect("cluster");
    let (studio_id, key) = cluster.create_studio("Studio").unwrap();
    let mut api = client(&cluster.gateway_grpc, Some(&key)).await.unwrap();
    let event = create_event(&mut api, "Big day").await;

    // --- a streamed photo is indexed like any other ------------------------
    let jpeg = Bytes::from(event_photo(900, 1600, 1200, &[1, 2], (110, 150)).jpeg(92));
    let streamed = api
        .upload_photo_stream(stream_request(&event.id, "s1", jpeg.clone(), 64 * 1024))
        .await
        .unwrap()
        .into_inner();
    assert!(streamed.created);
    let photo = streamed.photo.unwrap();
    assert_eq!(photo.size_bytes, jpeg.len() as u64);
    assert_eq!(photo.content_type, "image/jpeg");
    assert_eq!(photo.file_name, "s1.jpg");
    let again = api
        .upload_photo_stream(stream_request(&event.id, "s1", jpeg.clone(), 100_000))
        .await
        .unwrap()
        .into_inner();
    assert!(!again.created, "the same bytes again are the same photo");
    assert_eq!(again.photo.unwrap().id, photo.id);
    let indexed = wait_indexed(&mut api, &event.id, 1, Duration::from_secs(240))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    assert_eq!(indexed.faces_total, 2);
    let stored = cluster.storage_root.join(&photo.object_key);
    assert_eq!(std::fs::read(&stored).unwrap(), jpeg.to_vec());

    // A stream without its header, or past the limit, leaves nothing.
    let headless = futures::stream::iter([pb::UploadPhotoStreamRequest {
        part: Some(pb::upload_photo_stream_request::Part::Chunk(jpeg.clone())),
    }]);
    let err = api.upload_photo_stream(headless).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let huge = Bytes::from(vec![7u8; 50 * MB + 1]);
    let err = api
        .upload_photo_stream(stream_request(&event.id, "huge", huge, MB))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("limit"), "{}", err.message());
    let event_dir = cluster
        .storage_root
        .join(format!("studios/{studio_id}/events/{}/photos", event.id));
    let objects = std::fs::read_dir(&event_dir).unwrap().count();
    assert_eq!(objects, 1, "only the indexed photo's object");

    // --- REST streams the body the same way --------------------------------
    let http = reqwest::Client::new();
    let body = reqwest::Body::wrap_stream(futures::stream::iter(
        jpeg.chunks(10_000)
            .map(|c| Ok::<_, std::io::Error>(Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    ));
    let rest = http
        .post(format!(
            "{}/api/v1/events/{}/photos?external_id=r1&file_name=r1.jpg",
            cluster.gateway_http, event.id
        ))
        .bearer_auth(&key)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), 202);
    let rest: serde_json::Value = rest.json().await.unwrap();
    assert_eq!(rest["size_bytes"], jpeg.len());

    // Nothing below needs indexing: the indexer rests, the queue keeps the work.
    cluster
        .service("indexer")
        .stop(Duration::from_secs(10))
        .unwrap();

    // --- RegisterPhotos: 1,000 items, one result each ---------------------------
    let small = event_photo(901, 320, 240, &[], (90, 150)).jpeg(80);
    let mut items = Vec::new();
    for i in 0..1000 {
        let key = format!("studios/{studio_id}/pixora/bulk/{i}.jpg");
        let path = cluster.storage_root.join(&key);
        match i {
            // Missing object, FacePass's own area, another studio's prefix.
            7 => {}
            8 => {
                items.push(pb::RegisterPhotosItem {
                    external_id: format!("b{i}"),
                    object_key: photo.object_key.clone(),
                    file_name: String::new(),
                });
                continue;
            }
            9 => {
                items.push(pb::RegisterPhotosItem {
                    external_id: format!("b{i}"),
                    object_key: "studios/another/x.jpg".into(),
                    file_name: String::new(),
                });
                continue;
            }
            _ => {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &small).unwrap();
            }
        }
        items.push(pb::RegisterPhotosItem {
            external_id: format!("b{i}"),
            object_key: key,
            file_name: format!("{i}.jpg"),
        });
    }
    let started = Instant::now();
    let results = api
        .register_photos(pb::RegisterPhotosRequest {
            event_id: event.id.clone(),
            items: items.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    println!(
        "RegisterPhotos: 1000 items in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(results.len(), 1000);
    for (i, r) in results.iter().enumerate() {
        match (i, &r.result) {
            (7, Some(pb::register_photos_result::Result::Error(e))) => {
                assert_eq!(e.code, "NOT_FOUND")
            }
            (8, Some(pb::register_photos_result::Result::Error(e))) => {
                assert_eq!(
                    (e.code.as_str(), e.field.as_str()),
                    ("INVALID_ARGUMENT", "object_key")
                )
            }
            (9, Some(pb::register_photos_result::Result::Error(e))) => {
                assert_eq!(e.code, "PERMISSION_DENIED")
            }
            (_, Some(pb::register_photos_result::Result::Photo(p))) if !(7..=9).contains(&i) => {
                assert_eq!(p.external_id, format!("b{i}"));
                assert!(r.created);
            }
            other => panic!("item {i}: {other:?}"),
        }
    }
    // Repeated: the same results, nothing created twice.
    let repeated = api
        .register_photos(pb::RegisterPhotosRequest {
            event_id: event.id.clone(),
            items,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    assert_eq!(repeated.iter().filter(|r| r.created).count(), 0);
    assert_eq!(
        repeated
            .iter()
            .filter(|r| matches!(r.result, Some(pb::register_photos_result::Result::Photo(_))))
            .count(),
        997
    );
    let too_many = api
        .register_photos(pb::RegisterPhotosRequest {
            event_id: event.id.clone(),
            items: vec![pb::RegisterPhotosItem::default(); 1001],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(too_many.code(), Code::InvalidArgument);

    // --- memory while 16 clients upload 50 MB at once ----------------------------
    let (peak_before, rss_before) = memory(&mut cluster);
    let payload = Bytes::from(
        (0..50 * MB)
            .map(|i| (i as u32).wrapping_mul(2_654_435_761) as u8)
            .collect::<Vec<u8>>(),
    );
    let started = Instant::now();
    let uploads: Vec<_> = (0..16)
        .map(|i| {
            let url = cluster.gateway_grpc.clone();
            let key = key.clone();
            let event_id = event.id.clone();
            let payload = payload.clone();
            tokio::spawn(async move {
                let mut api = client(&url, Some(&key)).await.unwrap();
                api.upload_photo_stream(stream_request(&event_id, &format!("big{i}"), payload, MB))
                    .await
                    .map(|r| r.into_inner().photo.unwrap().size_bytes)
            })
        })
        .collect();
    for u in uploads {
        assert_eq!(u.await.unwrap().unwrap(), (50 * MB) as u64);
    }
    let seconds = started.elapsed().as_secs_f64();
    let (peak_after, rss_after) = memory(&mut cluster);
    println!(
        "16 x 50 MB streamed uploads in {seconds:.1} s ({:.0} MB/s): gateway peak RSS {peak_before:.0} -> {peak_after:.0} MiB (+{:.0} MiB for 800 MiB uploaded), RSS now {rss_after:.0} MiB (was {rss_before:.0})",
        800.0 / seconds,
        peak_after - peak_before
    );
    // Holding the photos would take 800 MiB; streaming holds a few parts each.
    assert!(
        peak_after - peak_before < 256.0,
        "gateway memory grew by {:.0} MiB",
        peak_after - peak_before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn watch_event_streams_progress_and_each_outcome() {
    use futures::StreamExt;
    let cluster = Cluster::start().await.expect("cluster");
    let (_studio, key) = cluster.create_studio("Studio").unwrap();
    let mut api = client(&cluster.gateway_grpc, Some(&key)).await.unwrap();
    let event = create_event(&mut api, "Watched").await;

    let mut watch = api
        .watch_event(pb::WatchEventRequest {
            event_id: event.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    // REST: the same as Server-Sent Events.
    let http = reqwest::Client::new();
    let sse = http
        .get(format!(
            "{}/api/v1/events/{}/watch",
            cluster.gateway_http, event.id
        ))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), 200);
    assert_eq!(sse.headers()["content-type"], "text/event-stream");
    let first = watch
        .message()
        .await
        .unwrap_or_else(|e| panic!("{e:?}\n{}", cluster.logs()))
        .unwrap();
    match first.update {
        Some(pb::watch_event_response::Update::Progress(p)) => {
            assert_eq!(p.photos_total, 0);
            assert!(p.completed);
        }
        other => panic!("first update: {other:?}"),
    }
    let mut uploaded = Vec::new();
    for (i, bytes) in [
        event_photo(950, 1200, 900, &[1], (110, 150)).jpeg(90),
        event_photo(951, 1200, 900, &[2, 3], (110, 150)).jpeg(90),
        b"not an image at all".to_vec(),
    ]
    .into_iter()
    .enumerate()
    {
        let photo = api
            .upload_photo(pb::UploadPhotoRequest {
                event_id: event.id.clone(),
                external_id: format!("w{i}"),
                content: bytes.into(),
                file_name: String::new(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .photo
            .unwrap();
        uploaded.push(photo.id);
    }
    let mut outcomes = std::collections::BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let next = tokio::time::timeout_at(deadline.into(), watch.message())
            .await
            .expect("WatchEvent stalled")
            .unwrap()
            .unwrap();
        match next.update {
            Some(pb::watch_event_response::Update::Photo(p)) => {
                assert!(
                    outcomes.insert(p.id.clone(), p).is_none(),
                    "an outcome twice"
                );
            }
            Some(pb::watch_event_response::Update::Progress(p)) => {
                assert_eq!(p.photos_indexed + p.photos_failed, outcomes.len() as u64);
                if p.completed && p.photos_total == 3 {
                    assert_eq!(
                        (p.photos_indexed, p.photos_failed, p.faces_total),
                        (2, 1, 3)
                    );
                    break;
                }
            }
            None => panic!("empty update"),
        }
    }
    let keys: Vec<&String> = outcomes.keys().collect();
    let mut want: Vec<&String> = uploaded.iter().collect();
    want.sort();
    assert_eq!(keys, want);
    assert_eq!(outcomes[&uploaded[1]].face_count, 2);
    assert_eq!(outcomes[&uploaded[2]].failure_code, "IMAGE_UNDECODABLE");

    // The SSE stream told the same story.
    let mut body = sse.bytes_stream();
    let mut text = String::new();
    let done = |text: &str| {
        text.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|data| serde_json::from_str::<serde_json::Value>(data.trim()).ok())
            .any(|p| p["completed"] == true && p["faces"] == 3 && p["photos"]["total"] == 3)
    };
    let sse_deadline = Instant::now() + Duration::from_secs(60);
    while !done(&text) {
        let chunk = tokio::time::timeout_at(sse_deadline.into(), body.next())
            .await
            .unwrap_or_else(|_| panic!("SSE never reported completion:\n{text}"))
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert_eq!(text.matches("event: photo").count(), 3, "{text}");
    assert!(text.contains("event: progress"), "{text}");

    // Deleting the event ends the watch with NOT_FOUND.
    api.delete_event(pb::DeleteEventRequest {
        event_id: event.id.clone(),
    })
    .await
    .unwrap();
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match watch.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => return None,
                Err(status) => return Some(status.code()),
            }
        }
    })
    .await
    .expect("the watch did not end");
    assert_eq!(end, Some(Code::NotFound));
}
