//! `facepass.detector.v1.DetectorService`.

use std::sync::Arc;

use facepass_core::{Error, ErrorCode};
use facepass_proto::detector::v1 as pb;
use object_store::ObjectStore;
use pb::detector_service_server::DetectorService;
use tonic::{Request, Response, Status};

use crate::engine::{FaceDetector, Issue, Mode};

pub struct DetectorApi {
    detector: Arc<FaceDetector>,
    store: Arc<dyn ObjectStore>,
    max_bytes: u64,
}

impl DetectorApi {
    pub fn new(detector: Arc<FaceDetector>, store: Arc<dyn ObjectStore>, max_bytes: u64) -> Self {
        DetectorApi {
            detector,
            store,
            max_bytes,
        }
    }

    async fn read_object(&self, key: &str) -> Result<bytes::Bytes, Error> {
        let path = object_store::path::Path::parse(key)
            .map_err(|e| Error::invalid(format!("object_key {key:?} is not a valid key: {e}")))?;
        let not_found = |e: object_store::Error| match e {
            object_store::Error::NotFound { .. } => {
                Error::not_found(format!("object {key:?} does not exist"))
            }
            other => Error::unavailable(format!("object store: {other}")),
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
            .map_err(|e| Error::unavailable(format!("object store: {e}")))
    }
}

fn issue_to_pb(issue: Issue) -> pb::QualityIssue {
    match issue {
        Issue::TooSmall => pb::QualityIssue::FaceTooSmall,
        Issue::LowConfidence => pb::QualityIssue::LowConfidence,
        Issue::Truncated => pb::QualityIssue::Truncated,
        Issue::MultipleFaces => pb::QualityIssue::MultipleFaces,
        Issue::Blurry => pb::QualityIssue::Blurry,
    }
}

#[tonic::async_trait]
impl DetectorService for DetectorApi {
    async fn detect(
        &self,
        request: Request<pb::DetectRequest>,
    ) -> Result<Response<pb::DetectResponse>, Status> {
        let pb::DetectRequest { source, mode } = request.into_inner();
        let mode = match pb::DetectMode::try_from(mode) {
            Ok(pb::DetectMode::All) | Ok(pb::DetectMode::Unspecified) => Mode::All,
            Ok(pb::DetectMode::Selfie) => Mode::Selfie,
            Err(_) => return Err(Error::invalid(format!("unknown mode {mode}")).into()),
        };
        let bytes = match source {
            Some(pb::detect_request::Source::Image(bytes)) => bytes::Bytes::from(bytes),
            Some(pb::detect_request::Source::ObjectKey(key)) => self.read_object(&key).await?,
            None => return Err(Error::invalid("image or object_key is required").into()),
        };
        let faces = self.detector.detect(bytes, mode).await?;
        Ok(Response::new(pb::DetectResponse {
            image_width: faces.width,
            image_height: faces.height,
            model: self.detector.model_name().to_string(),
            faces: faces
                .faces
                .into_iter()
                .map(|face| {
                    let [x1, y1, x2, y2] = face.detection.bbox;
                    pb::DetectedFace {
                        r#box: Some(pb::BoundingBox { x1, y1, x2, y2 }),
                        landmarks: face
                            .detection
                            .landmarks
                            .iter()
                            .map(|&[x, y]| pb::Point { x, y })
                            .collect(),
                        score: face.detection.score,
                        issues: face
                            .issues
                            .into_iter()
                            .map(|i| issue_to_pb(i) as i32)
                            .collect(),
                        aligned_crop: face.crop.into_raw(),
                    }
                })
                .collect(),
        }))
    }
}
