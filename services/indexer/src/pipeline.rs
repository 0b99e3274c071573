//! Indexing one photo: the shared face-analysis client (detector, then
//! embedder), then the search service. Any failure comes back as a FacePass
//! [`Error`] whose code says whether a retry can help (one policy:
//! `facepass_analysis::peer`).

use facepass_analysis::{peer, AnalyzedFace, FaceAnalysis, ImageSource, PreviewSpec};
use facepass_core::{preview, Error};
use facepass_proto::domain::{ModelId, PhotoRef};
use facepass_proto::events::v1::PhotoUploaded;
use facepass_proto::search::v1 as srch;
use facepass_server::auth::AttachToken;
use facepass_server::balance::PeerChannel as Channel;
use tonic::service::interceptor::InterceptedService;

type Authed = InterceptedService<Channel, AttachToken>;

/// The face-analysis client and the face store the indexer drives.
#[derive(Clone)]
pub struct Pipeline {
    faces: FaceAnalysis,
    search: srch::search_service_client::SearchServiceClient<Authed>,
}

/// The outcome of indexing one photo.
#[derive(Debug, Clone, PartialEq)]
pub struct Indexed {
    pub face_count: u32,
    pub model: ModelId,
    pub width: u32,
    pub height: u32,
    pub content_type: Option<String>,
    pub captured_at: Option<std::time::SystemTime>,
}

/// One analysed face as the face store's contract carries it.
fn stored_face(index: usize, face: &AnalyzedFace) -> srch::Face {
    srch::Face {
        face_index: index as u32,
        embedding: face.embedding.values.clone(),
        face: Some(face.face.into()),
        quality: face.quality(),
    }
}

impl Pipeline {
    pub fn new(
        detector: Channel,
        embedder: Channel,
        search: Channel,
        token: &str,
        max_message_bytes: usize,
    ) -> Self {
        Pipeline {
            faces: FaceAnalysis::new(detector, embedder, token, max_message_bytes),
            search: srch::search_service_client::SearchServiceClient::with_interceptor(
                search,
                AttachToken::new(token),
            )
            .max_encoding_message_size(max_message_bytes),
        }
    }

    /// Detects, embeds and stores the faces of one photo. Idempotent: the
    /// store replaces the photo's faces as one operation.
    pub async fn index(&self, photo: &PhotoUploaded) -> Result<Indexed, Error> {
        let target = PhotoRef::parse(&photo.studio_id, &photo.event_id, &photo.photo_id)?;
        // The guest's thumbnail and screen-size view, written by the
        // detector from the image it decodes anyway.
        let previews: Vec<PreviewSpec> = preview::Size::ALL
            .into_iter()
            .map(|size| PreviewSpec {
                max_side: size.max_side(),
                object_key: preview::key(
                    &target.event.studio,
                    &target.event.event,
                    &target.photo,
                    size,
                ),
            })
            .collect();
        let analyzed = self
            .faces
            .analyze_photo(ImageSource::ObjectKey(photo.object_key.clone()), &previews)
            .await?;
        let faces: Vec<srch::Face> = analyzed
            .faces
            .iter()
            .enumerate()
            .map(|(i, face)| stored_face(i, face))
            .collect();
        let stored = self
            .search
            .clone()
            .upsert_photo_faces(srch::UpsertPhotoFacesRequest {
                studio_id: target.event.studio.to_string(),
                event_id: target.event.event.to_string(),
                photo_id: target.photo.to_string(),
                model: analyzed.model.to_string(),
                faces,
            })
            .await
            .map_err(peer("search"))?
            .into_inner();
        Ok(Indexed {
            // What the store kept: a forgotten guest's faces are not stored.
            face_count: stored.faces_stored,
            model: analyzed.model,
            width: analyzed.width,
            height: analyzed.height,
            content_type: analyzed.content_type,
            captured_at: analyzed.captured_at,
        })
    }
}
