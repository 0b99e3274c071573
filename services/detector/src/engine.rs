//! The detection engine: a small pool of ONNX sessions and the blocking
//! pipeline (decode, resize, SCRFD, NMS, quality, alignment) that runs off
//! the async runtime. At most `workers + decode_ahead` images are in the
//! pipeline at once: while every session runs inference, up to
//! `decode_ahead` more images are decoded and prepared, and then wait for a
//! session.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use facepass_core::Error;
use facepass_inference::ort::session::Session;
use facepass_inference::ort::value::TensorRef;
use facepass_inference::{ModelCheck, ModelError, TensorSpec};
use image::RgbImage;
use tokio::sync::Semaphore;

use crate::config::{Canvas, DetectorConfig, FinePass};
use crate::decode::decode_rgb;
use crate::scrfd::{self, Detection, RawOutputs};
use crate::vision::align_face;

/// Why a face should not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Issue {
    TooSmall,
    LowConfidence,
    Truncated,
    /// Selfie: another face is nearly as large as the main one.
    MultipleFaces,
    /// Selfie: the aligned face has too little detail.
    Blurry,
}

/// A face with its verdicts and aligned crop.
#[derive(Debug, Clone)]
pub struct Face {
    pub detection: Detection,
    pub issues: Vec<Issue>,
    pub crop: RgbImage,
}

/// The faces of one image.
/// What the finer small-face pass did with one photo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FineLook {
    /// Not wanted: the photo is not larger than `fine_pass_side`, or the
    /// pass is off.
    Off,
    /// `auto`: the first pass found faces, all comfortably above its limit,
    /// and nothing smaller that looked like a face.
    Skipped,
    /// `auto`: only these squares (`[x, y, side]`, photo pixels), each
    /// around a small weak candidate of the first pass.
    Regions(Vec<[u32; 3]>),
    /// The whole photo: `always`, or `auto` when the first pass found no
    /// face, a face near its limit, or too many small candidates.
    Whole,
}

impl FineLook {
    pub fn name(&self) -> &'static str {
        match self {
            FineLook::Off => "off",
            FineLook::Skipped => "skipped",
            FineLook::Regions(_) => "regions",
            FineLook::Whole => "whole",
        }
    }
}

/// The `auto` decision, from what the first pass found.
/// - `confident`: its faces; `weak`: candidates under the model's threshold.
/// - `floor`: the smallest face it finds reliably, in photo pixels.
/// - `region`: the side, in photo pixels, of one input of the finer pass.
pub fn fine_look(
    confident: &[Detection],
    weak: &[Detection],
    (width, height): (u32, u32),
    floor: f32,
    region: f32,
    max_regions: usize,
) -> FineLook {
    let side = |d: &Detection| (d.bbox[2] - d.bbox[0]).min(d.bbox[3] - d.bbox[1]);
    let near_limit = 1.5 * floor;
    // Nothing found: a photo of no one, or a crowd too small for the pass.
    // A face near the limit: its neighbours may be just under it.
    if confident.is_empty() || confident.iter().any(|d| side(d) < near_limit) {
        return FineLook::Whole;
    }
    let inside = |d: &Detection, f: &Detection| {
        let (cx, cy) = ((d.bbox[0] + d.bbox[2]) / 2.0, (d.bbox[1] + d.bbox[3]) / 2.0);
        cx >= f.bbox[0] && cx <= f.bbox[2] && cy >= f.bbox[1] && cy <= f.bbox[3]
    };
    // Small weak candidates that are not part of a face already found.
    let proposals: Vec<&Detection> = weak
        .iter()
        .filter(|d| side(d) < near_limit && !confident.iter().any(|f| inside(d, f)))
        .collect();
    if proposals.is_empty() {
        return FineLook::Skipped;
    }
    let side_px = (region.round() as u32).clamp(1, width.min(height).max(1));
    let half = side_px as f32 / 2.0;
    let mut regions: Vec<[u32; 3]> = Vec::new();
    for d in proposals {
        let (cx, cy) = ((d.bbox[0] + d.bbox[2]) / 2.0, (d.bbox[1] + d.bbox[3]) / 2.0);
        // Already well inside a region (a quarter of its side from its edges).
        let covered = regions.iter().any(|&[x, y, s]| {
            let margin = s as f32 / 4.0;
            cx >= x as f32 + margin
                && cx <= (x + s) as f32 - margin
                && cy >= y as f32 + margin
                && cy <= (y + s) as f32 - margin
        });
        if covered {
            continue;
        }
        let x = (cx - half).clamp(0.0, (width - side_px) as f32) as u32;
        let y = (cy - half).clamp(0.0, (height - side_px) as f32) as u32;
        regions.push([x, y, side_px]);
        if regions.len() > max_regions {
            return FineLook::Whole;
        }
    }
    FineLook::Regions(regions)
}

#[derive(Debug, Clone)]
pub struct Faces {
    pub width: u32,
    pub height: u32,
    pub faces: Vec<Face>,
    /// Scale the detection passes saw the photo at (1 = decoded in full,
    /// 1/2, 1/4 or 1/8 = decoded at reduced scale).
    pub decode_scale: f32,
    /// The previews asked for, in order (`crate::preview`).
    pub previews: Vec<crate::preview::Encoded>,
}

/// The smallest face (box width, canvas pixels) the selfie's small first
/// pass (`selfie.detect_side`) is trusted with; a smaller one is looked at
/// again by the model's own pass. On the synthetic 12 MP selfies of
/// `vision.rs::a_selfie_is_found_on_a_small_canvas_first`, faces of 40 and
/// 79 px on the 320 canvas came out within 1.3 % of the 640 pass's box and
/// 3 grey levels of its crop; a 12 px one 3.9 % and 11 grey levels.
pub const SMALL_PASS_MIN_FACE: f32 = 32.0;

/// A selfie's main face as one detection pass saw it (that pass's pixels),
/// and whether another face, not cut by the frame, is nearly as large.
struct SelfieSeen {
    main: Detection,
    rivals: bool,
}

/// Which faces the caller wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    All,
    /// Only the main face: the largest, favouring the centre.
    Selfie,
}

/// Overlap of the small-face pass's tiles (pixels of the tile): every face
/// up to this size lies whole inside some tile. The pass is for faces the
/// 640 pass misses, which are far smaller than this at the tiles' scale.
pub const TILE_OVERLAP: u32 = 128;

pub struct FaceDetector {
    sessions: Mutex<Vec<Session>>,
    /// Signalled when a session goes back to `sessions`.
    session_free: Condvar,
    /// Photos being indexed: at most `workers + decode_ahead` at once.
    permits: Semaphore,
    /// Selfies, which a guest waits for: their own `workers` permits, so a
    /// selfie never queues behind the photos of an import, and the next
    /// free session goes to a waiting selfie before any photo.
    selfie_permits: Semaphore,
    /// Selfies waiting for a session.
    selfies_waiting: AtomicUsize,
    /// Sessions for selfies only (`selfie.sessions`), at the process's CPU
    /// priority; empty: selfies share `sessions`.
    selfie_sessions: Mutex<Vec<Session>>,
    /// Signalled when a selfie session goes back.
    selfie_session_free: Condvar,
    /// Inferences run, by pool (tests and diagnostics).
    pub runs: SessionRuns,
    config: DetectorConfig,
}

/// Inferences run on each pool's sessions.
#[derive(Debug, Default)]
pub struct SessionRuns {
    /// On the `workers`' sessions (photos, and selfies when they have none
    /// of their own).
    pub shared: AtomicUsize,
    /// On the selfies' own sessions.
    pub selfie: AtomicUsize,
}

thread_local! {
    /// Whether the detection on this (blocking) thread is a selfie's.
    static SELFIE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// What the detector's model file must look like (SCRFD with keypoints).
pub fn model_check(config: &DetectorConfig) -> ModelCheck {
    let mut outputs = Vec::new();
    for width in [1, 4, 10] {
        for _ in scrfd::STRIDES {
            // [anchors, k] as buffalo_l exports it, or [1, anchors, k] with
            // a batch dimension as other SCRFD exports do (insightface takes
            // both); the values are the same either way.
            outputs.push(TensorSpec::new(&[None, Some(width)]).with_optional_batch());
        }
    }
    let side = config
        .model
        .fixed_input
        .then_some(config.model.input_size as i64);
    ModelCheck {
        path: config.model.path.clone().into(),
        sha256: config.model.sha256.clone(),
        inputs: vec![TensorSpec::new(&[Some(1), Some(3), side, side])],
        outputs,
        hint:
            "run scripts/setup.sh (generates the fixture models), or see README.md to use buffalo_l"
                .into(),
    }
}

impl FaceDetector {
    /// Loads `workers` sessions of the configured model.
    pub fn load(config: &DetectorConfig, env_dylib: Option<&str>) -> Result<Self, ModelError> {
        let mut config = config.clone();
        if !config.model.pack.is_empty() {
            let pack =
                facepass_inference::pack::Pack::open(std::path::Path::new(&config.model.pack))?;
            pack.verify()?;
            let m = &pack.manifest;
            tracing::info!(licence = %m.licence.name, commercial_use = m.licence.commercial_use, "{}", m.licence_line());
            // The pack's identity, as the embedder reports its own.
            config.model.name = m.model_id();
            config.model.path = pack.detector_path().display().to_string();
            config.model.sha256 = String::new(); // verified just above
            config.model.input_size = m.detector.input_size;
            config.model.fixed_input = m.detector.fixed_input;
            config.model.score_threshold = m.detector.score_threshold;
            config.model.nms_threshold = m.detector.nms_threshold;
        }
        let config = &config;
        let env = facepass_inference::environment(&config.ort, env_dylib)?;
        let check = model_check(config);
        // Photo sessions are built on a lowered thread, so that their
        // intra-op threads (when `ort.intra_threads` > 1) run lowered too.
        let sessions = facepass_inference::priority::on_lowered_thread(config.photo_nice, || {
            (0..config.workers)
                .map(|_| {
                    facepass_inference::load_session(
                        env,
                        &check,
                        config.ort.intra_threads,
                        &config.ort,
                    )
                })
                .collect::<Result<Vec<_>, _>>()
        })?;
        let selfie_sessions = (0..config.selfie.sessions)
            .map(|_| {
                facepass_inference::load_session_spinning(
                    env,
                    &check,
                    config.selfie.threads,
                    &config.ort,
                    false,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        facepass_inference::release_freed_memory();
        tracing::info!(
            model = %config.model.name,
            path = %config.model.path,
            workers = config.workers,
            selfie_sessions = config.selfie.sessions,
            "detector model loaded"
        );
        Ok(FaceDetector {
            sessions: Mutex::new(sessions),
            session_free: Condvar::new(),
            permits: Semaphore::new(config.workers + config.decode_ahead),
            selfie_permits: Semaphore::new(config.workers),
            selfies_waiting: AtomicUsize::new(0),
            selfie_sessions: Mutex::new(selfie_sessions),
            selfie_session_free: Condvar::new(),
            runs: SessionRuns::default(),
            config: config.clone(),
        })
    }

    pub fn model_name(&self) -> &str {
        &self.config.model.name
    }

    /// Decodes and detects on a blocking thread; at most `workers +
    /// decode_ahead` at once.
    pub async fn detect(self: &Arc<Self>, bytes: bytes::Bytes, mode: Mode) -> Result<Faces, Error> {
        self.detect_with_previews(bytes, mode, Vec::new()).await
    }

    /// [`detect`](Self::detect), and JPEG previews of the photo scaled to
    /// fit each of `preview_sides`, rendered from the image already decoded.
    pub async fn detect_with_previews(
        self: &Arc<Self>,
        bytes: bytes::Bytes,
        mode: Mode,
        preview_sides: Vec<u32>,
    ) -> Result<Faces, Error> {
        let permits = match mode {
            Mode::All => &self.permits,
            Mode::Selfie => &self.selfie_permits,
        };
        let _permit = permits
            .acquire()
            .await
            .map_err(|_| Error::unavailable("detector is shutting down"))?;
        let this = Arc::clone(self);
        let work = move || {
            SELFIE.with(|s| s.set(mode == Mode::Selfie));
            this.detect_blocking(&bytes, mode, &preview_sides)
        };
        match mode {
            // Photos on tokio's blocking threads, lowered once for good
            // (`photo_nice`).
            Mode::All => {
                let nice = self.config.photo_nice;
                tokio::task::spawn_blocking(move || {
                    facepass_inference::priority::lower_this_thread(nice);
                    work()
                })
                .await
                .map_err(|e| Error::internal(format!("detection task failed: {e}")))?
            }
            // A selfie on a thread of its own, at the process's priority:
            // never on a lowered one.
            Mode::Selfie => {
                let (sender, receiver) = tokio::sync::oneshot::channel();
                std::thread::Builder::new()
                    .name("detector-selfie".into())
                    .spawn(move || {
                        let _ = sender.send(work());
                    })
                    .map_err(|e| Error::internal(format!("selfie thread: {e}")))?;
                receiver
                    .await
                    .map_err(|_| Error::internal("selfie detection thread died"))?
            }
        }
    }

    fn detect_blocking(&self, bytes: &[u8], mode: Mode, previews: &[u32]) -> Result<Faces, Error> {
        // Whether the selfie was looked at on a small canvas already.
        let mut small_tried = false;
        if mode == Mode::Selfie && self.config.selfie.reduced_decode {
            let (size, side) = (self.config.model.input_size, self.selfie_side());
            // The small pass first, then the model's own; each on the
            // smallest DCT-scaled decode that holds its canvas.
            let passes: &[u32] = if side < size { &[side, size] } else { &[size] };
            for &pass in passes {
                let started = std::time::Instant::now();
                let Some(reduced) = crate::decode::decode_reduced(bytes, &self.config.limits, pass)
                else {
                    break;
                };
                crate::metrics::get()
                    .decode_seconds
                    .observe(started.elapsed().as_secs_f64());
                if let Some(faces) = self.selfie_reduced(bytes, &reduced, pass)? {
                    return Ok(faces);
                }
                small_tried |= pass < size;
            }
        }
        if mode == Mode::All && self.config.reduced_decode {
            // The passes never look at more than this many pixels, nor the
            // largest preview.
            let needed = self
                .config
                .fine_pass_side
                .max(self.config.model.input_size)
                .max(previews.iter().copied().max().unwrap_or(0));
            let metrics = crate::metrics::get();
            let started = std::time::Instant::now();
            if let Some(reduced) = crate::decode::decode_reduced(bytes, &self.config.limits, needed)
            {
                metrics
                    .decode_seconds
                    .observe(started.elapsed().as_secs_f64());
                // Detection, with the full decode of a face too narrow
                // for its crop when there is one.
                let started = std::time::Instant::now();
                let mut faces = self.detect_reduced(bytes, &reduced)?;
                metrics
                    .detect_seconds
                    .get_or_create(&crate::metrics::ModeLabels { mode: "photo" })
                    .observe(started.elapsed().as_secs_f64());
                let started = std::time::Instant::now();
                faces.previews = crate::preview::render(&reduced.image, previews)?;
                if !previews.is_empty() {
                    metrics
                        .preview_seconds
                        .observe(started.elapsed().as_secs_f64());
                }
                return Ok(faces);
            }
        }
        let metrics = crate::metrics::get();
        let started = std::time::Instant::now();
        let image = decode_rgb(bytes, &self.config.limits)?;
        metrics
            .decode_seconds
            .observe(started.elapsed().as_secs_f64());
        let (width, height) = image.dimensions();
        let started = std::time::Instant::now();
        let faces = match mode {
            Mode::All => self
                .detect_all(&image)?
                .into_iter()
                .map(|detection| {
                    let issues = self.issues(&detection, width, height);
                    let crop = align_face(&image, &detection.landmarks);
                    Face {
                        detection,
                        issues,
                        crop,
                    }
                })
                .collect(),
            Mode::Selfie => self
                .detect_selfie(&image, self.config.selfie.retry_shrunk, small_tried)?
                .into_iter()
                .collect(),
        };
        let label = match mode {
            Mode::All => "photo",
            Mode::Selfie => "selfie",
        };
        metrics
            .detect_seconds
            .get_or_create(&crate::metrics::ModeLabels { mode: label })
            .observe(started.elapsed().as_secs_f64());
        let started = std::time::Instant::now();
        let previews = crate::preview::render(&image, previews)?;
        if !previews.is_empty() {
            metrics
                .preview_seconds
                .observe(started.elapsed().as_secs_f64());
        }
        Ok(Faces {
            width,
            height,
            faces,
            decode_scale: 1.0,
            previews,
        })
    }

    /// A selfie's main face from its JPEG decoded at reduced scale (its
    /// long side at least `side`, where the face is looked for), mapped
    /// back to the original's pixels; `None` when there is no face there
    /// (the full image decides). The aligned crop comes from the reduced
    /// image when the face is at least `reduced_min_face_px` wide there,
    /// else from the smallest decode in which it is, or the full image.
    fn selfie_reduced(
        &self,
        bytes: &[u8],
        reduced: &crate::decode::Reduced,
        side: u32,
    ) -> Result<Option<Faces>, Error> {
        let started = std::time::Instant::now();
        // No shrunk retries here: a selfie without a face at this scale is
        // looked at again, in full, with them.
        let Some(SelfieSeen { mut main, rivals }) =
            self.find_selfie(&reduced.image, side, false)?
        else {
            return Ok(None);
        };
        if !self.trusted_at(&main, reduced.image.dimensions(), side) {
            return Ok(None);
        }
        crate::metrics::get()
            .detect_seconds
            .get_or_create(&crate::metrics::ModeLabels { mode: "selfie" })
            .observe(started.elapsed().as_secs_f64());
        let narrow = main.bbox[2] - main.bbox[0] < self.config.reduced_min_face_px;
        let up = 1.0 / reduced.scale;
        main.bbox = main.bbox.map(|v| v * up);
        main.landmarks = main.landmarks.map(|[x, y]| [x * up, y * up]);
        let (width, height) = reduced.full;
        let issues = self.selfie_issues(&main, rivals, width, height);
        let face = if !narrow {
            self.selfie_face(&reduced.image, reduced.scale, main, issues)
        } else {
            // Too few pixels here for a good 112x112 crop.
            let face_px = (main.bbox[2] - main.bbox[0]).max(1.0);
            let long = width.max(height) as f32;
            let needed = (long * self.config.reduced_min_face_px / face_px).ceil() as u32;
            match crate::decode::decode_reduced(bytes, &self.config.limits, needed) {
                Some(larger) if larger.scale > reduced.scale => {
                    self.selfie_face(&larger.image, larger.scale, main, issues)
                }
                _ => {
                    let full = decode_rgb(bytes, &self.config.limits)?;
                    self.selfie_face(&full, 1.0, main, issues)
                }
            }
        };
        Ok(Some(Faces {
            width,
            height,
            faces: vec![face],
            decode_scale: reduced.scale,
            previews: Vec::new(),
        }))
    }

    /// Detection on a JPEG decoded at reduced scale. Boxes and landmarks
    /// are mapped back to the original's pixels; each aligned crop comes
    /// from the reduced image when the face is at least
    /// `reduced_min_face_px` wide there (enough pixels for 112x112), and
    /// otherwise from the full image, decoded once, only when needed.
    fn detect_reduced(
        &self,
        bytes: &[u8],
        reduced: &crate::decode::Reduced,
    ) -> Result<Faces, Error> {
        let (width, height) = reduced.full;
        let up = 1.0 / reduced.scale;
        let mut full: Option<RgbImage> = None;
        let mut faces = Vec::new();
        for small in self.detect_all(&reduced.image)? {
            let narrow = small.bbox[2] - small.bbox[0] < self.config.reduced_min_face_px;
            let mut detection = small.clone();
            detection.bbox = small.bbox.map(|v| v * up);
            detection.landmarks = small.landmarks.map(|[x, y]| [x * up, y * up]);
            let crop = if narrow {
                if full.is_none() {
                    full = Some(decode_rgb(bytes, &self.config.limits)?);
                }
                align_face(full.as_ref().expect("decoded above"), &detection.landmarks)
            } else {
                align_face(&reduced.image, &small.landmarks)
            };
            let issues = self.issues(&detection, width, height);
            faces.push(Face {
                detection,
                issues,
                crop,
            });
        }
        Ok(Faces {
            width,
            height,
            faces,
            decode_scale: reduced.scale,
            previews: Vec::new(),
        })
    }

    /// insightface's 640x640 pass, plus a finer pass over large photos so
    /// small faces in group shots are not lost; duplicates merge by NMS.
    fn detect_all(&self, image: &RgbImage) -> Result<Vec<Detection>, Error> {
        let (detections, look) = self.detect_all_explained(image)?;
        crate::metrics::get()
            .fine_pass
            .get_or_create(&crate::metrics::LookLabels { look: look.name() })
            .inc();
        Ok(detections)
    }

    /// [`detect_all`](Self::detect_all), saying what the finer pass did.
    ///
    /// The finer pass sees the photo with its long side at
    /// `fine_pass_side`: as one canvas of that size, or, when the model's
    /// input is fixed, as overlapping tiles of the model's size; or, with
    /// `fine_pass = auto`, only the regions around the first pass's small
    /// weak candidates ([`FineLook`]).
    pub fn detect_all_explained(
        &self,
        image: &RgbImage,
    ) -> Result<(Vec<Detection>, FineLook), Error> {
        let size = self.config.model.input_size;
        let threshold = self.config.model.score_threshold;
        let fine = self.config.fine_pass_side;
        let long = image.width().max(image.height());
        let wanted = fine > 0 && long > fine;
        let auto = wanted && self.config.fine_pass == FinePass::Auto;
        // With `auto`, the first pass also keeps weaker candidates: they
        // point at faces too small for it to confirm. The confident ones are
        // exactly what the pass alone returns (NMS keeps higher scores first).
        let first_threshold = if auto {
            self.config.proposal_score.min(threshold)
        } else {
            threshold
        };
        let prepared = self.prepare_first(image);
        let (mut detections, weak): (Vec<Detection>, Vec<Detection>) = self
            .infer_at(&prepared, prepared.width, prepared.height, first_threshold)?
            .into_iter()
            .partition(|d| d.score >= threshold);
        if !wanted {
            return Ok((detections, FineLook::Off));
        }
        let look = if auto {
            fine_look(
                &detections,
                &weak,
                (image.width(), image.height()),
                self.config.first_pass_min_face / prepared.det_scale,
                size as f32 * long as f32 / fine as f32,
                self.config.max_proposal_regions,
            )
        } else {
            FineLook::Whole
        };
        let scale = fine as f32 / long as f32;
        match &look {
            FineLook::Off | FineLook::Skipped => return Ok((detections, look)),
            FineLook::Whole => {
                if self.config.model.fixed_input {
                    detections.extend(self.run_tiles(image, scale)?);
                } else {
                    let round32 =
                        |v: u32| (((v as f32 * scale).ceil() as u32).div_ceil(32) * 32).max(32);
                    let (cw, ch) = (round32(image.width()), round32(image.height()));
                    detections.extend(self.run_model(image, cw, ch)?);
                }
            }
            FineLook::Regions(regions) => {
                for region in regions {
                    detections.extend(self.run_region(image, *region)?);
                }
            }
        }
        detections.sort_by(|a, b| b.score.total_cmp(&a.score));
        Ok((
            scrfd::nms(detections, self.config.model.nms_threshold),
            look,
        ))
    }

    /// Detection on one square region of the photo (`[x, y, side]` in its
    /// pixels) at the model's input size; detections in the photo's pixels.
    fn run_region(
        &self,
        image: &RgbImage,
        [x, y, side]: [u32; 3],
    ) -> Result<Vec<Detection>, Error> {
        let size = self.config.model.input_size;
        let crop = image::imageops::crop_imm(image, x, y, side, side).to_image();
        let (width, height) = image.dimensions();
        let (right, bottom) = ((x + side) as f32, (y + side) as f32);
        // A face cut by the region's edge inside the photo is half a face:
        // dropped (the first pass, or the whole pass, sees it whole).
        let cut = |d: &Detection| {
            let [x1, y1, x2, y2] = d.bbox;
            (x > 0 && x1 <= x as f32 + 2.0)
                || (y > 0 && y1 <= y as f32 + 2.0)
                || (x + side < width && x2 >= right - 2.0)
                || (y + side < height && y2 >= bottom - 2.0)
        };
        Ok(self
            .run_model(&crop, size, size)?
            .into_iter()
            .map(|mut d| {
                let shift = |[px, py]: [f32; 2]| [px + x as f32, py + y as f32];
                let [x1, y1] = shift([d.bbox[0], d.bbox[1]]);
                let [x2, y2] = shift([d.bbox[2], d.bbox[3]]);
                d.bbox = [x1, y1, x2, y2];
                d.landmarks = d.landmarks.map(shift);
                d
            })
            .filter(|d| !cut(d))
            .collect())
    }

    /// The photo resized by `scale`, cut into overlapping tiles of the
    /// model's fixed input size; detections in original pixels.
    fn run_tiles(&self, image: &RgbImage, scale: f32) -> Result<Vec<Detection>, Error> {
        let size = self.config.model.input_size;
        let (w, h) = (
            ((image.width() as f32 * scale).round() as u32).max(1),
            ((image.height() as f32 * scale).round() as u32).max(1),
        );
        let scaled = crate::vision::resize_bilinear(image, w, h);
        let (sx, sy) = (
            image.width() as f32 / w as f32,
            image.height() as f32 / h as f32,
        );
        let mut found = Vec::new();
        for (x0, y0) in scrfd::tiles(w, h, size, TILE_OVERLAP) {
            let prepared = scrfd::prepare_tile(&scaled, x0, y0, size);
            for mut d in self.infer(&prepared, size, size)? {
                let back = |[x, y]: [f32; 2]| [(x + x0 as f32) * sx, (y + y0 as f32) * sy];
                let [x1, y1] = back([d.bbox[0], d.bbox[1]]);
                let [x2, y2] = back([d.bbox[2], d.bbox[3]]);
                d.bbox = [x1, y1, x2, y2];
                d.landmarks = d.landmarks.map(back);
                found.push(d);
            }
        }
        Ok(found)
    }

    /// The first pass's input for `image` (`first_pass_canvas`).
    fn prepare_first(&self, image: &RgbImage) -> scrfd::Prepared {
        self.prepare_at(image, self.config.model.input_size)
    }

    /// The first pass's kind of input, with long side `side`.
    fn prepare_at(&self, image: &RgbImage, side: u32) -> scrfd::Prepared {
        if self.config.model.fixed_input || self.config.first_pass_canvas == Canvas::Square {
            scrfd::prepare(image, side)
        } else {
            scrfd::prepare_fitted(image, side)
        }
    }

    /// The side a selfie is first detected at (`selfie.detect_side`): the
    /// model's own when that is 0, not smaller, or the input is fixed.
    fn selfie_side(&self) -> u32 {
        let size = self.config.model.input_size;
        let side = self.config.selfie.detect_side;
        if self.config.model.fixed_input || side == 0 || side >= size {
            size
        } else {
            side
        }
    }

    /// Whether a face found on a canvas of long side `side` smaller than
    /// the model's is large enough there for its landmarks to be trusted
    /// ([`SMALL_PASS_MIN_FACE`]); the model's own pass is always trusted.
    fn trusted_at(&self, face: &Detection, (width, height): (u32, u32), side: u32) -> bool {
        if side >= self.config.model.input_size {
            return true;
        }
        let on_canvas = (face.bbox[2] - face.bbox[0]) * side as f32 / width.max(height) as f32;
        on_canvas >= SMALL_PASS_MIN_FACE
    }

    /// The main face of a selfie (the whole image) with its verdicts, or
    /// none: first at `selfie_side` (unless `small_tried`: it found nothing
    /// there already), then at the model's size with the shrunk retries.
    fn detect_selfie(
        &self,
        image: &RgbImage,
        retry_shrunk: bool,
        small_tried: bool,
    ) -> Result<Option<Face>, Error> {
        let (size, side) = (self.config.model.input_size, self.selfie_side());
        let mut seen = None;
        if side < size && !small_tried {
            seen = self
                .find_selfie(image, side, false)?
                .filter(|s| self.trusted_at(&s.main, image.dimensions(), side));
        }
        if seen.is_none() {
            seen = self.find_selfie(image, size, retry_shrunk)?;
        }
        let Some(SelfieSeen { main, rivals }) = seen else {
            return Ok(None);
        };
        let (width, height) = image.dimensions();
        let issues = self.selfie_issues(&main, rivals, width, height);
        Ok(Some(self.selfie_face(image, 1.0, main, issues)))
    }

    /// The main face of a selfie seen on a canvas of long side `side`, in
    /// `image`'s pixels; with `retry_shrunk`, when nothing is found, the
    /// image shrunk onto the model's canvas is looked at again.
    fn find_selfie(
        &self,
        image: &RgbImage,
        side: u32,
        retry_shrunk: bool,
    ) -> Result<Option<SelfieSeen>, Error> {
        let prepared = self.prepare_at(image, side);
        let mut detections = self.infer(&prepared, prepared.width, prepared.height)?;
        if detections.is_empty() && retry_shrunk {
            // A face that fills the frame is too large for SCRFD: shrink the
            // selfie onto a black canvas of the model's size and try again.
            for factor in [2.0f32, 3.0] {
                detections = self.run_shrunk(image, factor)?;
                if !detections.is_empty() {
                    break;
                }
            }
        }
        let (width, height) = image.dimensions();
        let Some(main) = main_face(detections.clone(), width, height) else {
            return Ok(None);
        };
        let area = |d: &Detection| (d.bbox[2] - d.bbox[0]) * (d.bbox[3] - d.bbox[1]);
        // A face cut by the frame's edge is a bystander, not a second subject:
        // on real photos a neighbour half in frame is common (a crop of a
        // group photo, a crowd behind the guest) and the main face, the
        // large central one, is clearly the guest's.
        let rivals = detections
            .iter()
            .filter(|d| d.bbox != main.bbox && !touches_edge(d, width, height))
            .any(|d| area(d) >= self.config.selfie.ambiguity_ratio * area(&main));
        Ok(Some(SelfieSeen { main, rivals }))
    }

    /// The verdicts on a selfie's main face, in the original's pixels
    /// (`width` x `height`), whatever scale it was detected at.
    fn selfie_issues(&self, main: &Detection, rivals: bool, width: u32, height: u32) -> Vec<Issue> {
        let mut issues = self.issues(main, width, height);
        if rivals {
            issues.push(Issue::MultipleFaces);
        }
        let [x1, y1, x2, y2] = main.bbox;
        if (x2 - x1).min(y2 - y1) < self.config.selfie.min_face_px
            && !issues.contains(&Issue::TooSmall)
        {
            issues.push(Issue::TooSmall);
        }
        issues
    }

    /// The selfie's face aligned from `image`, which holds `scale` of its
    /// pixels per original pixel (`detection` is in the original's), and
    /// the blur verdict on that crop.
    fn selfie_face(
        &self,
        image: &RgbImage,
        scale: f32,
        detection: Detection,
        mut issues: Vec<Issue>,
    ) -> Face {
        let landmarks = detection.landmarks.map(|[x, y]| [x * scale, y * scale]);
        let crop = align_face(image, &landmarks);
        if sharpness(&crop) < self.config.selfie.blur_threshold {
            issues.push(Issue::Blurry);
        }
        Face {
            detection,
            issues,
            crop,
        }
    }

    /// Detects on the image shrunk by `factor` and centred on a black
    /// square canvas of the model's input size; maps results back.
    fn run_shrunk(&self, image: &RgbImage, factor: f32) -> Result<Vec<Detection>, Error> {
        let size = self.config.model.input_size;
        let long = image.width().max(image.height()) as f32;
        let scale = size as f32 / long / factor;
        let (w, h) = (
            ((image.width() as f32 * scale).round() as u32).max(1),
            ((image.height() as f32 * scale).round() as u32).max(1),
        );
        let small = crate::vision::resize_bilinear(image, w, h);
        let (ox, oy) = ((size - w) / 2, (size - h) / 2);
        let mut canvas = RgbImage::new(size, size);
        image::imageops::replace(&mut canvas, &small, ox as i64, oy as i64);
        let back = |x: f32, y: f32| [(x - ox as f32) / scale, (y - oy as f32) / scale];
        Ok(self
            .run_model(&canvas, size, size)?
            .into_iter()
            .map(|mut d| {
                let [x1, y1] = back(d.bbox[0], d.bbox[1]);
                let [x2, y2] = back(d.bbox[2], d.bbox[3]);
                d.bbox = [x1, y1, x2, y2];
                d.landmarks = d.landmarks.map(|[x, y]| back(x, y));
                d
            })
            .collect())
    }

    fn run_model(
        &self,
        image: &RgbImage,
        width: u32,
        height: u32,
    ) -> Result<Vec<Detection>, Error> {
        let prepared = scrfd::prepare_canvas(image, width, height);
        self.infer(&prepared, width, height)
    }

    /// One inference on a prepared `width` x `height` input.
    fn infer(
        &self,
        prepared: &scrfd::Prepared,
        width: u32,
        height: u32,
    ) -> Result<Vec<Detection>, Error> {
        self.infer_at(prepared, width, height, self.config.model.score_threshold)
    }

    /// [`infer`](Self::infer), keeping candidates down to `threshold`.
    fn infer_at(
        &self,
        prepared: &scrfd::Prepared,
        width: u32,
        height: u32,
        threshold: f32,
    ) -> Result<Vec<Detection>, Error> {
        let selfie = SELFIE.with(|s| s.get());
        let (mut session, own) = self.take_session(selfie)?;
        let pool = if own {
            &self.runs.selfie
        } else {
            &self.runs.shared
        };
        pool.fetch_add(1, Ordering::Relaxed);
        let result = (|| {
            let input = TensorRef::from_array_view((
                [1usize, 3, height as usize, width as usize],
                prepared.tensor.as_slice(),
            ))
            .map_err(|e| Error::internal(format!("input tensor: {e}")))?;
            let outputs = session
                .run(facepass_inference::ort::inputs![input])
                .map_err(|e| Error::internal(format!("detector inference: {e}")))?;
            let mut slices: Vec<&[f32]> = Vec::with_capacity(9);
            for i in 0..9 {
                let (_, data) = outputs[i]
                    .try_extract_tensor::<f32>()
                    .map_err(|e| Error::internal(format!("detector output {i}: {e}")))?;
                slices.push(data);
            }
            let raw = RawOutputs {
                scores: [slices[0], slices[1], slices[2]],
                boxes: [slices[3], slices[4], slices[5]],
                keypoints: [slices[6], slices[7], slices[8]],
            };
            scrfd::decode(
                &raw,
                (width, height),
                prepared.det_scale,
                threshold,
                self.config.model.nms_threshold,
            )
            .map_err(|e| Error::internal(format!("detector outputs: {e}")))
        })();
        if own {
            if let Ok(mut pool) = self.selfie_sessions.lock() {
                pool.push(session);
            }
            self.selfie_session_free.notify_one();
        } else {
            if let Ok(mut pool) = self.sessions.lock() {
                pool.push(session);
            }
            // Every waiter looks: a selfie among them must get it.
            self.session_free.notify_all();
        }
        result
    }

    /// Waits for a session (blocking threads only; the permits bound how
    /// many images can be waiting, and each holds one session at most).
    /// A selfie takes one of its own sessions when there are any (`true`
    /// beside it: it goes back there); otherwise the next free one of the
    /// pool, before any photo; a photo takes one only when no selfie waits.
    fn take_session(&self, selfie: bool) -> Result<(Session, bool), Error> {
        let poisoned = |_| Error::internal("detector session pool poisoned");
        if selfie && self.config.selfie.sessions > 0 {
            let mut pool = self.selfie_sessions.lock().map_err(poisoned)?;
            loop {
                if let Some(session) = pool.pop() {
                    return Ok((session, true));
                }
                pool = self.selfie_session_free.wait(pool).map_err(poisoned)?;
            }
        }
        let mut pool = self.sessions.lock().map_err(poisoned)?;
        if selfie {
            self.selfies_waiting.fetch_add(1, Ordering::SeqCst);
        }
        let session = loop {
            if selfie || self.selfies_waiting.load(Ordering::SeqCst) == 0 {
                if let Some(session) = pool.pop() {
                    break session;
                }
            }
            match self.session_free.wait(pool) {
                Ok(p) => pool = p,
                Err(_) => return Err(Error::internal("detector session pool poisoned")),
            }
        };
        if selfie {
            self.selfies_waiting.fetch_sub(1, Ordering::SeqCst);
            // A photo that saw this selfie waiting may have let a free
            // session be: it looks again (the lock is still held).
            if !pool.is_empty() {
                self.session_free.notify_all();
            }
        }
        Ok((session, false))
    }

    fn issues(&self, d: &Detection, width: u32, height: u32) -> Vec<Issue> {
        let mut issues = Vec::new();
        let [x1, y1, x2, y2] = d.bbox;
        if (x2 - x1).min(y2 - y1) < self.config.min_face_px {
            issues.push(Issue::TooSmall);
        }
        if d.score < 0.6 {
            issues.push(Issue::LowConfidence);
        }
        let (w, h) = (x2 - x1, y2 - y1);
        let outside = (-x1).max(0.0) + (x2 - width as f32).max(0.0);
        let outside_y = (-y1).max(0.0) + (y2 - height as f32).max(0.0);
        if outside > 0.1 * w || outside_y > 0.1 * h {
            issues.push(Issue::Truncated);
        }
        issues
    }
}

/// Whether a face's box reaches (or crosses) the image's border.
pub fn touches_edge(d: &Detection, width: u32, height: u32) -> bool {
    let [x1, y1, x2, y2] = d.bbox;
    x1 <= 1.0 || y1 <= 1.0 || x2 >= width as f32 - 1.0 || y2 >= height as f32 - 1.0
}

/// Variance of the Laplacian of the crop's grey levels: low means blurry.
pub fn sharpness(crop: &RgbImage) -> f32 {
    let (w, h) = crop.dimensions();
    let grey: Vec<f32> = crop
        .pixels()
        .map(|p| 0.299 * p.0[0] as f32 + 0.587 * p.0[1] as f32 + 0.114 * p.0[2] as f32)
        .collect();
    let at = |x: u32, y: u32| grey[(y * w + x) as usize];
    let mut values = Vec::with_capacity(((w - 2) * (h - 2)) as usize);
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            values.push(4.0 * at(x, y) - at(x - 1, y) - at(x + 1, y) - at(x, y - 1) - at(x, y + 1));
        }
    }
    let n = values.len() as f32;
    let mean = values.iter().sum::<f32>() / n;
    values.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n
}

/// The main face of a selfie: the largest, discounted by its distance from
/// the image centre so a big face at the edge loses to the subject.
pub fn main_face(detections: Vec<Detection>, width: u32, height: u32) -> Option<Detection> {
    let (cx, cy) = (width as f32 / 2.0, height as f32 / 2.0);
    let diagonal = ((width * width + height * height) as f32).sqrt() / 2.0;
    let weight = |d: &Detection| {
        let [x1, y1, x2, y2] = d.bbox;
        let area = (x2 - x1) * (y2 - y1);
        let (fx, fy) = ((x1 + x2) / 2.0 - cx, (y1 + y2) / 2.0 - cy);
        let off = (fx * fx + fy * fy).sqrt() / diagonal;
        area * (1.0 - 0.5 * off)
    };
    detections
        .into_iter()
        .max_by(|a, b| weight(a).total_cmp(&weight(b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(bbox: [f32; 4]) -> Detection {
        Detection {
            bbox,
            score: 0.9,
            landmarks: [[0.0; 2]; 5],
        }
    }

    /// A square face of `side` px centred at (x, y).
    fn face(x: f32, y: f32, side: f32) -> Detection {
        det([
            x - side / 2.0,
            y - side / 2.0,
            x + side / 2.0,
            y + side / 2.0,
        ])
    }

    // A 6000x4000 photo: the first pass's floor is 16 px at 640 = 150 px,
    // one region of the finer pass at 1920 is 2000 px.
    const PHOTO: (u32, u32) = (6000, 4000);
    const FLOOR: f32 = 150.0;
    const REGION: f32 = 2000.0;

    fn look(confident: &[Detection], weak: &[Detection]) -> FineLook {
        fine_look(confident, weak, PHOTO, FLOOR, REGION, 4)
    }

    #[test]
    fn no_face_or_a_face_near_the_limit_gets_the_whole_finer_pass() {
        assert_eq!(look(&[], &[]), FineLook::Whole);
        assert_eq!(look(&[], &[face(100.0, 100.0, 30.0)]), FineLook::Whole);
        // 220 px < 1.5 x 150: smaller faces may stand beside it.
        assert_eq!(
            look(
                &[face(3000.0, 2000.0, 400.0), face(1000.0, 1000.0, 220.0)],
                &[]
            ),
            FineLook::Whole
        );
    }

    #[test]
    fn large_faces_alone_skip_the_finer_pass() {
        let faces = [face(2000.0, 2000.0, 400.0), face(4000.0, 2000.0, 250.0)];
        assert_eq!(look(&faces, &[]), FineLook::Skipped);
        // A weak candidate inside a found face (an eye, a half face) is not a proposal,
        // nor is a weak candidate as large as the faces found.
        let inside = face(2050.0, 1950.0, 60.0);
        let large = face(5000.0, 3000.0, 300.0);
        assert_eq!(look(&faces, &[inside, large]), FineLook::Skipped);
    }

    #[test]
    fn small_weak_candidates_get_their_regions_only() {
        let faces = [face(2000.0, 2000.0, 400.0)];
        let far = face(5500.0, 3800.0, 60.0);
        let FineLook::Regions(regions) = look(&faces, std::slice::from_ref(&far)) else {
            panic!("expected regions");
        };
        // One square of the finer pass's input, around the candidate, kept in the photo.
        assert_eq!(regions, vec![[4000, 2000, 2000]]);
        // A second candidate well inside that region adds nothing; one elsewhere adds one.
        let near = face(5000.0, 3000.0, 50.0);
        let elsewhere = face(600.0, 600.0, 50.0);
        let FineLook::Regions(regions) = look(&faces, &[far, near, elsewhere]) else {
            panic!("expected regions");
        };
        assert_eq!(regions, vec![[4000, 2000, 2000], [0, 0, 2000]]);
    }

    #[test]
    fn too_many_regions_get_the_whole_finer_pass() {
        let faces = [face(3000.0, 2000.0, 400.0)];
        let scattered: Vec<Detection> = (0..6)
            .map(|i| {
                face(
                    300.0 + 1100.0 * i as f32,
                    (i % 2) as f32 * 3600.0 + 200.0,
                    50.0,
                )
            })
            .collect();
        assert_eq!(look(&faces, &scattered), FineLook::Whole);
    }

    #[test]
    fn a_face_at_the_border_touches_the_edge() {
        assert!(touches_edge(&det([0.0, 40.0, 60.0, 100.0]), 200, 200));
        assert!(touches_edge(&det([150.0, 40.0, 210.0, 100.0]), 200, 200));
        assert!(touches_edge(&det([50.0, 150.0, 100.0, 199.5]), 200, 200));
        assert!(!touches_edge(&det([50.0, 50.0, 100.0, 100.0]), 200, 200));
    }

    #[test]
    fn main_face_prefers_large_and_central() {
        let picked = main_face(
            vec![
                det([0.0, 0.0, 50.0, 50.0]),
                det([200.0, 200.0, 300.0, 300.0]),
            ],
            500,
            500,
        )
        .unwrap();
        assert_eq!(picked.bbox, [200.0, 200.0, 300.0, 300.0]);
        assert!(main_face(Vec::new(), 10, 10).is_none());
    }
}
