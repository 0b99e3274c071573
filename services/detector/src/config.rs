//! The detector's configuration (`FACEPASS_*`, see docs/ARCHITECTURE.md).

use facepass_core::config::Validate;
use facepass_inference::OrtConfig;
use facepass_server::auth::InternalCallers;
use facepass_server::metrics::MetricsConfig;
use facepass_server::storage::{self, S3Config};
use facepass_server::telemetry::LogConfig;
use facepass_server::GrpcServerConfig;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorConfig {
    pub grpc: GrpcServerConfig,
    pub log: LogConfig,
    /// The Prometheus endpoint (`metrics.listen`, off when empty).
    pub metrics: MetricsConfig,
    pub ort: OrtConfig,
    /// A token any internal caller may present for any RPC (development,
    /// single-secret set-ups); empty with no `internal_callers` disables
    /// the check.
    pub internal_token: String,
    /// Each internal caller's own tokens (docs/security.md §4).
    pub internal_callers: InternalCallers,
    pub model: DetectorModelConfig,
    pub limits: ImageLimits,
    /// Where photos are read from (and previews written to): the gateway's
    /// folder or `s3://bucket/prefix` with the `[s3]` section.
    pub storage_root: String,
    pub s3: S3Config,
    /// Detections run at once (each on its own ONNX session).
    pub workers: usize,
    /// Images decoded and prepared ahead while every session is busy, so
    /// that decoding one photo overlaps inference on another. Each holds
    /// its decoded pixels (72 MB for 24 MP) until a session is free. 0 by
    /// default: on CPU inference already fills the cores and it measured no
    /// gain (docs/benchmarks.md); with the CUDA provider set 1 or more so
    /// the CPU decodes while the GPU infers.
    pub decode_ahead: usize,
    /// The CPU niceness (Linux `setpriority`, 0..=19) of the threads that
    /// detect photos being indexed; selfies run at the process's own. With
    /// 10 (the default) a guest's selfie takes the cores from an import's
    /// photos while it runs, and the photos have them otherwise. 0 turns
    /// it off.
    pub photo_nice: i32,
    /// Faces smaller than this (shorter box side, pixels) get FACE_TOO_SMALL.
    pub min_face_px: f32,
    /// Long side of a second, finer detection pass over photos larger than
    /// it, so that small faces in big group photos are found; 0 turns it off
    /// (then detection is exactly insightface's single 640x640 pass).
    pub fine_pass_side: u32,
    /// When the finer pass runs (docs/ARCHITECTURE.md, "Small faces"):
    /// `auto` (the default) only where the first pass suggests faces too
    /// small for it: it found none, or some near its limit (the whole
    /// photo), or weak candidates too small to confirm (the regions around
    /// them); `always` on every photo larger than `fine_pass_side`.
    pub fine_pass: FinePass,
    /// `auto`: the smallest face, in pixels of the first pass's input, the
    /// first pass finds reliably; a photo whose smallest face found is under
    /// 1.5 times this (in the photo's pixels) gets the whole finer pass.
    pub first_pass_min_face: f32,
    /// `auto`: a first-pass candidate scoring at least this (below the
    /// model's threshold) and smaller than the first pass's limit asks for
    /// a finer look at its region.
    pub proposal_score: f32,
    /// `auto`: the most regions looked at more finely; a photo with more
    /// proposals gets the whole finer pass.
    pub max_proposal_regions: usize,
    /// The first pass's input (and a selfie's): `fitted` (the default) is
    /// the photo at `model.input_size` on its long side, its short side
    /// with 32 rows of the square's padding, rounded up to a multiple of 32
    /// (640x480 for a 3:2 photo, 640x512 for 4:3);
    /// `square` is insightface's `input_size` square canvas, a third of it
    /// padding on a 3:2 photo. A model with a fixed input always gets the
    /// square (docs/benchmarks.md, "First pass canvas").
    pub first_pass_canvas: Canvas,
    /// Detect on large JPEGs decoded at 1/2, 1/4 or 1/8 scale in the DCT
    /// domain (never below the detection passes' resolution); crops of
    /// faces too small there are re-sampled from the full image
    /// (docs/ARCHITECTURE.md, "Resolution policy"). On by default; off:
    /// every photo is decoded in full, exactly as insightface does (the
    /// parity harness).
    pub reduced_decode: bool,
    /// With `reduced_decode`: a face whose box is narrower than this in the
    /// reduced image gets its aligned crop from the full-resolution image.
    pub reduced_min_face_px: f32,
    pub selfie: SelfieConfig,
}

/// When the finer small-face pass runs (`fine_pass`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum FinePass {
    /// Only where the first pass suggests small faces.
    #[default]
    Auto,
    /// On every photo larger than `fine_pass_side`.
    Always,
}

/// The first detection pass's input canvas (`first_pass_canvas`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Canvas {
    /// Fitted to the photo's aspect ratio, sides multiples of 32.
    #[default]
    Fitted,
    /// insightface's square canvas, the photo at its top-left.
    Square,
}

/// When a selfie can be used.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SelfieConfig {
    /// The main face must be at least this many pixels (shorter box side).
    /// 40 by default: on real faces (the real model pack) a selfie's face
    /// down to 40 px kept its similarity to within 0.02 of the full-size
    /// one; at 32 px it lost 0.03-0.06 and at 24 px about 0.1
    /// (docs/benchmarks.md, "Selfie checks on real faces").
    pub min_face_px: f32,
    /// Variance of the Laplacian of the aligned crop below which it is too blurry.
    pub blur_threshold: f32,
    /// Another face at least this fraction of the main face's area makes the
    /// selfie ambiguous; a face cut by the frame's edge never does.
    pub ambiguity_ratio: f32,
    /// When no face is found, shrink the selfie onto a larger canvas and retry
    /// (close-ups that fill the frame are SCRFD's known weakness).
    pub retry_shrunk: bool,
    /// Decode a large JPEG selfie at 1/2, 1/4 or 1/8 scale in the DCT
    /// domain (its long side still at least the detector's input) and
    /// take the face from there when it is at least `reduced_min_face_px`
    /// wide in it; otherwise the selfie is decoded in full
    /// (docs/benchmarks.md, "A guest's wait": one guest's 12 MP JPEG p50
    /// 0.532 s -> 0.395 s).
    pub reduced_decode: bool,
    /// The long side (a multiple of 32) a selfie is first detected at. A
    /// selfie's face fills much of the frame, so 320 (the default) finds it
    /// at a quarter of the 640 pass's cost; a selfie with no face found
    /// there gets the model's `input_size` pass and its shrunk retries.
    /// The face's crop is still aligned from enough pixels: from the
    /// reduced decode when the face is `reduced_min_face_px` wide there,
    /// else from a larger one. 0: `input_size` (one pass, as before).
    pub detect_side: u32,
    /// ONNX sessions that detect only selfies, at the process's CPU
    /// priority, so a guest never waits for a photo's detection to free a
    /// session (1 by default; a detector session is small). 0: selfies
    /// take the next free session of the `workers`' pool before any photo.
    pub sessions: usize,
    /// Threads each selfie session may use (0: ONNX Runtime's default, all
    /// cores): a selfie is one short inference a guest waits for.
    pub threads: usize,
}

impl Default for SelfieConfig {
    fn default() -> Self {
        SelfieConfig {
            min_face_px: 40.0,
            blur_threshold: 25.0,
            ambiguity_ratio: 0.8,
            retry_shrunk: true,
            reduced_decode: true,
            detect_side: 320,
            sessions: 1,
            threads: 0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorModelConfig {
    /// A model pack folder (with manifest.toml); when set, it supplies the
    /// name, file, hash and thresholds below.
    pub pack: String,
    /// Name recorded with results, e.g. `buffalo_l` or `fixture`.
    pub name: String,
    /// SCRFD ONNX file (det_10g.onnx for buffalo_l).
    pub path: String,
    /// Expected SHA-256 (hex); empty skips the check.
    pub sha256: String,
    /// Square detector input side (640 for buffalo_l).
    pub input_size: u32,
    /// The model's input is fixed at `input_size` (a pack's `fixed_input`):
    /// the small-face pass then cuts the photo into overlapping tiles of
    /// that size instead of feeding one larger canvas.
    pub fixed_input: bool,
    pub score_threshold: f32,
    pub nms_threshold: f32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ImageLimits {
    /// Largest encoded image accepted.
    pub max_bytes: u64,
    /// Largest decoded image (width x height) accepted.
    pub max_pixels: u64,
    /// Largest width or height accepted.
    pub max_side: u32,
}

impl Default for ImageLimits {
    fn default() -> Self {
        ImageLimits {
            max_bytes: 64 * 1024 * 1024,
            max_pixels: 120_000_000,
            max_side: 20_000,
        }
    }
}

impl Default for DetectorModelConfig {
    fn default() -> Self {
        DetectorModelConfig {
            pack: String::new(),
            name: "fixture".into(),
            path: ".facepass/models/fixture/det.onnx".into(),
            sha256: String::new(),
            input_size: 640,
            fixed_input: false,
            score_threshold: 0.5,
            nms_threshold: 0.4,
        }
    }
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            grpc: GrpcServerConfig::with_listen("127.0.0.1:50052"),
            log: LogConfig::default(),
            metrics: MetricsConfig::default(),
            ort: OrtConfig {
                intra_threads: 1,
                ..OrtConfig::default()
            },
            internal_token: String::new(),
            internal_callers: InternalCallers::default(),
            model: DetectorModelConfig::default(),
            limits: ImageLimits::default(),
            storage_root: ".facepass/objects".into(),
            s3: S3Config::default(),
            workers: 2,
            decode_ahead: 0,
            photo_nice: 10,
            min_face_px: 20.0,
            fine_pass_side: 1920,
            fine_pass: FinePass::Auto,
            first_pass_min_face: 16.0,
            proposal_score: 0.2,
            max_proposal_regions: 4,
            first_pass_canvas: Canvas::Fitted,
            // On by default since the scaled decode is libjpeg-turbo's: a 24
            // MP photo at 1/2 in 84 ms against 195 ms in full (zune-jpeg),
            // docs/benchmarks.md. (jpeg-decoder's, without libturbojpeg0,
            // is slower than the full decode.)
            reduced_decode: true,
            reduced_min_face_px: 112.0,
            selfie: SelfieConfig::default(),
        }
    }
}

impl Validate for DetectorConfig {
    fn validate(&self) -> Vec<String> {
        let mut problems = self.grpc.problems();
        problems.extend(self.log.problems());
        problems.extend(self.metrics.problems());
        problems.extend(self.internal_callers.problems(&self.internal_token));
        problems.extend(self.ort.problems());
        problems.extend(storage::problems(&self.storage_root, &self.s3));
        if self.model.path.is_empty() && self.model.pack.is_empty() {
            problems.push("model.path is required".into());
        }
        if self.model.input_size == 0 || !self.model.input_size.is_multiple_of(32) {
            problems.push("model.input_size must be a positive multiple of 32".into());
        }
        if !(0.0..1.0).contains(&self.model.score_threshold) {
            problems.push("model.score_threshold must be within 0 and 1".into());
        }
        if !(0.0..1.0).contains(&self.model.nms_threshold) {
            problems.push("model.nms_threshold must be within 0 and 1".into());
        }
        if self.first_pass_min_face.is_nan() || self.first_pass_min_face <= 0.0 {
            problems.push("first_pass_min_face must be positive".into());
        }
        // Lower than 0.05 would keep thousands of candidates per photo.
        if !(0.05..1.0).contains(&self.proposal_score) {
            problems.push("proposal_score must be within 0.05 and 1".into());
        }
        // Also refuses NaN.
        if self.reduced_min_face_px.is_nan() || self.reduced_min_face_px <= 0.0 {
            problems.push("reduced_min_face_px must be positive".into());
        }
        if self.fine_pass_side != 0 && self.fine_pass_side <= self.model.input_size {
            problems.push("fine_pass_side must be 0 (off) or larger than model.input_size".into());
        }
        if !(0.0..=1.0).contains(&self.selfie.ambiguity_ratio) {
            problems.push("selfie.ambiguity_ratio must be within 0 and 1".into());
        }
        if self.selfie.detect_side != 0
            && (self.selfie.detect_side < 128 || !self.selfie.detect_side.is_multiple_of(32))
        {
            problems
                .push("selfie.detect_side must be 0 or a multiple of 32 of at least 128".into());
        }
        if !(0..=19).contains(&self.photo_nice) {
            problems.push("photo_nice must be within 0 and 19".into());
        }
        if self.workers == 0 {
            problems.push("workers must be at least 1".into());
        }
        if self.limits.max_bytes == 0 || self.limits.max_pixels == 0 || self.limits.max_side == 0 {
            problems.push("limits must be positive".into());
        }
        problems
    }
}
