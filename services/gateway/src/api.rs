//! `facepass.v1.FacePassService`: the public gRPC API for Pixora, a thin
//! adapter over [`Gateway`].

use std::sync::Arc;

use facepass_core::{parse_id, Error, Result};
use facepass_proto::v1 as pb;
use pb::face_pass_service_server::FacePassService;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::catalog::{
    EventCounts, EventRow, PhotoRow, STATUS_FAILED, STATUS_INDEXED, STATUS_PENDING,
};
use crate::domain::{Gateway, NewRegistration, NewUpload, PageRequest, Tier};

pub struct PublicApi {
    gateway: Arc<Gateway>,
}

impl PublicApi {
    pub fn new(gateway: Arc<Gateway>) -> Self {
        PublicApi { gateway }
    }

    async fn studio<T>(&self, request: &Request<T>) -> Result<Uuid> {
        let header = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        crate::auth::studio(&self.gateway.catalog, header).await
    }
}

fn timestamp(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
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
        share_token: event.share_token.clone(),
        created_at: Some(timestamp(event.created_at)),
        photos_total: counts.total,
        photos_pending: counts.pending,
        photos_indexed: counts.indexed,
        photos_failed: counts.failed,
        faces_total: counts.faces,
    }
}

pub fn status_to_pb(status: &str) -> pb::PhotoStatus {
    match status {
        STATUS_PENDING => pb::PhotoStatus::Pending,
        STATUS_INDEXED => pb::PhotoStatus::Indexed,
        STATUS_FAILED => pb::PhotoStatus::Failed,
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
    }
}

#[tonic::async_trait]
impl FacePassService for PublicApi {
    async fn create_event(
        &self,
        request: Request<pb::CreateEventRequest>,
    ) -> Result<Response<pb::CreateEventResponse>, Status> {
        let studio = self.studio(&request).await?;
        let pb::CreateEventRequest { name, external_id } = request.into_inner();
        let (event, created) = self
            .gateway
            .create_event(studio, &name, &external_id)
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
        let studio = self.studio(&request).await?;
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
        let studio = self.studio(&request).await?;
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
        let studio = self.studio(&request).await?;
        let pb::DeleteEventRequest { event_id } = request.into_inner();
        let event_id = parse_id("event_id", &event_id)?;
        let (photos, faces) = self.gateway.delete_event(studio, event_id).await?;
        Ok(Response::new(pb::DeleteEventResponse {
            photos_deleted: photos,
            faces_deleted: faces,
        }))
    }

    async fn upload_photo(
        &self,
        request: Request<pb::UploadPhotoRequest>,
    ) -> Result<Response<pb::UploadPhotoResponse>, Status> {
        let studio = self.studio(&request).await?;
        let pb::UploadPhotoRequest {
            event_id,
            external_id,
            content,
            file_name,
        } = request.into_inner();
        let event_id = parse_id("event_id", &event_id)?;
        let new = NewUpload {
            external_id: &external_id,
            file_name: &file_name,
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
        let studio = self.studio(&request).await?;
        let pb::RegisterPhotoRequest {
            event_id,
            external_id,
            object_key,
            file_name,
        } = request.into_inner();
        let event_id = parse_id("event_id", &event_id)?;
        // The key's text, prefix and shape are checked by `register_photo`.
        let new = NewRegistration {
            external_id: &external_id,
            object_key: &object_key,
            file_name: &file_name,
        };
        let (photo, created) = self.gateway.register_photo(studio, event_id, new).await?;
        Ok(Response::new(pb::RegisterPhotoResponse {
            photo: Some(photo_to_pb(&photo)),
            created,
        }))
    }

    async fn get_photo(
        &self,
        request: Request<pb::GetPhotoRequest>,
    ) -> Result<Response<pb::GetPhotoResponse>, Status> {
        let studio = self.studio(&request).await?;
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
        let studio = self.studio(&request).await?;
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
        let studio = self.studio(&request).await?;
        let photo_id = parse_id("photo_id", &request.into_inner().photo_id)?;
        let faces = self.gateway.delete_photo(studio, photo_id).await?;
        Ok(Response::new(pb::DeletePhotoResponse {
            faces_deleted: faces,
        }))
    }

    async fn search_by_selfie(
        &self,
        request: Request<pb::SearchBySelfieRequest>,
    ) -> Result<Response<pb::SearchBySelfieResponse>, Status> {
        let studio = self.studio(&request).await?;
        let pb::SearchBySelfieRequest {
            event_id,
            selfie,
            limit,
        } = request.into_inner();
        let event_id = parse_id("event_id", &event_id)?;
        let event = self.gateway.catalog.get_event(studio, event_id).await?;
        let result = self.gateway.search_by_selfie(&event, selfie, limit).await?;
        Ok(Response::new(pb::SearchBySelfieResponse {
            selfie_face: Some(result.selfie_face.into()),
            matches: result
                .matches
                .iter()
                .map(|m| pb::PhotoMatch {
                    photo: Some(photo_to_pb(&m.photo)),
                    similarity: m.similarity,
                    face_box: Some(m.face_box.into()),
                    tier: match m.tier {
                        Tier::Match => pb::MatchTier::Match,
                        Tier::Possible => pb::MatchTier::Possible,
                    } as i32,
                })
                .collect(),
        }))
    }

    async fn forget_guest(
        &self,
        request: Request<pb::ForgetGuestRequest>,
    ) -> Result<Response<pb::ForgetGuestResponse>, Status> {
        let studio = self.studio(&request).await?;
        let pb::ForgetGuestRequest { event_id, selfie } = request.into_inner();
        let event_id = parse_id("event_id", &event_id)?;
        let event = self.gateway.catalog.get_event(studio, event_id).await?;
        let (faces, photos) = self.gateway.forget_guest(&event, selfie).await?;
        Ok(Response::new(pb::ForgetGuestResponse {
            faces_deleted: faces,
            photo_ids: photos.iter().map(Uuid::to_string).collect(),
        }))
    }
}
