//! The one face-analysis client: detect → align → embed against the detector
//! and embedder services. The gateway's selfie search and the indexer's
//! photo indexing both call it; neither knows the crop size, the model pack
//! identity or how to read a peer's failure.
//!
//! - [`FaceAnalysis::analyze_photo`]: every face of a stored photo, each
//!   with its embedding (indexing).
//! - [`FaceAnalysis::analyze_selfie`]: the main face of a selfie, or a clear
//!   NO_FACE / SELFIE_UNUSABLE error (selfie search, "forget me").
//! - [`peer`]: the policy that classifies a peer's failure (the caller's
//!   fault, retryable, permanent) and turns it into a FacePass error; also
//!   used for calls to the search service.
//!
//! The model pack identity (`name@version`, dimension, crop side) is resolved
//! once from the embedder's `GetModelInfo` and carried with every embedding;
//! if the embedder starts answering with another pack (a rolling upgrade),
//! the call fails as retryable and the identity is resolved again.

pub mod metrics;
mod policy;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use facepass_core::{Error, ErrorCode, Result};
use facepass_proto::detector::v1 as det;
use facepass_proto::domain::{
    embedding_from_pb, within, AlignedCrop, DetectedFace, Detection, Embedding, Face, ModelId,
    QualityIssue,
};
use facepass_proto::embedder::v1 as emb;
use facepass_server::auth::AttachToken;
use facepass_server::balance::PeerChannel as Channel;
use tonic::service::interceptor::InterceptedService;

pub use policy::{classify, peer, Failure};

type Authed = InterceptedService<Channel, AttachToken>;

/// What the embedder's model pack is: resolved once, carried with every
/// embedding.
#[derive(Debug, Clone, PartialEq)]
pub struct PackIdentity {
    pub model: ModelId,
    pub dimension: usize,
    /// Side of the square aligned crops the recogniser takes.
    pub crop_side: u32,
    pub licence: String,
}

/// A face with its embedding.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalyzedFace {
    pub face: Face,
    pub issues: Vec<QualityIssue>,
    pub embedding: Embedding,
}

impl AnalyzedFace {
    /// The face's quality in [0, 1]: its detection score, lowered by a
    /// quarter for each issue the detector reported (small, blurred, cut
    /// off, ...). Kept with the face so a studio can hide weak faces.
    pub fn quality(&self) -> f32 {
        face_quality(self.face.score, self.issues.len())
    }
}

/// Every face of one photo.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalyzedPhoto {
    pub faces: Vec<AnalyzedFace>,
    pub width: u32,
    pub height: u32,
    /// The pack that made the embeddings (also for a photo without faces).
    pub model: ModelId,
    /// The file's media type, as the detector recognised it.
    pub content_type: Option<String>,
    /// EXIF DateTimeOriginal (as UTC), when the file carries one.
    pub captured_at: Option<std::time::SystemTime>,
    /// The previews the detector wrote, in the order asked.
    pub previews: Vec<facepass_proto::domain::Preview>,
}

/// A preview to make while analysing a photo: its long side and its key.
#[derive(Debug, Clone)]
pub struct PreviewSpec {
    pub max_side: u32,
    pub object_key: String,
}

/// Where the detector reads the image from.
#[derive(Debug, Clone)]
pub enum ImageSource {
    /// The encoded bytes (a selfie: never stored).
    Bytes(Bytes),
    /// A key in the object store the detector reads itself.
    ObjectKey(String),
}

/// Clients of the detector and embedder, and the resolved pack identity.
#[derive(Clone)]
pub struct FaceAnalysis {
    detector: det::detector_service_client::DetectorServiceClient<Authed>,
    embedder: emb::embedder_service_client::EmbedderServiceClient<Authed>,
    pack: Arc<Mutex<Option<Arc<PackIdentity>>>>,
}

impl FaceAnalysis {
    /// Clients over lazily connecting channels (balanced ones, or a plain
    /// tonic channel); messages up to `max_message_bytes` (images and crops)
    /// both ways.
    pub fn new(
        detector: impl Into<Channel>,
        embedder: impl Into<Channel>,
        token: &str,
        max_message_bytes: usize,
    ) -> Self {
        let (detector, embedder) = (detector.into(), embedder.into());
        let auth = AttachToken::new(token);
        FaceAnalysis {
            detector: det::detector_service_client::DetectorServiceClient::with_interceptor(
                detector,
                auth.clone(),
            )
            .max_encoding_message_size(max_message_bytes)
            .max_decoding_message_size(max_message_bytes),
            embedder: emb::embedder_service_client::EmbedderServiceClient::with_interceptor(
                embedder, auth,
            )
            .max_encoding_message_size(max_message_bytes)
            .max_decoding_message_size(max_message_bytes),
            pack: Arc::new(Mutex::new(None)),
        }
    }

    /// The embedder's model pack, asked for once.
    pub async fn pack(&self) -> Result<Arc<PackIdentity>> {
        if let Some(pack) = self.cached_pack() {
            return Ok(pack);
        }
        let emb::GetModelInfoResponse {
            model,
            dimension,
            max_batch: _,
            licence,
            crop_side,
        } = self
            .embedder
            .clone()
            .get_model_info(emb::GetModelInfoRequest {})
            .await
            .map_err(peer("embedder"))?
            .into_inner();
        let pack = PackIdentity {
            model: ModelId::parse("model", &model).map_err(bad_peer("embedder"))?,
            dimension: dimension as usize,
            crop_side,
            licence,
        };
        if pack.dimension == 0 || pack.crop_side == 0 {
            return Err(bad_peer("embedder")(Error::invalid(
                "dimension and crop_side must be positive",
            )));
        }
        tracing::info!(model = %pack.model, dimension = pack.dimension, crop_side = pack.crop_side,
            "face analysis uses this model pack");
        let pack = Arc::new(pack);
        *self.pack.lock().unwrap_or_else(|e| e.into_inner()) = Some(pack.clone());
        Ok(pack)
    }

    fn cached_pack(&self) -> Option<Arc<PackIdentity>> {
        self.pack.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn forget_pack(&self) {
        *self.pack.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    async fn detect(
        &self,
        source: ImageSource,
        mode: det::DetectMode,
        previews: &[PreviewSpec],
    ) -> Result<Detection> {
        let source = match source {
            ImageSource::Bytes(bytes) => det::detect_request::Source::Image(bytes),
            ImageSource::ObjectKey(key) => det::detect_request::Source::ObjectKey(key),
        };
        let response = self
            .detector
            .clone()
            .detect(det::DetectRequest {
                source: Some(source),
                mode: mode as i32,
                previews: previews
                    .iter()
                    .map(|p| det::PreviewSpec {
                        max_side: p.max_side,
                        object_key: p.object_key.clone(),
                    })
                    .collect(),
            })
            .await
            .map_err(peer("detector"))?
            .into_inner();
        Detection::try_from(response).map_err(bad_peer("detector"))
    }

    /// Embeds the crops, in order, with the pack's identity.
    async fn embed(
        &self,
        crops: Vec<AlignedCrop>,
        interactive: bool,
    ) -> Result<(Vec<Embedding>, Arc<PackIdentity>)> {
        let pack = self.pack().await?;
        if crops.is_empty() {
            return Ok((Vec::new(), pack));
        }
        for (i, crop) in crops.iter().enumerate() {
            if crop.width() != pack.crop_side || crop.height() != pack.crop_side {
                return Err(Error::internal(format!(
                    "detector made a {}x{} crop (faces[{i}]); the recogniser of {} takes {side}x{side}",
                    crop.width(),
                    crop.height(),
                    pack.model,
                    side = pack.crop_side
                )));
            }
        }
        let n = crops.len();
        let emb::EmbedResponse { embeddings, model } = self
            .embedder
            .clone()
            .embed(emb::EmbedRequest {
                faces: crops.into_iter().map(Into::into).collect(),
                interactive,
            })
            .await
            .map_err(peer("embedder"))?
            .into_inner();
        if model != pack.model.as_str() {
            // The embedder now runs another pack (a rolling upgrade): these
            // embeddings must not be stored under the old identity.
            self.forget_pack();
            tracing::warn!(was = %pack.model, now = %model, "embedder model pack changed");
            return Err(Error::unavailable(
                "embedder is changing model packs, try again",
            ));
        }
        if embeddings.len() != n {
            return Err(bad_peer("embedder")(Error::invalid(format!(
                "{} embeddings for {n} faces",
                embeddings.len()
            ))));
        }
        let embeddings = embeddings
            .into_iter()
            .enumerate()
            .map(|(i, e)| {
                let e = embedding_from_pb(e, &pack.model)
                    .map_err(within(format!("embeddings[{i}]")))?;
                if e.values.len() != pack.dimension {
                    return Err(Error::invalid(format!(
                        "embeddings[{i}] has {} values, the pack makes {}",
                        e.values.len(),
                        pack.dimension
                    )));
                }
                Ok(e)
            })
            .collect::<Result<Vec<_>>>()
            .map_err(bad_peer("embedder"))?;
        Ok((embeddings, pack))
    }

    /// Every face of a photo with its embedding (the indexer passes the
    /// stored photo's object key), and the previews asked for, written by
    /// the detector from the image it decoded.
    pub async fn analyze_photo(
        &self,
        photo: ImageSource,
        previews: &[PreviewSpec],
    ) -> Result<AnalyzedPhoto> {
        let detection = self.detect(photo, det::DetectMode::All, previews).await?;
        let Detection {
            faces,
            width,
            height,
            model: _,
            content_type,
            captured_at,
            previews,
        } = detection;
        let (geometry, crops): (Vec<_>, Vec<_>) = faces
            .into_iter()
            .map(|DetectedFace { face, issues, crop }| ((face, issues), crop))
            .unzip();
        let (embeddings, pack) = self.embed(crops, false).await?;
        Ok(AnalyzedPhoto {
            faces: geometry
                .into_iter()
                .zip(embeddings)
                .map(|((face, issues), embedding)| AnalyzedFace {
                    face,
                    issues,
                    embedding,
                })
                .collect(),
            width,
            height,
            model: pack.model.clone(),
            content_type,
            captured_at,
            previews,
        })
    }

    /// The main face of a selfie with its embedding, or NO_FACE /
    /// SELFIE_UNUSABLE saying what to do. The bytes live only in this call.
    pub async fn analyze_selfie(&self, selfie: Bytes) -> Result<AnalyzedFace> {
        if selfie.is_empty() {
            return Err(Error::invalid("selfie is empty"));
        }
        let started = std::time::Instant::now();
        let detection = self
            .detect(ImageSource::Bytes(selfie), det::DetectMode::Selfie, &[])
            .await?;
        metrics::selfie_stage("detect", started);
        let face = detection.faces.into_iter().next().ok_or_else(|| {
            Error::new(
                ErrorCode::NoFace,
                "no face found in the selfie; take a photo facing the camera",
            )
        })?;
        if !face.issues.is_empty() {
            let advice: Vec<&str> = face.issues.iter().map(|i| i.advice()).collect();
            return Err(Error::new(ErrorCode::SelfieUnusable, advice.join("; ")));
        }
        let DetectedFace { face, issues, crop } = face;
        let started = std::time::Instant::now();
        let (embeddings, _) = self.embed(vec![crop], true).await?;
        metrics::selfie_stage("embed", started);
        let embedding = embeddings
            .into_iter()
            .next()
            .ok_or_else(|| Error::internal("embedder returned no embedding"))?;
        Ok(AnalyzedFace {
            face,
            issues,
            embedding,
        })
    }
}

/// A peer that answered with something malformed: a bug or a version skew
/// on our side, never the caller's fault.
fn bad_peer(service: &'static str) -> impl Fn(Error) -> Error {
    move |err| {
        Error::internal(format!(
            "{service} sent a malformed response: {}",
            err.message
        ))
    }
}

/// A face's quality in [0, 1] from its detection score and issue count.
pub fn face_quality(det_score: f32, issues: usize) -> f32 {
    let score = if det_score.is_finite() {
        det_score
    } else {
        0.0
    };
    (score * (1.0 - 0.25 * issues as f32)).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
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
