//! A studio's gRPC client of the gateway, for tests: its key on every
//! call, and waiting for an event's photos to be indexed.

use std::time::{Duration, Instant};

use facepass_proto::v1 as pb;
use facepass_proto::v1::face_pass_service_client::FacePassServiceClient;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};

/// Attaches the studio's key (if any) to every call.
pub type AuthInterceptor = Box<dyn FnMut(Request<()>) -> Result<Request<()>, Status> + Send>;
pub type Client = FacePassServiceClient<InterceptedService<Channel, AuthInterceptor>>;

/// A client of the gateway at `url` that sends `key` as its bearer token.
pub async fn client(url: &str, key: Option<&str>) -> anyhow::Result<Client> {
    let channel = Channel::from_shared(url.to_string())?.connect().await?;
    client_over(channel, key)
}

/// [`client`] on a channel of the caller's making (TLS, say).
pub fn client_over(channel: Channel, key: Option<&str>) -> anyhow::Result<Client> {
    let header: Option<MetadataValue<_>> = match key {
        Some(k) => Some(format!("Bearer {k}").parse()?),
        None => None,
    };
    let interceptor: AuthInterceptor = Box::new(move |mut request: Request<()>| {
        if let Some(h) = &header {
            request.metadata_mut().insert("authorization", h.clone());
        }
        Ok(request)
    });
    Ok(
        FacePassServiceClient::with_interceptor(channel, interceptor)
            .max_encoding_message_size(64 << 20),
    )
}

/// The stable error code of a gRPC error (`x-facepass-error-code`).
pub fn error_code(status: &Status) -> String {
    status
        .metadata()
        .get(facepass_core::error::ERROR_CODE_METADATA)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// Waits until the event has `expected` photos and none pending.
pub async fn wait_indexed(
    client: &mut Client,
    event_id: &str,
    expected: u64,
    timeout: Duration,
) -> anyhow::Result<pb::Event> {
    let deadline = Instant::now() + timeout;
    loop {
        let event = client
            .get_event(pb::GetEventRequest {
                event_id: event_id.into(),
            })
            .await?
            .into_inner()
            .event
            .ok_or_else(|| anyhow::anyhow!("GetEvent returned no event"))?;
        if event.photos_total == expected && event.photos_pending == 0 {
            return Ok(event);
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "event {event_id} still has {} of {} photos pending after {timeout:?}",
                event.photos_pending,
                event.photos_total
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// GetEvent, which must succeed.
pub async fn event(api: &mut Client, event_id: &str) -> pb::Event {
    api.get_event(pb::GetEventRequest {
        event_id: event_id.into(),
    })
    .await
    .expect("GetEvent")
    .into_inner()
    .event
    .expect("an event")
}

/// GetPhoto, which must succeed.
pub async fn photo(api: &mut Client, photo_id: &str) -> pb::Photo {
    api.get_photo(pb::GetPhotoRequest {
        photo_id: photo_id.into(),
    })
    .await
    .expect("GetPhoto")
    .into_inner()
    .photo
    .expect("a photo")
}

/// Creates an event without an external id.
pub async fn create_event(api: &mut Client, name: &str) -> pb::Event {
    api.create_event(pb::CreateEventRequest {
        name: name.into(),
        external_id: String::new(),
        retain_until: None,
    })
    .await
    .expect("CreateEvent")
    .into_inner()
    .event
    .expect("an event")
}

/// A guest's selfie search of an event, consent given.
pub async fn search_selfie(
    api: &mut Client,
    event_id: &str,
    selfie: Vec<u8>,
) -> pb::SearchBySelfieResponse {
    api.search_by_selfie(pb::SearchBySelfieRequest {
        consent: Some(pb::Consent {
            given: true,
            policy_version: "test-policy".into(),
        }),
        event_id: event_id.into(),
        selfie: selfie.into(),
        ..Default::default()
    })
    .await
    .expect("SearchBySelfie")
    .into_inner()
}

/// Uploads `bytes` as `<external_id>.jpg` with that external id.
pub async fn upload(
    api: &mut Client,
    event_id: &str,
    external_id: &str,
    bytes: Vec<u8>,
) -> pb::Photo {
    api.upload_photo(pb::UploadPhotoRequest {
        event_id: event_id.into(),
        external_id: external_id.into(),
        content: bytes.into(),
        file_name: format!("{external_id}.jpg"),
        ..Default::default()
    })
    .await
    .expect("UploadPhoto")
    .into_inner()
    .photo
    .expect("a photo")
}

/// Every file under `dir`, recursively (none when it does not exist).
pub fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}
