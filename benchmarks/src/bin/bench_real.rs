//! facepass-bench-real: what FacePass's departures from insightface change
//! on real faces (issue 11, item 7), and how the selfie checks fare on them.
//!
//!   facepass-bench-real MODEL_DIR PHOTO_DIR [--variant INT8_PACK] [--out JSON]
//!
//! MODEL_DIR is a pack (the real one: .facepass/models/real), PHOTO_DIR the
//! real photos (.facepass/photos/real). Build with --release.
//!
//! Part 1, detection variants. The reference is insightface's path, which
//! FacePass follows exactly with `fine_pass_side = 0, reduced_decode =
//! false` (parity: tools/parity/run.sh --real). Each variant runs over the
//! photos plus a 26 MP copy of the Solvay photo (upscaled 2x, JPEG q92: a
//! camera-sized group photo where reduced decoding applies) and is compared
//! face by face with the reference: faces found, lost and added, and the
//! cosine of each matched face's embedding to the reference's.
//!
//! Part 3 (with `--variant DIR`, the INT8 variant of MODEL_DIR written by
//! tools/models/quantize.py), the fast tier's accuracy: both packs with the
//! services' defaults over the same photos, face by face (faces found, lost,
//! added, the cosine of each matched face's embedding to its full-precision
//! one), then same-person and different-person similarity in each (the
//! portraits of Barack Obama against each other; against Joe Biden and the
//! 29 Solvay faces, and those against each other) at the pack's match
//! threshold, and the seconds each took.
//!
//! Part 2, selfie checks. The portraits blurred (Gaussian, sigma in pixels
//! of a 626 px wide photo) and scaled down so the face is 160..24 px wide:
//! the sharpness and size the detector measures, its verdicts, and the
//! cosine to obama.jpg (another photo of Barack Obama), against the pack's
//! match threshold.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use facepass_detector::engine::{sharpness, FaceDetector, Mode};
use facepass_detector::DetectorConfig;
use facepass_embedder::EmbedderConfig;
use facepass_integration_tests::iou;
use image::imageops::FilterType;
use serde_json::{json, Value};

struct Pipeline {
    detector: Arc<FaceDetector>,
    batcher: facepass_embedder::batcher::Batcher,
    mean: f32,
    std: f32,
}

struct Found {
    boxes: Vec<[f32; 4]>,
    embeddings: Vec<Vec<f32>>,
    seconds: f64,
}

impl Pipeline {
    fn load(
        models: &str,
        dylib: &str,
        tweak: impl FnOnce(&mut DetectorConfig),
    ) -> anyhow::Result<Self> {
        let mut det = DetectorConfig::default();
        det.model.pack = models.into();
        det.workers = 1;
        det.ort.intra_threads = 2;
        tweak(&mut det);
        let detector = Arc::new(FaceDetector::load(&det, Some(dylib))?);
        let mut rec = EmbedderConfig::default();
        rec.model.pack = models.into();
        rec.batching.workers = 1;
        facepass_embedder::apply_pack(&mut rec)?;
        let batcher = facepass_embedder::start_batcher(&rec, Some(dylib))?;
        Ok(Pipeline {
            detector,
            batcher,
            mean: rec.model.input_mean,
            std: rec.model.input_std,
        })
    }

    async fn run(&self, bytes: &bytes::Bytes, mode: Mode) -> anyhow::Result<Found> {
        let t = Instant::now();
        let faces = self
            .detector
            .detect(bytes.clone(), mode)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let inputs = faces
            .faces
            .iter()
            .map(|f| facepass_embedder::model::preprocess(f.crop.as_raw(), self.mean, self.std))
            .collect();
        let embeddings = self
            .batcher
            .embed(inputs)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(Found {
            boxes: faces.faces.iter().map(|f| f.detection.bbox).collect(),
            embeddings,
            seconds: t.elapsed().as_secs_f64(),
        })
    }
}

fn cos(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Greedy IoU matching (> 0.5): (matched cosines, lost, added).
fn compare(reference: &Found, candidate: &Found) -> (Vec<f32>, usize, usize) {
    let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
    for (i, r) in reference.boxes.iter().enumerate() {
        for (j, c) in candidate.boxes.iter().enumerate() {
            let v = iou(*r, *c);
            if v > 0.5 {
                pairs.push((v, i, j));
            }
        }
    }
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut used_r, mut used_c) = (
        vec![false; reference.boxes.len()],
        vec![false; candidate.boxes.len()],
    );
    let mut cosines = Vec::new();
    for (_, i, j) in pairs {
        if !used_r[i] && !used_c[j] {
            used_r[i] = true;
            used_c[j] = true;
            cosines.push(cos(&reference.embeddings[i], &candidate.embeddings[j]));
        }
    }
    let lost = used_r.iter().filter(|u| !**u).count();
    let added = used_c.iter().filter(|u| !**u).count();
    (cosines, lost, added)
}

fn png(image: &image::RgbImage) -> bytes::Bytes {
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner().into()
}

fn jpeg(image: &image::RgbImage, quality: u8) -> bytes::Bytes {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(image)
        .unwrap();
    out.into()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(models), Some(photos)) = (args.get(1), args.get(2)) else {
        anyhow::bail!(
            "usage: facepass-bench-real MODEL_DIR PHOTO_DIR [--variant INT8_PACK] [--out JSON]"
        );
    };
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let (out, variant) = (flag("--out"), flag("--variant"));
    let dylib = facepass_integration_tests::ort_dylib()?;
    let manifest = facepass_inference::pack::Pack::open(std::path::Path::new(models))?.manifest;
    let match_threshold = manifest.thresholds.match_similarity;

    // ---- the photos -------------------------------------------------------
    let names = [
        "obama.jpg",
        "obama2.jpg",
        "obama3.jpg",
        "obama_partial_face.jpg",
        "obama_partial_face2.jpg",
        "biden.jpg",
        "32bit.png",
        "solvay_conference_1927.jpg",
    ];
    let mut set: Vec<(String, bytes::Bytes)> = Vec::new();
    for n in names {
        let bytes =
            std::fs::read(format!("{photos}/{n}")).with_context(|| format!("{photos}/{n}"))?;
        set.push((n.to_string(), bytes.into()));
    }
    let solvay = image::load_from_memory(&set[7].1)?.to_rgb8();
    let big = image::imageops::resize(
        &solvay,
        solvay.width() * 2,
        solvay.height() * 2,
        FilterType::CatmullRom,
    );
    set.push((
        format!("solvay_2x_{}x{}_q92.jpg", big.width(), big.height()),
        jpeg(&big, 92),
    ));

    // ---- part 1: detection variants against the reference ---------------
    type Tweak = fn(&mut DetectorConfig);
    let variants: [(&str, Tweak); 5] = [
        (
            "reference: single 640 pass, full decode (insightface)",
            |c| {
                c.fine_pass_side = 0;
                c.reduced_decode = false;
                c.first_pass_canvas = facepass_detector::config::Canvas::Square;
            },
        ),
        (
            "defaults: + small-face pass (tiles at 640 for this fixed-input detector)",
            |_| {},
        ),
        ("reduced decode + small-face pass", |c| {
            c.reduced_decode = true
        }),
        ("reduced decode, single pass", |c| {
            c.reduced_decode = true;
            c.fine_pass_side = 0;
        }),
        ("small-face pass at 2560 px", |c| c.fine_pass_side = 2560),
    ];
    let mut reference: Vec<Found> = Vec::new();
    let mut rows = Vec::new();
    println!(
        "Part 1: detection variants on real photos (model pack {} {})",
        manifest.name, manifest.version
    );
    println!(
        "{:<72} {:>6} {:>5} {:>5} {:>9} {:>9} {:>8}",
        "variant", "faces", "lost", "added", "min cos", "median", "seconds"
    );
    for (vi, (label, tweak)) in variants.iter().enumerate() {
        let pipeline = Pipeline::load(models, &dylib, tweak)?;
        let mut all_cos = Vec::new();
        let (mut faces, mut lost, mut added, mut seconds) = (0, 0, 0, 0.0);
        let mut per_image = Vec::new();
        for (i, (name, bytes)) in set.iter().enumerate() {
            // Warm once, then time.
            if i == 0 {
                pipeline.run(bytes, Mode::All).await?;
            }
            let found = pipeline.run(bytes, Mode::All).await?;
            faces += found.boxes.len();
            seconds += found.seconds;
            if vi == 0 {
                per_image.push(
                    json!({"image": name, "faces": found.boxes.len(), "seconds": found.seconds}),
                );
                reference.push(found);
            } else {
                let (c, l, a) = compare(&reference[i], &found);
                per_image.push(
                    json!({"image": name, "faces": found.boxes.len(), "lost": l, "added": a,
                    "min_cos": c.iter().copied().fold(1.0f32, f32::min), "seconds": found.seconds}),
                );
                all_cos.extend(c);
                lost += l;
                added += a;
            }
        }
        all_cos.sort_by(f32::total_cmp);
        let (min, median) = if all_cos.is_empty() {
            (1.0, 1.0)
        } else {
            (all_cos[0], all_cos[all_cos.len() / 2])
        };
        println!(
            "{label:<72} {faces:>6} {lost:>5} {added:>5} {min:>9.5} {median:>9.5} {seconds:>8.2}"
        );
        rows.push(
            json!({"variant": label, "faces": faces, "lost": lost, "added": added,
            "min_cos": min, "median_cos": median, "seconds": seconds, "images": per_image}),
        );
    }

    // ---- part 2: selfie checks on real faces ------------------------------
    println!(
        "\nPart 2: selfie checks on real faces (defaults: min face {} px, blur threshold {}; match threshold {match_threshold})",
        DetectorConfig::default().selfie.min_face_px,
        DetectorConfig::default().selfie.blur_threshold
    );
    println!(
        "{:<12} {:<18} {:>7} {:>10} {:>14}  verdicts",
        "photo", "change", "face px", "sharpness", "cos obama.jpg"
    );
    let pipeline = Pipeline::load(models, &dylib, |_| {})?;
    let anchor = pipeline
        .run(&set[0].1, Mode::Selfie)
        .await?
        .embeddings
        .remove(0);
    let mut selfie_rows = Vec::new();
    for name in ["obama2.jpg", "obama3.jpg", "biden.jpg"] {
        let bytes = &set.iter().find(|(n, _)| n == name).unwrap().1;
        let img = image::load_from_memory(bytes)?.to_rgb8();
        let base = pipeline
            .detector
            .detect(png(&img), Mode::Selfie)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let face_w = base.faces[0].detection.bbox[2] - base.faces[0].detection.bbox[0];
        let mut changes: Vec<(String, image::RgbImage)> = Vec::new();
        for sigma in [0.0f32, 1.0, 2.0, 3.0, 4.0, 6.0] {
            let s = sigma * img.width() as f32 / 626.0;
            let b = if sigma > 0.0 {
                image::imageops::blur(&img, s)
            } else {
                img.clone()
            };
            changes.push((format!("blur {sigma}"), b));
        }
        for target in [112.0f32, 64.0, 48.0, 40.0, 32.0, 24.0] {
            let k = target / face_w;
            changes.push((
                format!("face {target} px"),
                image::imageops::resize(
                    &img,
                    (img.width() as f32 * k) as u32,
                    (img.height() as f32 * k) as u32,
                    FilterType::Triangle,
                ),
            ));
        }
        for (change, image) in changes {
            let found = pipeline
                .detector
                .detect(png(&image), Mode::Selfie)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let Some(face) = found.faces.first() else {
                println!("{name:<12} {change:<18} no face");
                continue;
            };
            let e = pipeline
                .batcher
                .embed(vec![facepass_embedder::model::preprocess(
                    face.crop.as_raw(),
                    pipeline.mean,
                    pipeline.std,
                )])
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .remove(0);
            let d = &face.detection;
            let px = (d.bbox[2] - d.bbox[0]).min(d.bbox[3] - d.bbox[1]);
            let sharp = sharpness(&face.crop);
            let c = cos(&e, &anchor);
            let verdicts = if face.issues.is_empty() {
                "usable".to_string()
            } else {
                format!("{:?}", face.issues)
            };
            println!("{name:<12} {change:<18} {px:>7.0} {sharp:>10.1} {c:>14.3}  {verdicts}");
            selfie_rows.push(json!({"photo": name, "change": change, "face_px": px,
                "sharpness": sharp, "cos_to_obama": c, "issues": format!("{:?}", face.issues)}));
        }
    }
    let precision = match &variant {
        Some(variant) => Some(
            precision(
                models,
                variant,
                &dylib,
                &set,
                match_threshold,
                manifest.model_id(),
            )
            .await?,
        ),
        None => None,
    };
    if let Some(out) = out {
        let doc: Value = json!({"pack": manifest.model_id(), "variants": rows,
            "selfie_checks": selfie_rows, "precision": precision});
        std::fs::write(&out, serde_json::to_vec_pretty(&doc)?)?;
        println!("\nwrote {out}");
    }
    Ok(())
}

/// Who is in which photo of `set` (by position): the portraits of Barack
/// Obama, Joe Biden's, and the Solvay photo's faces (each another person).
/// Copies are left out of the pairs: 32bit.png (obama2.jpg as RGBA) and the
/// 2x Solvay copy.
fn people(found: &[Found]) -> Vec<(String, Vec<f32>)> {
    let largest = |f: &Found| {
        (0..f.boxes.len()).max_by(|&a, &b| {
            let area = |i: usize| (f.boxes[i][2] - f.boxes[i][0]) * (f.boxes[i][3] - f.boxes[i][1]);
            area(a).total_cmp(&area(b))
        })
    };
    let mut out = Vec::new();
    for (i, f) in found.iter().enumerate() {
        match i {
            0..=4 => out.extend(largest(f).map(|j| ("obama".to_string(), f.embeddings[j].clone()))),
            5 => out.extend(largest(f).map(|j| ("biden".to_string(), f.embeddings[j].clone()))),
            7 => out.extend(
                f.embeddings
                    .iter()
                    .enumerate()
                    .map(|(j, e)| (format!("solvay {j}"), e.clone())),
            ),
            _ => {}
        }
    }
    out
}

/// (same-person cosines, different-person cosines), each sorted.
fn pairs(people: &[(String, Vec<f32>)]) -> (Vec<f32>, Vec<f32>) {
    let (mut same, mut different) = (Vec::new(), Vec::new());
    for (i, (a, ea)) in people.iter().enumerate() {
        for (b, eb) in &people[i + 1..] {
            if a == b { &mut same } else { &mut different }.push(cos(ea, eb));
        }
    }
    same.sort_by(f32::total_cmp);
    different.sort_by(f32::total_cmp);
    (same, different)
}

/// Part 3: the INT8 variant against the full-precision pack, both with the
/// services' defaults.
async fn precision(
    models: &str,
    variant: &str,
    dylib: &str,
    set: &[(String, bytes::Bytes)],
    match_threshold: f32,
    model_id: String,
) -> anyhow::Result<Value> {
    let vm = facepass_inference::pack::Pack::open(std::path::Path::new(variant))?.manifest;
    println!(
        "\nPart 3: the {} variant ({}) against full precision ({model_id}), services' defaults",
        vm.quantised
            .as_ref()
            .map(|q| q.precision.as_str())
            .unwrap_or("?"),
        vm.model_id()
    );
    let full = Pipeline::load(models, dylib, |_| {})?;
    let fast = Pipeline::load(variant, dylib, |_| {})?;
    let (mut full_found, mut fast_found, mut per_image, mut all_cos) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut lost, mut added) = (0, 0);
    println!(
        "{:<36} {:>6} {:>6} {:>5} {:>5} {:>9} {:>9} {:>9} {:>9}",
        "photo", "faces", "int8", "lost", "added", "min cos", "median", "s fp32", "s int8"
    );
    for (i, (name, bytes)) in set.iter().enumerate() {
        if i == 0 {
            full.run(bytes, Mode::All).await?;
            fast.run(bytes, Mode::All).await?;
        }
        let a = full.run(bytes, Mode::All).await?;
        let b = fast.run(bytes, Mode::All).await?;
        let (mut c, l, ad) = compare(&a, &b);
        c.sort_by(f32::total_cmp);
        let (min, median) = c
            .first()
            .map_or((f32::NAN, f32::NAN), |m| (*m, c[c.len() / 2]));
        println!(
            "{name:<36} {:>6} {:>6} {l:>5} {ad:>5} {min:>9.4} {median:>9.4} {:>9.3} {:>9.3}",
            a.boxes.len(),
            b.boxes.len(),
            a.seconds,
            b.seconds
        );
        per_image.push(
            json!({"image": name, "faces": a.boxes.len(), "faces_int8": b.boxes.len(),
            "lost": l, "added": ad, "min_cos": min, "median_cos": median,
            "seconds": a.seconds, "seconds_int8": b.seconds}),
        );
        all_cos.extend(c);
        lost += l;
        added += ad;
        full_found.push(a);
        fast_found.push(b);
    }
    all_cos.sort_by(f32::total_cmp);
    let at = |q: f64| {
        if all_cos.is_empty() {
            return f32::NAN; // no face matched: the variant is broken
        }
        all_cos[((all_cos.len() - 1) as f64 * q).round() as usize]
    };
    let above = all_cos.iter().filter(|c| **c >= 0.99).count();
    println!(
        "all photos: {} faces matched, {lost} lost, {added} added; cosine to full precision min {:.4}, 5th percentile {:.4}, median {:.4}; {above} of {} at >= 0.99",
        all_cos.len(),
        at(0.0),
        at(0.05),
        at(0.5),
        all_cos.len()
    );
    let mut similarity = Vec::new();
    println!(
        "\n{:<10} {:>24} {:>26} {:>12} {:>14}",
        "pack",
        "same person min / median",
        "different max / median",
        "same >= thr",
        "different >= thr"
    );
    for (label, found) in [("fp32", &full_found), ("int8", &fast_found)] {
        let (same, different) = pairs(&people(found));
        let med = |v: &[f32]| v.get(v.len() / 2).copied().unwrap_or(f32::NAN);
        let first = |v: &[f32]| v.first().copied().unwrap_or(f32::NAN);
        let last = |v: &[f32]| v.last().copied().unwrap_or(f32::NAN);
        let same_ok = same.iter().filter(|c| **c >= match_threshold).count();
        let diff_bad = different.iter().filter(|c| **c >= match_threshold).count();
        println!(
            "{label:<10} {:>11.3} / {:<10.3} {:>12.3} / {:<11.3} {:>6} of {:<4} {:>7} of {}",
            first(&same),
            med(&same),
            last(&different),
            med(&different),
            same_ok,
            same.len(),
            diff_bad,
            different.len()
        );
        similarity.push(
            json!({"pack": label, "same_pairs": same.len(), "same_min": same[0],
            "same_median": med(&same), "different_pairs": different.len(),
            "different_max": different[different.len() - 1], "different_median": med(&different),
            "same_at_or_above_match": same_ok, "different_at_or_above_match": diff_bad,
            "match_threshold": match_threshold}),
        );
    }
    let (sa, sb): (f64, f64) = (
        full_found.iter().map(|f| f.seconds).sum(),
        fast_found.iter().map(|f| f.seconds).sum(),
    );
    println!(
        "seconds over the photos: fp32 {sa:.2}, int8 {sb:.2} ({:.2}x)",
        sa / sb
    );
    Ok(
        json!({"variant": vm.model_id(), "reference": model_id, "images": per_image,
        "matched": all_cos.len(), "lost": lost, "added": added,
        "min_cos": at(0.0), "p5_cos": at(0.05), "median_cos": at(0.5), "at_or_above_0_99": above,
        "similarity": similarity, "seconds_fp32": sa, "seconds_int8": sb}),
    )
}
