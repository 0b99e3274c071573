//! Hand-written domain types for what the contracts carry, and the
//! conversions between them and the generated messages.
//!
//! Every conversion from a message destructures all of its fields, so a field
//! added to a .proto breaks the build here until someone decides what it
//! means. A missing required field is INVALID_ARGUMENT naming the field,
//! never a silent default; numbers must be finite.

use bytes::Bytes;
use facepass_core::{parse_id, Error, Result};
use uuid::Uuid;

use crate::detector::v1 as det;
use crate::types::v1 as pb;

/// Prefixes an error's message with the field it was found in
/// (`faces[2].` + `box is required`).
pub fn within(field: impl std::fmt::Display) -> impl FnOnce(Error) -> Error {
    move |mut err| {
        err.message = format!("{field}.{}", err.message);
        err
    }
}

fn finite(field: &str, values: &[f32]) -> Result<()> {
    if values.iter().all(|v| v.is_finite()) {
        Ok(())
    } else {
        Err(Error::invalid(format!("{field} must be finite numbers")))
    }
}

/// A rectangle in an image's pixel coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FaceBox {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl FaceBox {
    pub fn to_array(self) -> [f32; 4] {
        [self.x1, self.y1, self.x2, self.y2]
    }

    pub fn from_array([x1, y1, x2, y2]: [f32; 4]) -> Self {
        FaceBox { x1, y1, x2, y2 }
    }

    /// From a stored `[x1, y1, x2, y2]` list; anything else is an error.
    pub fn from_slice(values: &[f32]) -> Result<Self> {
        let array: [f32; 4] = values
            .try_into()
            .map_err(|_| Error::invalid(format!("a box has 4 values, not {}", values.len())))?;
        Ok(Self::from_array(array))
    }
}

/// A point in an image's pixel coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Point {
    pub x: f32,
    pub y: f32,
}

/// The five landmarks of a face: left eye, right eye, nose, left and right
/// mouth corners.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Landmarks(pub [Point; 5]);

impl Landmarks {
    pub fn from_pairs(points: [[f32; 2]; 5]) -> Self {
        Landmarks(points.map(|[x, y]| Point { x, y }))
    }

    /// `[x0, y0, x1, y1, ...]`, as the face store keeps them.
    pub fn flatten(&self) -> Vec<f32> {
        self.0.iter().flat_map(|p| [p.x, p.y]).collect()
    }

    /// From a stored `[x0, y0, ..., x4, y4]`; anything else is an error.
    pub fn from_flat(values: &[f32]) -> Result<Self> {
        let array: [f32; 10] = values.try_into().map_err(|_| {
            Error::invalid(format!("landmarks have 10 values, not {}", values.len()))
        })?;
        let mut points = [[0.0; 2]; 5];
        for (i, p) in points.iter_mut().enumerate() {
            *p = [array[2 * i], array[2 * i + 1]];
        }
        Ok(Self::from_pairs(points))
    }
}

/// A detected face: box, landmarks and detection score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Face {
    pub face_box: FaceBox,
    pub landmarks: Landmarks,
    pub score: f32,
}

/// A face cut out of its image and aligned to the recogniser's template:
/// `width * height * 3` bytes of RGB, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct AlignedCrop {
    rgb: Bytes,
    width: u32,
    height: u32,
}

impl AlignedCrop {
    /// Checks that the pixels fill exactly `width x height`.
    pub fn new(rgb: Bytes, width: u32, height: u32) -> Result<Self> {
        let expected = width as usize * height as usize * 3;
        if width == 0 || height == 0 {
            return Err(Error::invalid("width and height must be positive"));
        }
        if rgb.len() != expected {
            return Err(Error::invalid(format!(
                "rgb has {} bytes, a {width}x{height} RGB crop has {expected}",
                rgb.len()
            )));
        }
        Ok(AlignedCrop { rgb, width, height })
    }

    pub fn rgb(&self) -> &Bytes {
        &self.rgb
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }
}

/// The identity of a model pack, `name@version`: embeddings of one pack are
/// never compared with another's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModelId(String);

impl ModelId {
    /// The id of pack `name` at `version`.
    pub fn of_pack(name: &str, version: &str) -> Self {
        ModelId(format!("{name}@{version}"))
    }

    /// A model id received from a peer: any non-empty text.
    pub fn parse(field: &str, value: &str) -> Result<Self> {
        if value.trim().is_empty() {
            return Err(Error::invalid(format!("{field} is required")));
        }
        Ok(ModelId(value.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ModelId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A face embedding and the model pack that made it.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding {
    pub values: Vec<f32>,
    pub model: ModelId,
}

/// An event of a studio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventRef {
    pub studio: Uuid,
    pub event: Uuid,
}

impl EventRef {
    /// From the `studio_id` and `event_id` fields of a request.
    pub fn parse(studio_id: &str, event_id: &str) -> Result<Self> {
        Ok(EventRef {
            studio: parse_id("studio_id", studio_id)?,
            event: parse_id("event_id", event_id)?,
        })
    }
}

/// A photo of an event of a studio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PhotoRef {
    pub event: EventRef,
    pub photo: Uuid,
}

impl PhotoRef {
    /// From the `studio_id`, `event_id` and `photo_id` fields of a request.
    pub fn parse(studio_id: &str, event_id: &str, photo_id: &str) -> Result<Self> {
        Ok(PhotoRef {
            event: EventRef::parse(studio_id, event_id)?,
            photo: parse_id("photo_id", photo_id)?,
        })
    }
}

// ---------------------------------------------------------------------------
// facepass.types.v1 <-> domain
// ---------------------------------------------------------------------------

impl TryFrom<pb::FaceBox> for FaceBox {
    type Error = Error;

    fn try_from(msg: pb::FaceBox) -> Result<Self> {
        let pb::FaceBox { x1, y1, x2, y2 } = msg;
        finite("box", &[x1, y1, x2, y2])?;
        if x2 < x1 || y2 < y1 {
            return Err(Error::invalid("box must have x1 <= x2 and y1 <= y2"));
        }
        Ok(FaceBox { x1, y1, x2, y2 })
    }
}

impl From<FaceBox> for pb::FaceBox {
    fn from(b: FaceBox) -> Self {
        let FaceBox { x1, y1, x2, y2 } = b;
        pb::FaceBox { x1, y1, x2, y2 }
    }
}

impl From<Point> for pb::Point {
    fn from(p: Point) -> Self {
        let Point { x, y } = p;
        pb::Point { x, y }
    }
}

impl TryFrom<Vec<pb::Point>> for Landmarks {
    type Error = Error;

    fn try_from(points: Vec<pb::Point>) -> Result<Self> {
        let n = points.len();
        let mut out = [Point::default(); 5];
        if n != out.len() {
            return Err(Error::invalid(format!(
                "landmarks must have 5 points, not {n}"
            )));
        }
        for (slot, pb::Point { x, y }) in out.iter_mut().zip(points) {
            finite("landmarks", &[x, y])?;
            *slot = Point { x, y };
        }
        Ok(Landmarks(out))
    }
}

impl From<Landmarks> for Vec<pb::Point> {
    fn from(l: Landmarks) -> Self {
        l.0.into_iter().map(pb::Point::from).collect()
    }
}

impl TryFrom<pb::Face> for Face {
    type Error = Error;

    fn try_from(msg: pb::Face) -> Result<Self> {
        let pb::Face {
            r#box,
            landmarks,
            score,
        } = msg;
        let face_box = r#box
            .ok_or_else(|| Error::invalid("box is required"))?
            .try_into()?;
        let landmarks = landmarks.try_into()?;
        finite("score", &[score])?;
        Ok(Face {
            face_box,
            landmarks,
            score,
        })
    }
}

impl From<Face> for pb::Face {
    fn from(face: Face) -> Self {
        let Face {
            face_box,
            landmarks,
            score,
        } = face;
        pb::Face {
            r#box: Some(face_box.into()),
            landmarks: landmarks.into(),
            score,
        }
    }
}

impl TryFrom<pb::AlignedCrop> for AlignedCrop {
    type Error = Error;

    fn try_from(msg: pb::AlignedCrop) -> Result<Self> {
        let pb::AlignedCrop { rgb, width, height } = msg;
        AlignedCrop::new(rgb, width, height)
    }
}

impl From<AlignedCrop> for pb::AlignedCrop {
    fn from(crop: AlignedCrop) -> Self {
        let AlignedCrop { rgb, width, height } = crop;
        pb::AlignedCrop { rgb, width, height }
    }
}

impl From<&Embedding> for pb::Embedding {
    fn from(e: &Embedding) -> Self {
        pb::Embedding {
            values: e.values.clone(),
        }
    }
}

/// An embedding message received with the id of the model that made it.
pub fn embedding_from_pb(msg: pb::Embedding, model: &ModelId) -> Result<Embedding> {
    let pb::Embedding { values } = msg;
    if values.is_empty() {
        return Err(Error::invalid("values are required"));
    }
    finite("values", &values)?;
    Ok(Embedding {
        values,
        model: model.clone(),
    })
}

/// Converts a required message field, naming it when it is missing or bad.
pub fn required<M, T>(field: &str, value: Option<M>) -> Result<T>
where
    T: TryFrom<M, Error = Error>,
{
    value
        .ok_or_else(|| Error::invalid(format!("{field} is required")))?
        .try_into()
        .map_err(within(field))
}

// ---------------------------------------------------------------------------
// facepass.detector.v1 <-> domain
// ---------------------------------------------------------------------------

/// Why a detected face should not be used (as a selfie, or for indexing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QualityIssue {
    TooSmall,
    LowConfidence,
    Truncated,
    /// Selfie: another face is nearly as large as the main one.
    MultipleFaces,
    /// Selfie: too little detail (motion or focus blur).
    Blurry,
}

impl QualityIssue {
    /// What a guest should do about it, in words.
    pub fn advice(self) -> &'static str {
        match self {
            QualityIssue::TooSmall => "the face is too small; come closer",
            QualityIssue::LowConfidence => "the face is not clear enough",
            QualityIssue::Truncated => "the face is cut off at the edge",
            QualityIssue::MultipleFaces => "several people are in the selfie; take it alone",
            QualityIssue::Blurry => "the selfie is blurry; hold still",
        }
    }
}

impl From<QualityIssue> for det::QualityIssue {
    fn from(issue: QualityIssue) -> Self {
        match issue {
            QualityIssue::TooSmall => det::QualityIssue::FaceTooSmall,
            QualityIssue::LowConfidence => det::QualityIssue::LowConfidence,
            QualityIssue::Truncated => det::QualityIssue::Truncated,
            QualityIssue::MultipleFaces => det::QualityIssue::MultipleFaces,
            QualityIssue::Blurry => det::QualityIssue::Blurry,
        }
    }
}

impl TryFrom<i32> for QualityIssue {
    type Error = Error;

    fn try_from(value: i32) -> Result<Self> {
        match det::QualityIssue::try_from(value) {
            Ok(det::QualityIssue::FaceTooSmall) => Ok(QualityIssue::TooSmall),
            Ok(det::QualityIssue::LowConfidence) => Ok(QualityIssue::LowConfidence),
            Ok(det::QualityIssue::Truncated) => Ok(QualityIssue::Truncated),
            Ok(det::QualityIssue::MultipleFaces) => Ok(QualityIssue::MultipleFaces),
            Ok(det::QualityIssue::Blurry) => Ok(QualityIssue::Blurry),
            Ok(det::QualityIssue::Unspecified) | Err(_) => Err(Error::invalid(format!(
                "issues: unknown quality issue {value}"
            ))),
        }
    }
}

/// A face the detector found, with what is wrong with it and its crop.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectedFace {
    pub face: Face,
    pub issues: Vec<QualityIssue>,
    pub crop: AlignedCrop,
}

impl TryFrom<det::DetectedFace> for DetectedFace {
    type Error = Error;

    fn try_from(msg: det::DetectedFace) -> Result<Self> {
        let det::DetectedFace {
            face,
            issues,
            aligned_crop,
        } = msg;
        Ok(DetectedFace {
            face: required("face", face)?,
            issues: issues
                .into_iter()
                .map(QualityIssue::try_from)
                .collect::<Result<_>>()?,
            crop: required("aligned_crop", aligned_crop)?,
        })
    }
}

impl From<DetectedFace> for det::DetectedFace {
    fn from(f: DetectedFace) -> Self {
        let DetectedFace { face, issues, crop } = f;
        det::DetectedFace {
            face: Some(face.into()),
            issues: issues
                .into_iter()
                .map(|i| det::QualityIssue::from(i) as i32)
                .collect(),
            aligned_crop: Some(crop.into()),
        }
    }
}

/// Everything the detector says about one image.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    pub faces: Vec<DetectedFace>,
    pub width: u32,
    pub height: u32,
    pub model: ModelId,
    /// The file's media type, when it is one FacePass reads.
    pub content_type: Option<String>,
    /// EXIF DateTimeOriginal (read as UTC), when the file carries one.
    pub captured_at: Option<std::time::SystemTime>,
    /// The previews written, in the order asked.
    pub previews: Vec<Preview>,
}

/// A web-format preview the detector wrote to the object store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    pub object_key: String,
    pub width: u32,
    pub height: u32,
    pub size_bytes: u64,
}

impl From<det::WrittenPreview> for Preview {
    fn from(p: det::WrittenPreview) -> Self {
        let det::WrittenPreview {
            object_key,
            width,
            height,
            size_bytes,
        } = p;
        Preview {
            object_key,
            width,
            height,
            size_bytes,
        }
    }
}

impl From<Preview> for det::WrittenPreview {
    fn from(p: Preview) -> Self {
        let Preview {
            object_key,
            width,
            height,
            size_bytes,
        } = p;
        det::WrittenPreview {
            object_key,
            width,
            height,
            size_bytes,
        }
    }
}

impl TryFrom<det::DetectResponse> for Detection {
    type Error = Error;

    fn try_from(msg: det::DetectResponse) -> Result<Self> {
        let det::DetectResponse {
            faces,
            image_width,
            image_height,
            model,
            content_type,
            captured_at,
            previews,
        } = msg;
        Ok(Detection {
            previews: previews.into_iter().map(Into::into).collect(),
            content_type: (!content_type.is_empty()).then_some(content_type),
            captured_at: captured_at
                .map(std::time::SystemTime::try_from)
                .transpose()
                .map_err(|_| Error::invalid_field("captured_at", "captured_at is out of range"))?,
            faces: faces
                .into_iter()
                .enumerate()
                .map(|(i, f)| DetectedFace::try_from(f).map_err(within(format!("faces[{i}]"))))
                .collect::<Result<_>>()?,
            width: image_width,
            height: image_height,
            model: ModelId::parse("model", &model)?,
        })
    }
}

impl From<Detection> for det::DetectResponse {
    fn from(d: Detection) -> Self {
        let Detection {
            faces,
            width,
            height,
            model,
            content_type,
            captured_at,
            previews,
        } = d;
        det::DetectResponse {
            previews: previews.into_iter().map(Into::into).collect(),
            faces: faces.into_iter().map(Into::into).collect(),
            image_width: width,
            image_height: height,
            model: model.0,
            content_type: content_type.unwrap_or_default(),
            captured_at: captured_at.map(Into::into),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use facepass_core::ErrorCode;

    fn pb_face() -> pb::Face {
        pb::Face {
            r#box: Some(pb::FaceBox {
                x1: 1.0,
                y1: 2.0,
                x2: 30.0,
                y2: 40.0,
            }),
            landmarks: (0..5)
                .map(|i| pb::Point {
                    x: i as f32,
                    y: 2.0 * i as f32,
                })
                .collect(),
            score: 0.9,
        }
    }

    #[test]
    fn a_face_round_trips() {
        let face = Face::try_from(pb_face()).unwrap();
        assert_eq!(face.face_box.to_array(), [1.0, 2.0, 30.0, 40.0]);
        assert_eq!(face.landmarks.flatten()[8..], [4.0, 8.0]);
        assert_eq!(pb::Face::from(face), pb_face());
    }

    #[test]
    fn a_missing_box_is_invalid_argument_naming_the_field() {
        let mut msg = pb_face();
        msg.r#box = None;
        let err = required::<_, Face>("faces[3].face", Some(msg)).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidArgument);
        assert_eq!(err.message, "faces[3].face.box is required");
        let err = required::<pb::Face, Face>("face", None).unwrap_err();
        assert_eq!(err.message, "face is required");
    }

    #[test]
    fn bad_geometry_is_refused() {
        let mut msg = pb_face();
        msg.landmarks.pop();
        assert!(Face::try_from(msg)
            .unwrap_err()
            .message
            .contains("5 points"));
        let mut msg = pb_face();
        msg.score = f32::NAN;
        assert!(Face::try_from(msg).is_err());
        let mut msg = pb_face();
        msg.r#box.as_mut().unwrap().x2 = 0.0;
        assert!(Face::try_from(msg)
            .unwrap_err()
            .message
            .contains("x1 <= x2"));
    }

    #[test]
    fn crops_must_fill_their_size() {
        let ok = pb::AlignedCrop {
            rgb: Bytes::from(vec![0u8; 4 * 2 * 3]),
            width: 4,
            height: 2,
        };
        let crop = AlignedCrop::try_from(ok.clone()).unwrap();
        assert_eq!((crop.width(), crop.height()), (4, 2));
        assert_eq!(pb::AlignedCrop::from(crop), ok);
        let short = pb::AlignedCrop {
            rgb: Bytes::from(vec![0u8; 5]),
            ..ok
        };
        assert_eq!(
            AlignedCrop::try_from(short).unwrap_err().code,
            ErrorCode::InvalidArgument
        );
    }

    #[test]
    fn embeddings_carry_their_model() {
        let model = ModelId::of_pack("buffalo_l", "1");
        assert_eq!(model.as_str(), "buffalo_l@1");
        let e = embedding_from_pb(
            pb::Embedding {
                values: vec![0.6, 0.8],
            },
            &model,
        )
        .unwrap();
        assert_eq!(e.model, model);
        assert!(embedding_from_pb(pb::Embedding { values: vec![] }, &model).is_err());
        assert!(ModelId::parse("model", " ").is_err());
    }

    #[test]
    fn a_detection_round_trips_and_names_bad_faces() {
        let crop = pb::AlignedCrop {
            rgb: Bytes::from(vec![7u8; 2 * 2 * 3]),
            width: 2,
            height: 2,
        };
        let msg = det::DetectResponse {
            faces: vec![det::DetectedFace {
                face: Some(pb_face()),
                issues: vec![det::QualityIssue::Blurry as i32],
                aligned_crop: Some(crop),
            }],
            image_width: 640,
            image_height: 480,
            model: "fixture@1".into(),
            content_type: "image/jpeg".into(),
            captured_at: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
            previews: vec![det::WrittenPreview {
                object_key: "studios/s/events/e/previews/p/400.jpg".into(),
                width: 400,
                height: 300,
                size_bytes: 31_000,
            }],
        };
        let detection = Detection::try_from(msg.clone()).unwrap();
        assert_eq!(detection.previews[0].width, 400);
        assert_eq!(detection.faces[0].issues, vec![QualityIssue::Blurry]);
        assert_eq!(detection.content_type.as_deref(), Some("image/jpeg"));
        assert_eq!(
            detection.captured_at,
            Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000))
        );
        assert_eq!(det::DetectResponse::from(detection), msg);

        let mut bad = msg.clone();
        bad.faces[0].aligned_crop = None;
        let err = Detection::try_from(bad).unwrap_err();
        assert_eq!(err.message, "faces[0].aligned_crop is required");
        let mut bad = msg;
        bad.faces[0].issues = vec![99];
        assert!(Detection::try_from(bad).is_err());
    }

    #[test]
    fn references_name_the_bad_field() {
        let s = Uuid::new_v4().to_string();
        assert!(EventRef::parse(&s, &s).is_ok());
        let err = PhotoRef::parse(&s, &s, "nope").unwrap_err();
        assert!(err.message.starts_with("photo_id"));
        assert!(EventRef::parse("", &s)
            .unwrap_err()
            .message
            .contains("studio_id"));
    }
}
