//! `facepass`, the operator CLI: waits for services to be healthy, loads the
//! demo event (synthetic faces only) through the public gRPC API, and writes
//! synthetic selfies to try the guest page with.

pub mod admin;
pub mod calibrate;
pub mod models;
pub mod plot;

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use facepass_proto::v1 as pb;
use facepass_proto::v1::face_pass_service_client::FacePassServiceClient;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// Waits until every URL answers grpc.health.v1 with SERVING.
pub async fn wait_healthy(urls: &[String], timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    for url in urls {
        let mut last = String::from("no answer");
        loop {
            if Instant::now() > deadline {
                bail!("{url} is not healthy: {last}");
            }
            let endpoint = Channel::from_shared(url.clone())?
                .connect_timeout(Duration::from_secs(2))
                .timeout(Duration::from_secs(2));
            match endpoint.connect().await {
                Ok(channel) => match HealthClient::new(channel)
                    .check(HealthCheckRequest::default())
                    .await
                {
                    Ok(r) if r.get_ref().status == ServingStatus::Serving as i32 => break,
                    Ok(_) => last = "not serving yet".into(),
                    Err(e) => last = e.message().to_string(),
                },
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        println!("healthy: {url}");
    }
    Ok(())
}

type Interceptor = Box<dyn FnMut(Request<()>) -> Result<Request<()>, Status> + Send>;
pub type Client = FacePassServiceClient<InterceptedService<Channel, Interceptor>>;

pub async fn client(url: &str, key: &str) -> anyhow::Result<Client> {
    let channel = Channel::from_shared(url.to_string())?
        .connect()
        .await
        .with_context(|| format!("connecting to the gateway at {url}"))?;
    let header: MetadataValue<_> = format!("Bearer {key}").parse()?;
    let interceptor: Interceptor = Box::new(move |mut r: Request<()>| {
        r.metadata_mut().insert("authorization", header.clone());
        Ok(r)
    });
    Ok(
        FacePassServiceClient::with_interceptor(channel, interceptor)
            .max_encoding_message_size(64 << 20),
    )
}

/// The demo: identities and how they appear in the event's photos.
pub fn demo_plan() -> Vec<Vec<u8>> {
    let mut plan = Vec::new();
    for identity in 1..=4u8 {
        for _ in 0..4 {
            plan.push(vec![identity]);
        }
    }
    plan.extend([
        vec![1, 2],
        vec![3, 4],
        vec![1, 2, 3],
        vec![2, 4],
        vec![1, 3, 4, 2],
        vec![],
        vec![],
    ]);
    plan
}

/// What a demo event holds.
pub enum DemoPhotos {
    /// The synthetic wedding of [`demo_plan`].
    Synthetic,
    /// Every image file of a folder, by name.
    Folder(std::path::PathBuf),
}

/// Creates (or finds) the synthetic demo event, uploads its photos once,
/// waits for indexing and returns the event.
pub async fn load_demo(client: &mut Client, timeout: Duration) -> anyhow::Result<pb::Event> {
    load_event(
        client,
        "demo",
        "Demo wedding (synthetic faces)",
        DemoPhotos::Synthetic,
        timeout,
    )
    .await
}

/// The image files of a folder, sorted by name.
pub fn folder_photos(dir: &std::path::Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                    ["jpg", "jpeg", "png", "webp", "heic", "heif", "avif"]
                        .contains(&e.to_ascii_lowercase().as_str())
                })
        })
        .collect();
    files.sort();
    if files.is_empty() {
        bail!(
            "{} has no photos (jpg, png, webp, heic, avif)",
            dir.display()
        );
    }
    Ok(files)
}

/// Creates (or finds, by `external_id`) an event, uploads its photos once,
/// waits for indexing and returns the event.
pub async fn load_event(
    client: &mut Client,
    external_id: &str,
    name: &str,
    photos: DemoPhotos,
    timeout: Duration,
) -> anyhow::Result<pb::Event> {
    let existing = client
        .list_events(pb::ListEventsRequest {
            page_size: 500,
            page_token: String::new(),
        })
        .await?
        .into_inner()
        .events
        .into_iter()
        .find(|e| e.external_id == external_id);
    let event = match existing {
        Some(event) => {
            println!(
                "event {external_id} exists: {} ({} photos)",
                event.id, event.photos_total
            );
            event
        }
        None => {
            let event = client
                .create_event(pb::CreateEventRequest {
                    retain_until: None,
                    name: name.into(),
                    external_id: external_id.into(),
                })
                .await?
                .into_inner()
                .event
                .context("no event returned")?;
            // (file name, bytes, what it shows)
            let uploads: Vec<(String, Vec<u8>, String)> = match &photos {
                DemoPhotos::Synthetic => demo_plan()
                    .iter()
                    .enumerate()
                    .map(|(i, ids)| {
                        let (w, h) = if i % 3 == 1 {
                            (1200, 1600)
                        } else {
                            (1600, 1200)
                        };
                        let scene =
                            facepass_synth::event_photo(9000 + i as u64, w, h, ids, (90, 150));
                        (
                            format!("demo-{i}.jpg"),
                            scene.jpeg(90),
                            format!("identities {ids:?}"),
                        )
                    })
                    .collect(),
                DemoPhotos::Folder(dir) => folder_photos(dir)?
                    .into_iter()
                    .map(|p| {
                        let name = p
                            .file_name()
                            .unwrap_or_default()
                            .to_string_lossy()
                            .to_string();
                        std::fs::read(&p)
                            .with_context(|| format!("reading {}", p.display()))
                            .map(|bytes| (name, bytes, p.display().to_string()))
                    })
                    .collect::<anyhow::Result<_>>()?,
            };
            let total = uploads.len();
            for (i, (file_name, bytes, what)) in uploads.into_iter().enumerate() {
                client
                    .upload_photo(pb::UploadPhotoRequest {
                        event_id: event.id.clone(),
                        external_id: format!("{external_id}-{i}"),
                        content: bytes.into(),
                        file_name,
                        ..Default::default()
                    })
                    .await?;
                println!("uploaded {}/{total} ({what})", i + 1);
            }
            event
        }
    };
    let deadline = Instant::now() + timeout;
    loop {
        let e = client
            .get_event(pb::GetEventRequest {
                event_id: event.id.clone(),
            })
            .await?
            .into_inner()
            .event
            .context("no event returned")?;
        println!(
            "indexing: {} indexed, {} pending, {} failed of {}",
            e.photos_indexed, e.photos_pending, e.photos_failed, e.photos_total
        );
        if e.photos_pending == 0 {
            return Ok(e);
        }
        if Instant::now() > deadline {
            bail!("indexing did not finish in {timeout:?}; see .facepass/logs/");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
