//! facepass-bench-vision: speed of FacePass's vision pipeline on the photos
//! of tools/bench/make_photos.py (24 MP JPEGs in classes of 1-5, 6-15 and
//! 16-30 faces), from JPEG bytes to embeddings, decoding included:
//!
//! - in process (detector engine + embedder batcher), with insightface's
//!   single 640x640 pass ("parity") and with the fine pass, each with the
//!   JPEG decoded in full (as insightface) and at reduced scale;
//! - in process with several photos in flight on the same core budget
//!   (T sessions of 1 thread each, the service's shape for throughput);
//! - JPEG decoding alone (full, and 1/8 scale in the DCT domain);
//! - through gRPC (detector and embedder servers on loopback, the indexer's
//!   calls);
//! - raw ONNX Runtime inference alone on pre-made inputs (the floor);
//! - embedding throughput one face at a time against dynamic batching.
//!
//! ```text
//! facepass-bench-vision MODEL_DIR PHOTO_DIR [--threads T] [--repeat R]
//!     [--provider cpu|cuda] [--[det-|rec-]cuda-conv-search exhaustive|heuristic|default]
//!     [--[det-|rec-]cuda-nhwc true|false] [--fast-models INT8_PACK]
//!     [--only TEXT[|TEXT...]] [--out JSON]
//! ```
//!
//! Each service's ONNX Runtime settings are its defaults; `--provider` sets
//! both, the `cuda` options set both or, with `det-`/`rec-`, one
//! (tools/bench/gpu.sh). `--only` keeps the rows whose label holds one of
//! the texts.
//!
//! With --fast-models (the INT8 variant of MODEL_DIR, tools/models/quantize.py)
//! the defaults with photos in flight also run on that pack: the opt-in fast
//! tier's row ("INT8 pack, ...").
//!
//! Build with --release. Figures per class: median photos/s and faces/s
//! over R runs, with min and max.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use facepass_detector::config::{Canvas, FinePass};
use facepass_detector::engine::{FaceDetector, Mode};
use facepass_detector::DetectorConfig;
use facepass_embedder::EmbedderConfig;
use facepass_inference::ort::session::Session;
use facepass_inference::ort::value::TensorRef;
use facepass_inference::OrtConfig;
use serde_json::{json, Value};

#[derive(Clone)]
struct Photo {
    class: String,
    bytes: bytes::Bytes,
    faces: usize,
}

struct Args {
    models: String,
    photos: String,
    threads: usize,
    repeat: usize,
    out: Option<String>,
    /// ONNX Runtime's settings of the detector and of the embedder: each
    /// service's defaults, with `--provider cpu|cuda` for both (cuda needs a
    /// GPU machine, onnxruntime-gpu, and a build with `--features
    /// facepass-inference/cuda`) and the CUDA provider's options for both
    /// (`--cuda-conv-search`, `--cuda-nhwc`) or for one (`--det-...`, `--rec-...`).
    det_ort: OrtConfig,
    rec_ort: OrtConfig,
    /// The INT8 variant of MODEL_DIR (tools/models/quantize.py): adds the
    /// fast tier's row, the defaults with photos in flight on that pack.
    fast_models: Option<String>,
    /// Runs only the rows (and sections) whose label holds this text, or
    /// one of several separated by `|`: `in flight`, `decode`, `gRPC`,
    /// `raw`, `embedding`... (all when unset).
    only: Option<String>,
}

impl Args {
    fn wants(&self, label: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.split('|').any(|part| label.contains(part)))
    }
}

fn parse_args() -> anyhow::Result<Args> {
    let mut it = std::env::args().skip(1);
    let models = it.next().context(
        "usage: MODEL_DIR PHOTO_DIR [--threads T] [--repeat R] [--provider cpu|cuda] [--[det-|rec-]cuda-conv-search exhaustive|heuristic|default] [--[det-|rec-]cuda-nhwc true|false] [--fast-models INT8_PACK] [--only TEXT[|TEXT...]] [--out JSON]",
    )?;
    let photos = it.next().context("PHOTO_DIR is required")?;
    let mut args = Args {
        models,
        photos,
        threads: 2,
        repeat: 3,
        out: None,
        det_ort: DetectorConfig::default().ort,
        rec_ort: EmbedderConfig::default().ort,
        fast_models: None,
        only: None,
    };
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--threads" => args.threads = value.parse()?,
            "--repeat" => args.repeat = value.parse()?,
            "--provider" => {
                args.det_ort.provider = value.clone();
                args.rec_ort.provider = value;
            }
            "--cuda-conv-search" => {
                args.det_ort.cuda_conv_search = value.clone();
                args.rec_ort.cuda_conv_search = value;
            }
            "--cuda-nhwc" => {
                args.det_ort.cuda_prefer_nhwc = value.parse()?;
                args.rec_ort.cuda_prefer_nhwc = args.det_ort.cuda_prefer_nhwc;
            }
            "--det-cuda-conv-search" => args.det_ort.cuda_conv_search = value,
            "--det-cuda-nhwc" => args.det_ort.cuda_prefer_nhwc = value.parse()?,
            "--rec-cuda-conv-search" => args.rec_ort.cuda_conv_search = value,
            "--rec-cuda-nhwc" => args.rec_ort.cuda_prefer_nhwc = value.parse()?,
            "--out" => args.out = Some(value),
            "--fast-models" => args.fast_models = Some(value),
            "--only" => args.only = Some(value),
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    let mut problems = args.det_ort.problems();
    problems.extend(args.rec_ort.problems());
    anyhow::ensure!(problems.is_empty(), "{}", problems.join("; "));
    Ok(args)
}

fn load_photos(dir: &str) -> anyhow::Result<Vec<Photo>> {
    let manifest: Value = serde_json::from_slice(&std::fs::read(format!("{dir}/manifest.json"))?)?;
    let mut photos = Vec::new();
    for p in manifest["photos"]
        .as_array()
        .context("manifest has no photos")?
    {
        let file = p["file"].as_str().context("photo without file")?;
        photos.push(Photo {
            class: p["class"].as_str().unwrap_or("?").to_string(),
            bytes: std::fs::read(format!("{dir}/{file}"))?.into(),
            faces: p["faces"].as_array().map(|f| f.len()).unwrap_or(0),
        });
    }
    Ok(photos)
}

fn classes(photos: &[Photo]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for p in photos {
        if !names.contains(&p.class) {
            names.push(p.class.clone());
        }
    }
    names
}

/// One photo from JPEG bytes to embeddings in process; returns the faces.
async fn detect_and_embed(
    detector: &Arc<FaceDetector>,
    batcher: &facepass_embedder::batcher::Batcher,
    photo: &Photo,
) -> anyhow::Result<usize> {
    let faces = detector
        .detect(photo.bytes.clone(), Mode::All)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let inputs = faces
        .faces
        .iter()
        .map(|f| facepass_embedder::model::preprocess(f.crop.as_raw(), 127.5, 127.5))
        .collect();
    Ok(batcher
        .embed(inputs)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .len())
}

/// (median, min, max) of the per-run rates.
fn spread(mut rates: Vec<f64>) -> (f64, f64, f64) {
    rates.sort_by(f64::total_cmp);
    (rates[rates.len() / 2], rates[0], rates[rates.len() - 1])
}

fn report(label: &str, class: &str, photos: usize, faces: usize, runs: &[Duration]) -> Value {
    let photo_rates: Vec<f64> = runs
        .iter()
        .map(|d| photos as f64 / d.as_secs_f64())
        .collect();
    let face_rates: Vec<f64> = runs
        .iter()
        .map(|d| faces as f64 / d.as_secs_f64())
        .collect();
    let (p, pmin, pmax) = spread(photo_rates);
    let (f, fmin, fmax) = spread(face_rates);
    println!(
        "{label:<28} {class:<12} {p:>7.3} photos/s [{pmin:.3}..{pmax:.3}]  {f:>7.2} faces/s [{fmin:.2}..{fmax:.2}]"
    );
    json!({"mode": label, "class": class, "photos": photos, "faces": faces,
           "photos_per_s": {"median": p, "min": pmin, "max": pmax},
           "faces_per_s": {"median": f, "min": fmin, "max": fmax}})
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let dylib = facepass_integration_tests::ort_dylib()?;
    let photos = load_photos(&args.photos)?;
    let mut results = Vec::new();

    // Parity rows decode in full, like insightface; "reduced decode" rows
    // detect on the JPEG decoded at 1/2-1/8 scale in the DCT domain.
    // `fine`: the small-face pass's side (0: off, insightface's single
    // pass); it runs as the services' default decides (`auto`) unless
    // `always`.
    let det_config_full = |fine: u32, reduced: bool, always: bool| {
        let mut c = DetectorConfig {
            reduced_decode: reduced,
            workers: 1,
            fine_pass_side: fine,
            fine_pass: if always {
                FinePass::Always
            } else {
                FinePass::Auto
            },
            ..DetectorConfig::default()
        };
        c.model.path = format!("{}/det.onnx", args.models);
        c.ort = OrtConfig {
            intra_threads: args.threads,
            ..args.det_ort.clone()
        };
        c.limits.max_bytes = 256 << 20;
        // Without the small-face pass: insightface's path, its square
        // letterbox included (parity).
        if fine == 0 {
            c.first_pass_canvas = Canvas::Square;
        }
        c
    };
    let det_config_with = |fine: u32, reduced: bool| det_config_full(fine, reduced, false);
    let det_config = |fine: u32| det_config_with(fine, false);
    let defaults = DetectorConfig::default();
    let rec_config = |max_batch: usize| {
        let mut c = EmbedderConfig::default();
        c.model.path = format!("{}/rec.onnx", args.models);
        c.ort = OrtConfig {
            intra_threads: args.threads,
            ..args.rec_ort.clone()
        };
        c.batching.max_batch = max_batch;
        c.batching.workers = 1;
        c
    };
    // The embedder's default batch (8: the CPU optimum, below).
    let default_batch = EmbedderConfig::default().batching.max_batch;
    let batcher = Arc::new(facepass_embedder::start_batcher(
        &rec_config(default_batch),
        Some(&dylib),
    )?);

    // --- in process ----------------------------------------------------------
    // (label, small-face pass side, reduced decode, pass always, square canvas)
    let d = &defaults;
    let always_default = d.fine_pass == FinePass::Always;
    for (label, fine, reduced, always, square) in [
        (
            "in-process (defaults)",
            d.fine_pass_side,
            d.reduced_decode,
            always_default,
            false,
        ),
        (
            "in-process (defaults, square canvas)",
            d.fine_pass_side,
            d.reduced_decode,
            always_default,
            true,
        ),
        ("in-process (parity)", 0u32, false, false, true),
        ("in-process (reduced decode)", 0, true, false, true),
        ("in-process (fine pass always)", 1920, false, true, false),
        (
            "in-process (fine pass always, reduced decode)",
            1920,
            true,
            true,
            false,
        ),
    ] {
        if !args.wants(label) {
            continue;
        }
        let mut config = det_config_full(fine, reduced, always);
        if square {
            config.first_pass_canvas = Canvas::Square;
        }
        let detector = Arc::new(FaceDetector::load(&config, Some(&dylib))?);
        for class in classes(&photos) {
            let set: Vec<&Photo> = photos.iter().filter(|p| p.class == class).collect();
            let mut runs = Vec::new();
            let mut found = 0;
            for _ in 0..args.repeat {
                found = 0;
                let start = Instant::now();
                for photo in &set {
                    found += detect_and_embed(&detector, &batcher, photo).await?;
                }
                runs.push(start.elapsed());
            }
            let expected: usize = set.iter().map(|p| p.faces).sum();
            let mut r = report(label, &class, set.len(), found, &runs);
            r["faces_expected"] = json!(expected);
            results.push(r);
        }
    }

    // --- in process, several photos in flight on the same core budget -------
    // The service's shapes for throughput. (a) T sessions of 1 thread each,
    // T photos in flight: decoding and alignment of one photo overlap
    // inference of another, and no operator waits for a second thread.
    // (b) One session of T threads (as the rows above) with one more photo
    // decoded ahead while it runs (`decode_ahead`). At most T inference
    // threads run at any moment in both.
    if args.threads >= 2 {
        let t = args.threads;
        // Defaults: the services' own detector settings (small-face pass
        // `auto`); parity: insightface's single pass.
        // (label, workers, threads, decode ahead, in flight, fine pass side,
        // reduced decode, pack)
        let other_decode = if defaults.reduced_decode {
            "full decode"
        } else {
            "reduced decode"
        };
        let mut shapes = vec![
            (
                format!("in-process ({t} in flight x 1 thread, defaults)"),
                t,
                1,
                0,
                t,
                defaults.fine_pass_side,
                defaults.reduced_decode,
                None,
            ),
            (
                format!("in-process ({t} in flight x 1 thread, defaults but {other_decode})"),
                t,
                1,
                0,
                t,
                defaults.fine_pass_side,
                !defaults.reduced_decode,
                None,
            ),
            (
                format!("in-process ({t} in flight x 1 thread)"),
                t,
                1,
                0,
                t,
                0,
                false,
                None,
            ),
            (
                format!("in-process (1 session x {t} threads, decode ahead, 2 in flight)"),
                1,
                t,
                1,
                2,
                0,
                false,
                None,
            ),
        ];
        // The opt-in fast tier: the same defaults on the INT8 variant.
        if let Some(pack) = &args.fast_models {
            shapes.push((
                format!("INT8 pack ({t} x 1 thread, defaults)"),
                t,
                1,
                0,
                t,
                defaults.fine_pass_side,
                defaults.reduced_decode,
                Some(pack.clone()),
            ));
        }
        for (label, workers, threads, ahead, flight, fine, reduced, pack) in shapes {
            if !args.wants(&label) {
                continue;
            }
            let mut dc = det_config_with(fine, reduced);
            dc.workers = workers;
            dc.ort.intra_threads = threads;
            dc.decode_ahead = ahead;
            let mut rc = rec_config(default_batch);
            rc.batching.workers = workers;
            rc.ort.intra_threads = threads;
            if let Some(pack) = pack {
                dc.model.pack = pack.clone();
                rc.model.pack = pack;
                facepass_embedder::apply_pack(&mut rc)?;
            }
            let detector = Arc::new(FaceDetector::load(&dc, Some(&dylib))?);
            let batcher = Arc::new(facepass_embedder::start_batcher(&rc, Some(&dylib))?);
            for class in classes(&photos) {
                let set: Arc<Vec<Photo>> = Arc::new(
                    photos
                        .iter()
                        .filter(|p| p.class == class)
                        .cloned()
                        .collect(),
                );
                let mut runs = Vec::new();
                let mut found = 0;
                for _ in 0..args.repeat {
                    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
                    let start = Instant::now();
                    let mut tasks = Vec::new();
                    for _ in 0..flight {
                        let (set, next) = (Arc::clone(&set), Arc::clone(&next));
                        let (detector, batcher) = (Arc::clone(&detector), Arc::clone(&batcher));
                        tasks.push(tokio::spawn(async move {
                            let mut found = 0;
                            loop {
                                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                let Some(photo) = set.get(i) else {
                                    return Ok::<usize, anyhow::Error>(found);
                                };
                                found += detect_and_embed(&detector, &batcher, photo).await?;
                            }
                        }));
                    }
                    found = 0;
                    for task in tasks {
                        found += task.await??;
                    }
                    runs.push(start.elapsed());
                }
                let mut r = report(&label, &class, set.len(), found, &runs);
                r["faces_expected"] = json!(set.iter().map(|p| p.faces).sum::<usize>());
                results.push(r);
            }
        }
    }

    // --- JPEG decoding alone ---------------------------------------------------
    if args.wants("decode") {
        let limits = det_config(0).limits;
        for class in classes(&photos) {
            let set: Vec<&Photo> = photos.iter().filter(|p| p.class == class).collect();
            // 1/2: what the defaults' passes need of a 24 MP photo (the small-
            // face pass's 1920); 1/8 what the first pass alone would.
            for (label, long_side) in [
                ("decode full", 0u32),
                ("decode 1/2 (DCT)", 1920),
                ("decode 1/8 (DCT)", 640),
            ] {
                let mut runs = Vec::new();
                for _ in 0..args.repeat {
                    let start = Instant::now();
                    for photo in &set {
                        if long_side > 0 {
                            facepass_detector::decode::decode_reduced(
                                &photo.bytes,
                                &limits,
                                long_side,
                            )
                            .context("no reduced decode")?;
                        } else {
                            facepass_detector::decode::decode_rgb(&photo.bytes, &limits)
                                .map_err(|e| anyhow::anyhow!("{e}"))?;
                        }
                    }
                    runs.push(start.elapsed());
                }
                results.push(report(label, &class, set.len(), 0, &runs));
            }
        }
    }

    // --- through gRPC: detector and embedder servers on loopback -------------
    if args.wants("gRPC") {
        let shutdown = facepass_server::Shutdown::new();
        let det_server =
            facepass_server::GrpcServer::bind(&facepass_server::GrpcServerConfig::default())
                .await?;
        let det_url = format!("http://{}", det_server.local_addr());
        let mut dc = det_config(0);
        dc.storage_root = std::env::temp_dir()
            .join("facepass-bench-objects")
            .display()
            .to_string();
        tokio::spawn(facepass_detector::run(
            dc,
            det_server,
            shutdown.clone(),
            Some(dylib.clone()),
        ));
        let emb_server =
            facepass_server::GrpcServer::bind(&facepass_server::GrpcServerConfig::default())
                .await?;
        let emb_url = format!("http://{}", emb_server.local_addr());
        tokio::spawn(facepass_embedder::run(
            rec_config(default_batch),
            emb_server,
            shutdown.clone(),
            Some(dylib.clone()),
        ));
        facepass_integration_tests::wait_serving(&det_url, Duration::from_secs(60)).await?;
        facepass_integration_tests::wait_serving(&emb_url, Duration::from_secs(60)).await?;
        // The services' own client: detect, then embed, as the indexer does.
        let analysis = facepass_analysis::FaceAnalysis::new(
            tonic::transport::Channel::from_shared(det_url)?
                .connect()
                .await?,
            tonic::transport::Channel::from_shared(emb_url)?
                .connect()
                .await?,
            "",
            256 << 20,
        );
        for class in classes(&photos) {
            let set: Vec<&Photo> = photos.iter().filter(|p| p.class == class).collect();
            let mut runs = Vec::new();
            let mut found = 0;
            for _ in 0..args.repeat {
                found = 0;
                let start = Instant::now();
                for photo in &set {
                    let source = facepass_analysis::ImageSource::Bytes(photo.bytes.clone());
                    found += analysis.analyze_photo(source, &[]).await?.faces.len();
                }
                runs.push(start.elapsed());
            }
            results.push(report("gRPC (parity)", &class, set.len(), found, &runs));
        }
        shutdown.trigger();
    }

    // --- raw ONNX Runtime inference alone (the floor) --------------------------
    if args.wants("raw") {
        let env = facepass_inference::environment(&Default::default(), Some(&dylib))?;
        let dc = det_config(0);
        let rc = rec_config(default_batch);
        // The floor is measured on the CPU provider (OrtConfig's default),
        // whatever --provider says, beside insightface's CPU floor.
        let mut det_session: Session = facepass_inference::load_session(
            env,
            &facepass_detector::engine::model_check(&dc),
            args.threads,
            &OrtConfig::default(),
        )?;
        let mut rec_session: Session = facepass_inference::load_session(
            env,
            &facepass_embedder::model::model_check(&rc),
            args.threads,
            &OrtConfig::default(),
        )?;
        let detector = Arc::new(FaceDetector::load(&dc, Some(&dylib))?);
        for class in classes(&photos) {
            let set: Vec<&Photo> = photos.iter().filter(|p| p.class == class).collect();
            // Inputs made beforehand: the 640x640 blob and the aligned crops.
            let mut prepared = Vec::new();
            for photo in &set {
                let image = facepass_detector::decode::decode_rgb(&photo.bytes, &dc.limits)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let blob = facepass_detector::scrfd::prepare_canvas(&image, 640, 640).tensor;
                let faces = detector
                    .detect(photo.bytes.clone(), Mode::All)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let crops: Vec<f32> = faces
                    .faces
                    .iter()
                    .flat_map(|f| {
                        facepass_embedder::model::preprocess(f.crop.as_raw(), 127.5, 127.5)
                    })
                    .collect();
                prepared.push((blob, crops, faces.faces.len()));
            }
            let faces: usize = prepared.iter().map(|p| p.2).sum();
            let mut runs = Vec::new();
            for _ in 0..args.repeat {
                let start = Instant::now();
                for (blob, crops, n) in &prepared {
                    let input =
                        TensorRef::from_array_view(([1usize, 3, 640, 640], blob.as_slice()))?;
                    det_session.run(facepass_inference::ort::inputs![input])?;
                    if *n > 0 {
                        let input =
                            TensorRef::from_array_view(([*n, 3, 112, 112], crops.as_slice()))?;
                        rec_session.run(facepass_inference::ort::inputs![input])?;
                    }
                }
                runs.push(start.elapsed());
            }
            results.push(report("raw ONNX Runtime", &class, set.len(), faces, &runs));
        }
    }

    // --- embedding: one face at a time against dynamic batching -------------
    if args.wants("embedding") {
        let crops: Vec<Vec<f32>> = {
            let detector = FaceDetector::load(&det_config(0), Some(&dylib))?;
            let detector = Arc::new(detector);
            let mut crops = Vec::new();
            for photo in photos.iter().take(6) {
                for f in detector
                    .detect(photo.bytes.clone(), Mode::All)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?
                    .faces
                {
                    crops.push(facepass_embedder::model::preprocess(
                        f.crop.as_raw(),
                        127.5,
                        127.5,
                    ));
                }
            }
            crops.truncate(64);
            crops
        };
        for (label, max_batch) in [
            ("embed one at a time".to_string(), 1usize),
            (
                format!("embed batched (max {default_batch})"),
                default_batch,
            ),
            ("embed batched (max 32)".to_string(), 32),
        ] {
            let batcher = Arc::new(facepass_embedder::start_batcher(
                &rec_config(max_batch),
                Some(&dylib),
            )?);
            let mut runs = Vec::new();
            for _ in 0..args.repeat {
                let start = Instant::now();
                // 16 concurrent callers, as when many photos are indexed at once.
                let mut tasks = Vec::new();
                for chunk in crops.chunks(crops.len().div_ceil(16)) {
                    let batcher = Arc::clone(&batcher);
                    let chunk = chunk.to_vec();
                    tasks.push(tokio::spawn(async move {
                        for crop in chunk {
                            batcher.embed(vec![crop]).await.unwrap();
                        }
                    }));
                }
                for t in tasks {
                    t.await?;
                }
                runs.push(start.elapsed());
            }
            results.push(report(&label, "faces", 0, crops.len(), &runs));
        }

        // The recogniser alone at each batch size, on one session of T
        // threads (on the chosen provider): where batching stops paying.
        let env = facepass_inference::environment(&Default::default(), Some(&dylib))?;
        let mut session: Session = facepass_inference::load_session(
            env,
            &facepass_embedder::model::model_check(&rec_config(1)),
            args.threads,
            &args.rec_ort,
        )?;
        // A GPU keeps gaining past the CPU's optimum: there the crops are
        // cycled to 256 faces and the sweep goes on to batches of 256.
        let gpu = args.rec_ort.provider != "cpu";
        let faces = if gpu { 256 } else { crops.len() };
        let flat: Vec<f32> = crops
            .iter()
            .cycle()
            .take(faces)
            .flatten()
            .copied()
            .collect();
        let per = 3 * 112 * 112;
        let mut batches = vec![1usize, 2, 4, 8, 16, 32];
        if gpu {
            batches.extend([64, 128, 256]);
        }
        for batch in batches {
            let mut runs = Vec::new();
            for _ in 0..args.repeat {
                let start = Instant::now();
                for chunk in flat.chunks(batch * per) {
                    let n = chunk.len() / per;
                    let input = TensorRef::from_array_view(([n, 3, 112, 112], chunk))?;
                    session.run(facepass_inference::ort::inputs![input])?;
                }
                runs.push(start.elapsed());
            }
            results.push(report(
                &format!("raw recogniser batch {batch}"),
                "faces",
                0,
                faces,
                &runs,
            ));
        }
    }

    if let Some(out) = args.out {
        let doc = json!({"threads": args.threads, "repeat": args.repeat, "models": args.models, "results": results});
        std::fs::write(&out, serde_json::to_vec_pretty(&doc)?)?;
        println!("wrote {out}");
    }
    Ok(())
}
