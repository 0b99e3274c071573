//! `facepass.v1.FacePassService`: the public gRPC API for Pixora, a thin
//! adapter over [`Gateway`].

use std::sync::Arc;

use facepass_core::{parse_id, Error, Result};
use facepass_proto::v1 as pb;
use futures::StreamExt;
use pb::face_pass_service_server::FacePassService;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::catalog::{
    EventCounts, EventRow, PhotoRow, STATUS_FAILED, STATUS_INDEXED, STATUS_PENDING, STATUS_RETRYING,
};
use crate::domain::{Gateway, NewRegistration, NewUpload, PageRequest, Priority};
use crate::faces::{check_limit, check_people, FaceId, Person, PhotoMatch, Tier, Tiers};
use crate::keys::{Caller, Scope};
use crate::privacy::{Channel, Consent};
use crate::watch::Update;

pub struct PublicApi {
    gateway: Arc<Gateway>,
}

impl PublicApi {
    pub fn new(gateway: Arc<Gateway>) -> Self {
        PublicApi { gateway }
    }

    /// The caller's studio, if its key has `scope`.
    async fn studio<T>(&self, request: &Request<T>, scope: Scope) -> Result<Uuid> {
        self.caller(request, scope).await.map(|c| c.studio)
    }

    /// The caller (studio, key), if its key has `scope`.
    async fn caller<T>(&self, request: &Request<T>, scope: Scope) -> Result<Caller> {
        let header = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        let caller = crate::auth::caller(&self.gateway.catalog, header).await?;
        self.gateway
            .rate
            .api_key
            .check(&caller.key_id.to_string())?;
        caller.require(scope)?;
        Ok(caller)
    }
}

pub fn timestamp(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

pub fn event_to_pb(event: &EventRow, counts: &EventCounts) -> pb::Event {
    pb::Event {
        id: event.id.to_string(),
        name: event.name.clone(),
        external_id: event.external_id.clone().unwrap_or_default(),
        share_token: event.share_token.to_string(),
        created_at: Some(timestamp(event.created_at)),
        photos_total: counts.total,
        photos_pending: counts.pending,
        photos_indexed: counts.indexed,
        photos_failed: counts.failed,
        faces_total: counts.faces,
        share_enabled: event.share_disabled_at.is_none(),
        share_expires_at: event.share_expires_at.map(timestamp),
        retain_until: event.retain_until.map(timestamp),
        photos_retrying: counts.retrying,
    }
}

pub fn status_to_pb(status: &str) -> pb::PhotoStatus {
    match status {
        STATUS_PENDING => pb::PhotoStatus::Pending,
        STATUS_INDEXED => pb::PhotoStatus::Indexed,
        STATUS_FAILED => pb::PhotoStatus::Failed,
        STATUS_RETRYING => pb::PhotoStatus::Retrying,
        _ => pb::PhotoStatus::Unspecified,
    }
}

pub fn photo_to_pb(photo: &PhotoRow) -> pb::Photo {
    pb::Photo {
        id: photo.id.to_string(),
        event_id: photo.event_id.to_string(),
        external_id: photo.external_id.clone().unwrap_or_default(),
        object_key: photo.object_key.clone(),
        status: status_to_pb(&photo.status) as i32,
        face_count: photo.face_count.max(0) as u32,
        failure_code: photo.failure_code.clone().unwrap_or_default(),
        failure_reason: photo.failure_reason.clone().unwrap_or_default(),
        created_at: Some(timestamp(photo.created_at)),
        indexed_at: photo.indexed_at.map(timestamp),
        size_bytes: photo.size_bytes.max(0) as u64,
        file_name: photo.file_name.clone().unwrap_or_default(),
        content_type: photo.content_type.clone().unwrap_or_default(),
        width: photo.width.unwrap_or(0).max(0) as u32,
        height: photo.height.unwrap_or(0).max(0) as u32,
        captured_at: photo.captured_at.map(timestamp),
        last_error_code: photo.last_error_code.clone().unwrap_or_default(),
        last_error_reason: photo.last_error_reason.clone().unwrap_or_default(),
        attempts: photo.attempts.max(0) as u32,
        next_attempt_at: photo.next_attempt_at.map(timestamp),
        retry_until: photo.retry_until.map(timestamp),
    }
}

/// A request's timestamp, or INVALID_ARGUMENT naming `field`.
pub fn from_timestamp(
    field: &str,
    t: prost_types::Timestamp,
) -> Result<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(t.seconds, t.nanos.clamp(0, 999_999_999) as u32)
        .map(|t| chrono::SubsecRound::trunc_subsecs(t, 6))
        .ok_or_else(|| Error::invalid_field(field, format!("{field} is out of range")))
}

fn consent_from_pb(consent: Option<pb::Consent>) -> Consent {
    let pb::Consent {
        given,
        policy_version,
    } = consent.unwrap_or_default();
    Consent {
        given,
        policy_version,
    }
}

pub fn tiers_from_pb(tiers: i32) -> Result<Tiers> {
    match pb::Tiers::try_from(tiers) {
        Ok(pb::Tiers::Unspecified | pb::Tiers::All) => Ok(Tiers::All),
        Ok(pb::Tiers::MatchOnly) => Ok(Tiers::MatchOnly),
        Err(_) => Err(Error::invalid_field(
            "tiers",
            format!("unknown tiers {tiers}"),
        )),
    }
}

/// Names person `p` of a query in errors: the searcher, then `together[i]`.
pub fn person_field(p: usize) -> String {
    match p {
        0 => "selfie".to_string(),
        n => format!("together[{}]", n - 1),
    }
}

fn companions(together: Vec<pb::Companion>) -> Result<Vec<Person>> {
    together
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let pb::Companion { selfies, face_ids } = c;
            Ok(Person {
                selfies,
                faces: face_ids
                    .iter()
                    .enumerate()
                    .map(|(j, id)| FaceId::parse(&format!("together[{i}].face_ids[{j}]"), id))
                    .collect::<Result<_>>()?,
            })
        })
        .collect()
}

pub fn match_to_pb(m: &PhotoMatch) -> pb::PhotoMatch {
    pb::PhotoMatch {
        photo: Some(photo_to_pb(&m.photo)),
        similarity: m.similarity,
        face_box: Some(m.face_box.into()),
        tier: match m.tier {
            Tier::Match => pb::MatchTier::Match,
            Tier::Possible => pb::MatchTier::Possible,
        } as i32,
        faces: m
            .faces
            .iter()
            .map(|f| pb::FaceMatch {
                face_id: f.id.to_string(),
                face_box: Some(f.face_box.into()),
                similarity: f.similarity,
            })
            .collect(),
    }
}

fn webhook_to_pb(hook: &crate::webhooks::WebhookRow) -> pb::Webhook {
    pb::Webhook {
        id: hook.id.to_string(),
        url: hook.url.clone(),
        events: hook.events.clone(),
        created_at: Some(timestamp(hook.created_at)),
    }
}

fn delivery_to_pb(d: &crate::webhooks::DeliveryRow) -> pb::WebhookDelivery {
    pb::WebhookDelivery {
        id: d.id.to_string(),
        webhook_id: d.webhook_id.to_string(),
        event_type: d.event_type.clone(),
        body: d.body.clone(),
        state: d.state.clone(),
        attempts: d.attempts.max(0) as u32,
        last_status: d.last_status.unwrap_or(0).max(0) as u32,
        last_error: d.last_error.clone().unwrap_or_default(),
        created_at: Some(timestamp(d.created_at)),
        next_attempt_at: (d.state == "pending").then(|| timestamp(d.next_attempt_at)),
        delivered_at: d.delivered_at.map(timestamp),
    }
}

fn progress_to_pb(counts: &EventCounts, completed: bool) -> pb::IndexingProgress {
    pb::IndexingProgress {
        photos_total: counts.total,
        photos_pending: counts.pending,
        photos_indexed: counts.indexed,
        photos_failed: counts.failed,
        faces_total: counts.faces,
        completed,
        photos_retrying: counts.retrying,
    }
}

type WatchStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<pb::WatchEventResponse, Status>> + Send>>;

#[tonic::async_trait]
impl FacePassService for PublicApi {
    type WatchEventStream = WatchStream;

    async fn watch_event(
        &self,
        request: Request<pb::WatchEventRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        let studio = self.studio(&request, Scope::Read).await?;
        let event_id = parse_id("event_id", &request.into_inner().event_id)?;
        // Unknown events fail the call itself, not the first message.
        self.gateway.catalog.get_event(studio, event_id).await?;
        let updates = crate::watch::watch(self.gateway.clone(), studio, event_id).map(|u| {
            u.map(|u| pb::WatchEventResponse {
                update: Some(match u {
                    Update::Progress { counts, completed } => {
                        pb::watch_event_response::Update::Progress(progress_to_pb(
                            &counts, completed,
                        ))
                    }
                    Update::Photo(photo) => {
                        pb::watch_event_response::Update::Photo(photo_to_pb(&photo))
                    }
                }),
            })
            .map_err(Status::from)
        });
        Ok(Response::new(Box::pin(updates)))
    }

    async fn create_event(
        &self,
        request: Request<pb::CreateEventRequest>,
    ) -> Result<Response<pb::CreateEventResponse>, Status> {
        let studio = self.studio(&request, Scope::Upload).await?;
        let pb::CreateEventRequest {
            name,
            external_id,
            retain_until,
        } = request.into_inner();
        let retain_until = retain_until
            .map(|t| from_timestamp("retain_until", t))
            .transpose()?;
        let (event, created) = self
            .gateway
            .create_event(studio, &name, &external_id, retain_until)
            .await?;
        // A repeated request returns the event as it is now.
        let (event, counts) = if created {
            (event, EventCounts::default())
        } else {
            self.gateway.event_with_counts(studio, event.id).await?
        };
        Ok(Response::new(pb::CreateEventResponse {
            event: Some(event_to_pb(&event, &counts)),
            created,
        }))
    }

    async fn get_event(
        &self,
        request: Request<pb::GetEventRequest>,
    ) -> Result<Response<pb::GetEventResponse>, Status> {
        let studio = self.studio(&request, Scope::Read).await?;
        let pb::GetEventRequest { event_id } = request.into_inner();
        let event_id = parse_id("event_id", &event_id)?;
        let (event, counts) = self.gateway.event_with_counts(studio, event_id).await?;
        Ok(Response::new(pb::GetEventResponse {
            event: Some(event_to_pb(&event, &counts)),
        }))
    }

    async fn list_events(
        &self,
        request: Request<pb::ListEventsRequest>,
    ) -> Result<Response<pb::ListEventsResponse>, Status> {
        let studio = self.studio(&request, Scope::Read).await?;
        let pb::ListEventsRequest {
            page_size,
            page_token,
        } = request.into_inner();
        let events = self
            .gateway
            .list_events(studio, PageRequest::new(page_size, &page_token))
            .await?;
        Ok(Response::new(pb::ListEventsResponse {
            events: events
                .items
                .iter()
                .map(|(e, c)| event_to_pb(e, c))
                .collect(),
            next_page_token: events.next_page_token,
        }))
    }

    async fn delete_event(
        &self,
        request: Request<pb::DeleteEventRequest>,
    ) -> Result<Response<pb::DeleteEventResponse>, Status> {
        let caller = self.caller(&request, Scope::Upload).await?;
        let studio = caller.studio;
        let pb::DeleteEventRequest { event_id } = request.into_inner();
        let event_id = parse_id("event_id", &event_id)?;
        let (photos, faces) = self
            .gateway
            .delete_event(studio, event_id, &caller.actor())
            .await?;
        Ok(Response::new(pb::DeleteEventResponse {
            photos_deleted: photos,
            faces_deleted: faces,
        }))
    }

    async fn upload_photo(
        &self,
        request: Request<pb::UploadPhotoRequest>,
    ) -> Result<Response<pb::UploadPhotoResponse>, Status> {
        let studio = self.studio(&request, Scope::Upload).await?;
        let pb::UploadPhotoRequest {
            event_id,
            external_id,
            content,
            file_name,
            priority,
        } = request.into_inner();
        let event_id = parse_id("event_id", &event_id)?;
        let new = NewUpload {
            external_id: &external_id,
            file_name: &file_name,
            priority: Priority::from_pb(priority, Priority::Live)?,
        };
        let (photo, created) = self
            .gateway
            .upload_photo(studio, event_id, new, content)
            .await?;
        Ok(Response::new(pb::UploadPhotoResponse {
            photo: Some(photo_to_pb(&photo)),
            created,
        }))
    }

    async fn register_photo(
        &self,
        request: Request<pb::RegisterPhotoRequest>,
    ) -> Result<Response<pb::RegisterPhotoResponse>, Status> {
        let studio = self.studio(&request, Scope::Upload).await?;
        let pb::RegisterPhotoRequest {
            event_id,
            external_id,
            object_key,
            file_name,
            priority,
        } = request.into_inner();
        let event_id = parse_id("event_id", &event_id)?;
        // The key's text, prefix and shape are checked by `register_photo`.
        let new = NewRegistration {
            external_id: &external_id,
            object_key: &object_key,
            file_name: &file_name,
            priority: Priority::from_pb(priority, Priority::Live)?,
        };
        let (photo, created) = self.gateway.register_photo(studio, event_id, new).await?;
        Ok(Response::new(pb::RegisterPhotoResponse {
            photo: Some(photo_to_pb(&photo)),
            created,
        }))
    }

    async fn upload_photo_stream(
        &self,
        request: Request<tonic::Streaming<pb::UploadPhotoStreamRequest>>,
    ) -> Result<Response<pb::UploadPhotoStreamResponse>, Status> {
        let studio = self.studio(&request, Scope::Upload).await?;
        let mut stream = request.into_inner();
        let header = match stream.message().await? {
            Some(pb::UploadPhotoStreamRequest {
                part: Some(pb::upload_photo_stream_request::Part::Header(h)),
            }) => h,
            _ => {
                return Err(Error::invalid_field(
                    "header",
                    "the first message of UploadPhotoStream must be the header",
                )
                .into())
            }
        };
        let pb::UploadPhotoHeader {
            event_id,
            external_id,
            file_name,
            priority,
        } = header;
        let event_id = parse_id("event_id", &event_id)?;
        let priority = Priority::from_pb(priority, Priority::Live)?;
        let chunks = stream.map(|m| match m {
            Ok(pb::UploadPhotoStreamRequest {
                part: Some(pb::upload_photo_stream_request::Part::Chunk(chunk)),
            }) => Ok(chunk),
            Ok(_) => Err(Error::invalid_field(
                "chunk",
                "after the header, every message of UploadPhotoStream must be a chunk",
            )),
            // The client went away or broke the stream: nothing is kept.
            Err(status) => Err(Error::invalid(format!(
                "the upload stream broke: {}",
                status.message()
            ))),
        });
        let new = NewUpload {
            external_id: &external_id,
            file_name: &file_name,
            priority,
        };
        let (photo, created) = self
            .gateway
            .upload_stream(studio, event_id, new, chunks)
            .await?;
        Ok(Response::new(pb::UploadPhotoStreamResponse {
            photo: Some(photo_to_pb(&photo)),
            created,
        }))
    }

    async fn create_webhook(
        &self,
        request: Request<pb::CreateWebhookRequest>,
    ) -> Result<Response<pb::CreateWebhookResponse>, Status> {
        let studio = self.studio(&request, Scope::Admin).await?;
        let pb::CreateWebhookRequest { url, events } = request.into_inner();
        let hook = self
            .gateway
            .catalog
            .create_webhook(
                studio,
                &url,
                &events,
                self.gateway.config.webhook_allow_http,
            )
            .await?;
        tracing::info!(webhook = %hook.id, "webhook created");
        Ok(Response::new(pb::CreateWebhookResponse {
            webhook: Some(webhook_to_pb(&hook)),
            secret: hook.secret,
        }))
    }

    async fn list_webhooks(
        &self,
        request: Request<pb::ListWebhooksRequest>,
    ) -> Result<Response<pb::ListWebhooksResponse>, Status> {
        let studio = self.studio(&request, Scope::Admin).await?;
        let hooks = self.gateway.catalog.list_webhooks(studio).await?;
        Ok(Response::new(pb::ListWebhooksResponse {
            webhooks: hooks.iter().map(webhook_to_pb).collect(),
        }))
    }

    async fn delete_webhook(
        &self,
        request: Request<pb::DeleteWebhookRequest>,
    ) -> Result<Response<pb::DeleteWebhookResponse>, Status> {
        let studio = self.studio(&request, Scope::Admin).await?;
        let id = parse_id("webhook_id", &request.into_inner().webhook_id)?;
        self.gateway.catalog.delete_webhook(studio, id).await?;
        Ok(Response::new(pb::DeleteWebhookResponse {}))
    }

    async fn list_webhook_deliveries(
        &self,
        request: Request<pb::ListWebhookDeliveriesRequest>,
    ) -> Result<Response<pb::ListWebhookDeliveriesResponse>, Status> {
        let studio = self.studio(&request, Scope::Admin).await?;
        let pb::ListWebhookDeliveriesRequest { webhook_id, limit } = request.into_inner();
        let id = parse_id("webhook_id", &webhook_id)?;
        let limit = match limit {
            0 => 100,
            n if n > 500 => {
                return Err(Error::invalid_field("limit", "limit is at most 500").into())
            }
            n => n as i64,
        };
        let rows = self
            .gateway
            .catalog
            .list_deliveries(studio, id, limit)
            .await?;
        Ok(Response::new(pb::ListWebhookDeliveriesResponse {
            deliveries: rows.iter().map(delivery_to_pb).collect(),
        }))
    }

    async fn replay_webhook_delivery(
        &self,
        request: Request<pb::ReplayWebhookDeliveryRequest>,
    ) -> Result<Response<pb::ReplayWebhookDeliveryResponse>, Status> {
        let studio = self.studio(&request, Scope::Admin).await?;
        let id = parse_id("delivery_id", &request.into_inner().delivery_id)?;
        let row = self.gateway.catalog.replay_delivery(studio, id).await?;
        tracing::info!(delivery = %row.id, replayed = %id, "webhook delivery replayed");
        Ok(Response::new(pb::ReplayWebhookDeliveryResponse {
            delivery: Some(delivery_to_pb(&row)),
        }))
    }

    async fn register_photos(
        &self,
        request: Request<pb::RegisterPhotosRequest>,
    ) -> Result<Response<pb::RegisterPhotosResponse>, Status> {
        let studio = self.studio(&request, Scope::Upload).await?;
        let pb::RegisterPhotosRequest {
            event_id,
            items,
            priority,
        } = request.into_inner();
        let event_id = parse_id("event_id", &event_id)?;
        let priority = Priority::from_pb(priority, Priority::Bulk)?;
        let items: Vec<NewRegistration<'_>> = items
            .iter()
            .map(|i| NewRegistration {
                external_id: &i.external_id,
                object_key: &i.object_key,
                file_name: &i.file_name,
                priority,
            })
            .collect();
        let results = self.gateway.register_many(studio, event_id, &items).await?;
        Ok(Response::new(pb::RegisterPhotosResponse {
            results: results
                .into_iter()
                .map(|r| match r {
                    Ok((photo, created)) => pb::RegisterPhotosResult {
                        result: Some(pb::register_photos_result::Result::Photo(photo_to_pb(
                            &photo,
                        ))),
                        created,
                    },
                    Err(e) => pb::RegisterPhotosResult {
                        result: Some(pb::register_photos_result::Result::Error(pb::ItemError {
                            code: e.code.as_str().to_string(),
                            message: e.message,
                            field: e.field.unwrap_or_default(),
                        })),
                        created: false,
                    },
                })
                .collect(),
        }))
    }

    async fn get_photo(
        &self,
        request: Request<pb::GetPhotoRequest>,
    ) -> Result<Response<pb::GetPhotoResponse>, Status> {
        let studio = self.studio(&request, Scope::Read).await?;
        let photo_id = parse_id("photo_id", &request.into_inner().photo_id)?;
        let photo = self.gateway.catalog.get_photo(studio, photo_id).await?;
        Ok(Response::new(pb::GetPhotoResponse {
            photo: Some(photo_to_pb(&photo)),
        }))
    }

    async fn list_photos(
        &self,
        request: Request<pb::ListPhotosRequest>,
    ) -> Result<Response<pb::ListPhotosResponse>, Status> {
        let studio = self.studio(&request, Scope::Read).await?;
        let pb::ListPhotosRequest {
            event_id,
            status,
            page_size,
            page_token,
        } = request.into_inner();
        let event_id = parse_id("event_id", &event_id)?;
        let status = match pb::PhotoStatus::try_from(status) {
            Ok(pb::PhotoStatus::Unspecified) => None,
            Ok(pb::PhotoStatus::Pending) => Some(STATUS_PENDING),
            Ok(pb::PhotoStatus::Indexed) => Some(STATUS_INDEXED),
            Ok(pb::PhotoStatus::Failed) => Some(STATUS_FAILED),
            Ok(pb::PhotoStatus::Retrying) => Some(STATUS_RETRYING),
            Err(_) => return Err(Error::invalid(format!("unknown status {status}")).into()),
        };
        let photos = self
            .gateway
            .list_photos(
                studio,
                event_id,
                status,
                PageRequest::new(page_size, &page_token),
            )
            .await?;
        Ok(Response::new(pb::ListPhotosResponse {
            photos: photos.items.iter().map(photo_to_pb).collect(),
            next_page_token: photos.next_page_token,
        }))
    }

    async fn delete_photo(
        &self,
        request: Request<pb::DeletePhotoRequest>,
    ) -> Result<Response<pb::DeletePhotoResponse>, Status> {
        let caller = self.caller(&request, Scope::Upload).await?;
        let studio = caller.studio;
        let photo_id = parse_id("photo_id", &request.into_inner().photo_id)?;
        let faces = self
            .gateway
            .delete_photo(studio, photo_id, &caller.actor())
            .await?;
        Ok(Response::new(pb::DeletePhotoResponse {
            faces_deleted: faces,
        }))
    }

    async fn retry_photo(
        &self,
        request: Request<pb::RetryPhotoRequest>,
    ) -> Result<Response<pb::RetryPhotoResponse>, Status> {
        let studio = self.studio(&request, Scope::Upload).await?;
        let pb::RetryPhotoRequest { photo_id } = request.into_inner();
        let photo_id = parse_id("photo_id", &photo_id)?;
        let (photo, _) = self.gateway.retry_photo(studio, photo_id).await?;
        Ok(Response::new(pb::RetryPhotoResponse {
            photo: Some(photo_to_pb(&photo)),
        }))
    }

    async fn retry_failed_photos(
        &self,
        request: Request<pb::RetryFailedPhotosRequest>,
    ) -> Result<Response<pb::RetryFailedPhotosResponse>, Status> {
        let studio = self.studio(&request, Scope::Upload).await?;
        let pb::RetryFailedPhotosRequest {
            event_id,
            failure_code,
        } = request.into_inner();
        let event_id = parse_id("event_id", &event_id)?;
        let failure_code = (!failure_code.is_empty()).then_some(failure_code);
        let photos_requeued = self
            .gateway
            .retry_failed(studio, event_id, failure_code)
            .await?;
        Ok(Response::new(pb::RetryFailedPhotosResponse {
            photos_requeued,
        }))
    }

    async fn search_by_selfie(
        &self,
        request: Request<pb::SearchBySelfieRequest>,
    ) -> Result<Response<pb::SearchBySelfieResponse>, Status> {
        let studio = self.studio(&request, Scope::Search).await?;
        let pb::SearchBySelfieRequest {
            event_id,
            selfie,
            limit,
            more_selfies,
            together,
            tiers,
            consent,
        } = request.into_inner();
        let event_id = parse_id("event_id", &event_id)?;
        let tiers = tiers_from_pb(tiers)?;
        let consent = consent_from_pb(consent);
        let policy_version = consent.version()?;
        if selfie.is_empty() {
            return Err(Error::invalid_field("selfie", "selfie is empty").into());
        }
        // tonic has read the message already; the share bounds what the
        // searches hold downstream (the detector's copies).
        let selfie_bytes = selfie.len()
            + more_selfies.iter().map(|s| s.len()).sum::<usize>()
            + together
                .iter()
                .flat_map(|t| t.selfies.iter().map(|s| s.len()))
                .sum::<usize>();
        let _share = self.gateway.selfie_permit(selfie_bytes).await?;
        let mut people = vec![Person {
            selfies: std::iter::once(selfie).chain(more_selfies).collect(),
            faces: Vec::new(),
        }];
        people.extend(companions(together)?);
        check_people(&people, person_field)?;
        check_limit(limit)?;
        let event = self.gateway.catalog.get_event(studio, event_id).await?;
        let consent = policy_version.map(|v| (v, Channel::Api));
        let result = self
            .gateway
            .search(&event, people, limit, tiers, consent)
            .await?;
        Ok(Response::new(pb::SearchBySelfieResponse {
            selfie_face: result.selfie_face.map(Into::into),
            matches: result.matches.iter().map(match_to_pb).collect(),
        }))
    }

    async fn search_by_face(
        &self,
        request: Request<pb::SearchByFaceRequest>,
    ) -> Result<Response<pb::SearchByFaceResponse>, Status> {
        let studio = self.studio(&request, Scope::Search).await?;
        let pb::SearchByFaceRequest {
            face_id,
            limit,
            together,
            tiers,
            consent,
        } = request.into_inner();
        let face = FaceId::parse("face_id", &face_id)?;
        let tiers = tiers_from_pb(tiers)?;
        let consent = consent_from_pb(consent);
        let policy_version = consent.version()?;
        let mut people = vec![Person {
            selfies: Vec::new(),
            faces: vec![face],
        }];
        people.extend(companions(together)?);
        check_people(&people, person_field)?;
        check_limit(limit)?;
        let event = self.gateway.face_event(studio, face).await?;
        let consent = policy_version.map(|v| (v, Channel::Api));
        let result = self
            .gateway
            .search(&event, people, limit, tiers, consent)
            .await?;
        Ok(Response::new(pb::SearchByFaceResponse {
            matches: result.matches.iter().map(match_to_pb).collect(),
        }))
    }

    async fn list_photo_faces(
        &self,
        request: Request<pb::ListPhotoFacesRequest>,
    ) -> Result<Response<pb::ListPhotoFacesResponse>, Status> {
        let studio = self.studio(&request, Scope::Read).await?;
        let pb::ListPhotoFacesRequest { photo_id } = request.into_inner();
        let photo_id = parse_id("photo_id", &photo_id)?;
        let faces = self.gateway.photo_faces(studio, photo_id).await?;
        Ok(Response::new(pb::ListPhotoFacesResponse {
            faces: faces
                .into_iter()
                .map(|f| pb::IndexedFace {
                    id: f.id.to_string(),
                    photo_id: f.id.photo_id.to_string(),
                    face: Some(f.face.into()),
                    quality: f.quality,
                })
                .collect(),
        }))
    }

    async fn delete_face(
        &self,
        request: Request<pb::DeleteFaceRequest>,
    ) -> Result<Response<pb::DeleteFaceResponse>, Status> {
        let caller = self.caller(&request, Scope::Upload).await?;
        let studio = caller.studio;
        let pb::DeleteFaceRequest { face_id } = request.into_inner();
        let face = FaceId::parse("face_id", &face_id)?;
        let deleted = self
            .gateway
            .delete_face(studio, face, &caller.actor())
            .await?;
        Ok(Response::new(pb::DeleteFaceResponse {
            faces_deleted: deleted,
        }))
    }

    async fn rotate_share_link(
        &self,
        request: Request<pb::RotateShareLinkRequest>,
    ) -> Result<Response<pb::RotateShareLinkResponse>, Status> {
        let studio = self.studio(&request, Scope::Admin).await?;
        let pb::RotateShareLinkRequest { event_id } = request.into_inner();
        let event_id = parse_id("event_id", &event_id)?;
        let event = self
            .gateway
            .catalog
            .rotate_share_token(studio, event_id)
            .await?;
        let (event, counts) = self.gateway.event_with_counts(studio, event.id).await?;
        tracing::info!(%event_id, "share link rotated");
        Ok(Response::new(pb::RotateShareLinkResponse {
            event: Some(event_to_pb(&event, &counts)),
        }))
    }

    async fn update_share_link(
        &self,
        request: Request<pb::UpdateShareLinkRequest>,
    ) -> Result<Response<pb::UpdateShareLinkResponse>, Status> {
        let studio = self.studio(&request, Scope::Admin).await?;
        let pb::UpdateShareLinkRequest {
            event_id,
            enabled,
            expires_at,
        } = request.into_inner();
        let event_id = parse_id("event_id", &event_id)?;
        let expires_at = expires_at
            .map(|t| from_timestamp("expires_at", t))
            .transpose()?;
        self.gateway
            .catalog
            .update_share_link(studio, event_id, enabled, expires_at)
            .await?;
        let (event, counts) = self.gateway.event_with_counts(studio, event_id).await?;
        tracing::info!(%event_id, enabled, expires = ?expires_at, "share link updated");
        Ok(Response::new(pb::UpdateShareLinkResponse {
            event: Some(event_to_pb(&event, &counts)),
        }))
    }

    async fn set_event_retention(
        &self,
        request: Request<pb::SetEventRetentionRequest>,
    ) -> Result<Response<pb::SetEventRetentionResponse>, Status> {
        let studio = self.studio(&request, Scope::Upload).await?;
        let pb::SetEventRetentionRequest {
            event_id,
            retain_until,
        } = request.into_inner();
        let event_id = parse_id("event_id", &event_id)?;
        let retain_until = retain_until
            .map(|t| from_timestamp("retain_until", t))
            .transpose()?;
        self.gateway
            .catalog
            .set_retention(studio, event_id, retain_until)
            .await?;
        let (event, counts) = self.gateway.event_with_counts(studio, event_id).await?;
        tracing::info!(%event_id, retain_until = ?retain_until, "event retention set");
        Ok(Response::new(pb::SetEventRetentionResponse {
            event: Some(event_to_pb(&event, &counts)),
        }))
    }

    async fn list_audit_log(
        &self,
        request: Request<pb::ListAuditLogRequest>,
    ) -> Result<Response<pb::ListAuditLogResponse>, Status> {
        let studio = self.studio(&request, Scope::Read).await?;
        let pb::ListAuditLogRequest {
            page_size,
            page_token,
        } = request.into_inner();
        let page = self
            .gateway
            .audit_page(studio, PageRequest::new(page_size, &page_token))
            .await?;
        Ok(Response::new(pb::ListAuditLogResponse {
            entries: page
                .items
                .iter()
                .map(|r| pb::AuditEntry {
                    at: Some(timestamp(r.at)),
                    actor: r.actor.clone(),
                    action: r.action.clone(),
                    event_id: r.event_id.map(|e| e.to_string()).unwrap_or_default(),
                    photo_id: r.photo_id.map(|p| p.to_string()).unwrap_or_default(),
                    counts: r
                        .counts
                        .as_object()
                        .map(|o| {
                            o.iter()
                                .filter_map(|(k, v)| Some((k.clone(), v.as_u64()?)))
                                .collect()
                        })
                        .unwrap_or_default(),
                })
                .collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn forget_guest(
        &self,
        request: Request<pb::ForgetGuestRequest>,
    ) -> Result<Response<pb::ForgetGuestResponse>, Status> {
        let caller = self.caller(&request, Scope::Search).await?;
        let studio = caller.studio;
        let pb::ForgetGuestRequest { event_id, selfie } = request.into_inner();
        let event_id = parse_id("event_id", &event_id)?;
        let _share = self.gateway.selfie_permit(selfie.len()).await?;
        let event = self.gateway.catalog.get_event(studio, event_id).await?;
        let (faces, photos) = self
            .gateway
            .forget_guest(&event, selfie, &caller.actor())
            .await?;
        Ok(Response::new(pb::ForgetGuestResponse {
            faces_deleted: faces,
            photo_ids: photos.iter().map(Uuid::to_string).collect(),
        }))
    }
}
