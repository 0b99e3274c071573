//! `facepass.detector.v1.DetectorService`.

use std::sync::Arc;

use facepass_core::{Error, ErrorCode};
use facepass_proto::detector::v1 as pb;
use facepass_proto::domain::{self, ModelId, QualityIssue};
use object_store::ObjectStore;
use pb::detector_service_server::DetectorService;
use tonic::{Request, Response, Status};

use crate::engine::{FaceDetector, Issue, Mode};

pub struct DetectorApi {
    detector: Arc<FaceDetector>,
    /// Resolved once: the pack id every response carries.
    model: ModelId,
    store: Arc<dyn ObjectStore>,
    max_bytes: u64,
}

impl DetectorApi {
    pub fn new(detector: Arc<FaceDetector>, store: Arc<dyn ObjectStore>, max_bytes: u64) -> Self {
        DetectorApi {
            model: ModelId::parse("model", detector.model_name())
                .unwrap_or_else(|_| ModelId::of_pack("detector", "unnamed")),
            detector,
            store,
            max_bytes,
        }
    }

    async fn read_object(&self, key: &str) -> Result<bytes::Bytes, Error> {
        // Text first: a NUL or a line break never reaches the store's paths.
        facepass_core::text::required_text("object_key", key, facepass_core::text::MAX_KEY_CHARS)?;
        let path = object_store::path::Path::parse(key).map_err(|e| {
            Error::invalid_field(
                "object_key",
                format!("object_key {key:?} is not a valid key: {e}"),
            )
        })?;
        // The store's own errors name its paths: logs only.
        let unavailable = |e: object_store::Error| {
            tracing::warn!(error = %e, "object store failed");
            Error::unavailable("photo storage is unavailable, try again")
        };
        let not_found = |e: object_store::Error| match e {
            object_store::Error::NotFound { .. } => {
                Error::not_found(format!("object {key:?} does not exist"))
            }
            other => unavailable(other),
        };
        let meta = self.store.head(&path).await.map_err(not_found)?;
        if meta.size > self.max_bytes {
            return Err(Error::new(
                ErrorCode::ImageTooLarge,
                format!(
                    "image is {} bytes, the limit is {}",
                    meta.size, self.max_bytes
                ),
            ));
        }
        self.store
            .get(&path)
            .await
            .map_err(not_found)?
            .bytes()
            .await
            .map_err(unavailable)
    }
}

impl DetectorApi {
    /// Writes each rendered preview to its key; previews are only ever
    /// under `studios/` (FacePass's own part of the store).
    async fn write_previews(
        &self,
        specs: &[pb::PreviewSpec],
        rendered: Vec<crate::preview::Encoded>,
    ) -> Result<Vec<domain::Preview>, Error> {
        let mut written = Vec::with_capacity(rendered.len());
        for (spec, preview) in specs.iter().zip(rendered) {
            let path = object_store::path::Path::parse(&spec.object_key)
                .map_err(|e| Error::internal(format!("preview key: {e}")))?;
            let size_bytes = preview.jpeg.len() as u64;
            self.store
                .put(&path, preview.jpeg.into())
                .await
                .map_err(|e| {
                    tracing::warn!(error = %e, "writing a preview failed");
                    Error::unavailable("photo storage is unavailable, try again")
                })?;
            written.push(domain::Preview {
                object_key: spec.object_key.clone(),
                width: preview.width,
                height: preview.height,
                size_bytes,
            });
        }
        Ok(written)
    }
}

/// The preview specs of a request, checked.
fn preview_sides(specs: &[pb::PreviewSpec], mode: Mode) -> Result<Vec<u32>, Error> {
    if !specs.is_empty() && mode != Mode::All {
        return Err(Error::invalid_field(
            "previews",
            "previews are made of event photos only, never of a selfie",
        ));
    }
    for (i, spec) in specs.iter().enumerate() {
        let field = format!("previews[{i}].object_key");
        facepass_core::text::required_text(
            &field,
            &spec.object_key,
            facepass_core::text::MAX_KEY_CHARS,
        )?;
        if !spec.object_key.starts_with("studios/")
            || object_store::path::Path::parse(&spec.object_key).is_err()
        {
            return Err(Error::invalid_field(
                field,
                "a preview's key is a valid key under studios/",
            ));
        }
    }
    let sides: Vec<u32> = specs.iter().map(|s| s.max_side).collect();
    crate::preview::check(&sides)?;
    Ok(sides)
}

fn issue_to_domain(issue: Issue) -> QualityIssue {
    match issue {
        Issue::TooSmall => QualityIssue::TooSmall,
        Issue::LowConfidence => QualityIssue::LowConfidence,
        Issue::Truncated => QualityIssue::Truncated,
        Issue::MultipleFaces => QualityIssue::MultipleFaces,
        Issue::Blurry => QualityIssue::Blurry,
    }
}

/// The engine's face as the contract's domain type.
fn face_to_domain(face: crate::engine::Face) -> Result<domain::DetectedFace, Error> {
    let crate::engine::Face {
        detection,
        issues,
        crop,
    } = face;
    let (width, height) = crop.dimensions();
    Ok(domain::DetectedFace {
        face: domain::Face {
            face_box: domain::FaceBox::from_array(detection.bbox),
            landmarks: domain::Landmarks::from_pairs(detection.landmarks),
            score: detection.score,
        },
        issues: issues.into_iter().map(issue_to_domain).collect(),
        crop: domain::AlignedCrop::new(bytes::Bytes::from(crop.into_raw()), width, height)
            .map_err(|e| Error::internal(format!("aligned crop: {}", e.message)))?,
    })
}

#[tonic::async_trait]
impl DetectorService for DetectorApi {
    async fn detect(
        &self,
        request: Request<pb::DetectRequest>,
    ) -> Result<Response<pb::DetectResponse>, Status> {
        let pb::DetectRequest {
            source,
            mode,
            previews,
        } = request.into_inner();
        let mode = match pb::DetectMode::try_from(mode) {
            Ok(pb::DetectMode::All) | Ok(pb::DetectMode::Unspecified) => Mode::All,
            Ok(pb::DetectMode::Selfie) => Mode::Selfie,
            Err(_) => return Err(Error::invalid(format!("unknown mode {mode}")).into()),
        };
        let sides = preview_sides(&previews, mode)?;
        let bytes = match source {
            Some(pb::detect_request::Source::Image(bytes)) => bytes,
            Some(pb::detect_request::Source::ObjectKey(key)) => self.read_object(&key).await?,
            None => return Err(Error::invalid("image or object_key is required").into()),
        };
        let facts = crate::metadata::read(&bytes);
        let mut found = self
            .detector
            .detect_with_previews(bytes, mode, sides)
            .await?;
        let written = self
            .write_previews(&previews, std::mem::take(&mut found.previews))
            .await?;
        let detection = domain::Detection {
            previews: written,
            content_type: facts.content_type,
            captured_at: facts.captured_at,
            width: found.width,
            height: found.height,
            model: self.model.clone(),
            faces: found
                .faces
                .into_iter()
                .map(face_to_domain)
                .collect::<Result<_, _>>()?,
        };
        Ok(Response::new(detection.into()))
    }
}
