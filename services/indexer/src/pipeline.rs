//! Indexing one photo: detector, then embedder, then search. Any failure
//! comes back as a FacePass [`Error`] whose code says whether a retry can
//! help.

use facepass_core::Error;
use facepass_proto::detector::v1 as det;
use facepass_proto::embedder::v1 as emb;
use facepass_proto::events::v1::PhotoUploaded;
use facepass_proto::search::v1 as srch;
use facepass_server::auth::AttachToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

type Authed = InterceptedService<Channel, AttachToken>;

/// Clients of the three services the indexer drives.
#[derive(Clone)]
pub struct Pipeline {
    detector: det::detector_service_client::DetectorServiceClient<Authed>,
    embedder: emb::embedder_service_client::EmbedderServiceClient<Authed>,
    search: srch::search_service_client::SearchServiceClient<Authed>,
}

/// The outcome of indexing one photo.
#[derive(Debug, Clone, PartialEq)]
pub struct Indexed {
    pub face_count: u32,
    pub model: String,
}

fn peer(service: &str) -> impl Fn(tonic::Status) -> Error + '_ {
    move |status| {
        let mut err = Error::from_status(&status);
        err.message = format!("{service}: {}", err.message);
        err
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
        let auth = AttachToken::new(token);
        Pipeline {
            detector: det::detector_service_client::DetectorServiceClient::with_interceptor(
                detector,
                auth.clone(),
            )
            .max_decoding_message_size(max_message_bytes),
            embedder: emb::embedder_service_client::EmbedderServiceClient::with_interceptor(
                embedder,
                auth.clone(),
            )
            .max_encoding_message_size(max_message_bytes),
            search: srch::search_service_client::SearchServiceClient::with_interceptor(
                search, auth,
            )
            .max_encoding_message_size(max_message_bytes),
        }
    }

    /// Detects, embeds and stores the faces of one photo. Idempotent: the
    /// store replaces the photo's faces as one operation.
    pub async fn index(&self, photo: &PhotoUploaded) -> Result<Indexed, Error> {
        let detected = self
            .detector
            .clone()
            .detect(det::DetectRequest {
                source: Some(det::detect_request::Source::ObjectKey(
                    photo.object_key.clone(),
                )),
                mode: det::DetectMode::All as i32,
            })
            .await
            .map_err(peer("detector"))?
            .into_inner();

        let (embeddings, model) = if detected.faces.is_empty() {
            let info = self
                .embedder
                .clone()
                .get_model_info(emb::GetModelInfoRequest {})
                .await
                .map_err(peer("embedder"))?
                .into_inner();
            (Vec::new(), info.model)
        } else {
            let response = self
                .embedder
                .clone()
                .embed(emb::EmbedRequest {
                    faces: detected
                        .faces
                        .iter()
                        .map(|f| emb::AlignedFace {
                            rgb: f.aligned_crop.clone(),
                            width: 112,
                            height: 112,
                        })
                        .collect(),
                })
                .await
                .map_err(peer("embedder"))?
                .into_inner();
            (response.embeddings, response.model)
        };
        if embeddings.len() != detected.faces.len() {
            return Err(Error::internal(format!(
                "embedder returned {} embeddings for {} faces",
                embeddings.len(),
                detected.faces.len()
            )));
        }

        let faces: Vec<srch::Face> = detected
            .faces
            .iter()
            .zip(embeddings)
            .enumerate()
            .map(|(i, (face, embedding))| {
                let b = face.r#box.unwrap_or_default();
                srch::Face {
                    face_index: i as u32,
                    embedding: embedding.values,
                    bbox: vec![b.x1, b.y1, b.x2, b.y2],
                    landmarks: face.landmarks.iter().flat_map(|p| [p.x, p.y]).collect(),
                    det_score: face.score,
                    quality: face_quality(face.score, face.issues.len()),
                }
            })
            .collect();
        let face_count = faces.len() as u32;
        self.search
            .clone()
            .upsert_photo_faces(srch::UpsertPhotoFacesRequest {
                studio_id: photo.studio_id.clone(),
                event_id: photo.event_id.clone(),
                photo_id: photo.photo_id.clone(),
                model: model.clone(),
                faces,
            })
            .await
            .map_err(peer("search"))?;
        Ok(Indexed { face_count, model })
    }
}

/// A face's quality in [0, 1]: its detection score, lowered by a quarter
/// for each issue the detector reported (small, blurred, turned away, ...).
/// Kept with the face so a studio can hide or re-check weak faces.
pub fn face_quality(det_score: f32, issues: usize) -> f32 {
    let score = if det_score.is_finite() {
        det_score
    } else {
        0.0
    };
    (score * (1.0 - 0.25 * issues as f32)).clamp(0.0, 1.0)
}

#[cfg(test)]
mod quality_tests {
    use super::face_quality;

    #[test]
    fn issues_lower_quality_within_bounds() {
        assert_eq!(face_quality(0.9, 0), 0.9);
        assert!((face_quality(0.8, 1) - 0.6).abs() < 1e-6);
        assert_eq!(face_quality(0.9, 5), 0.0);
        assert_eq!(face_quality(f32::NAN, 0), 0.0);
        assert_eq!(face_quality(1.5, 0), 1.0);
    }
}
