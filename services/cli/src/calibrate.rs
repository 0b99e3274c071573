//! `facepass models calibrate`: match thresholds from labelled faces, not
//! guesses.
//!
//! A studio (or whoever ships a pack) gives a folder with one sub-folder per
//! person, each holding photos of that person (the person is the main face
//! of each photo), and optionally crowd photos in which every face is a
//! different person and none is one of the labelled people. FacePass's own
//! pipeline (the pack's detector, alignment and recogniser, in process)
//! embeds every face; every pair of faces is a same-person or a
//! different-person pair. For a chosen false-match rate (the share of
//! different-person pairs that may score at or above the threshold) the
//! threshold is the smallest step of 0.01 that keeps the measured rate at or
//! below it. The table printed says what each threshold costs in missed
//! matches (true-match rate) on the same set.
//!
//! With `--write` the pack's `[thresholds]` table (and
//! `[thresholds.calibration]`, what was measured) is rewritten in place; the
//! rest of the manifest is left byte for byte. With `--plot` a histogram of
//! both distributions with the two thresholds is drawn as a PNG.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use facepass_core::pack::{Calibration, PackManifest, Thresholds};
use facepass_detector::engine::{sharpness, FaceDetector, Issue, Mode};
use facepass_detector::DetectorConfig;
use facepass_embedder::EmbedderConfig;

const IMAGE_EXTS: [&str; 6] = ["jpg", "jpeg", "png", "webp", "heic", "heif"];
/// Thresholds are recommended in steps of this size.
const STEP: f32 = 0.01;

/// What the command was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    pub pack: PathBuf,
    pub labelled: PathBuf,
    pub crowd: Vec<PathBuf>,
    pub match_false_match_rate: f64,
    pub possible_false_match_rate: f64,
    pub write: bool,
    pub plot: Option<PathBuf>,
}

/// One embedded face.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The person (folder name), or `crowd:<file>#<n>` for a crowd face.
    pub person: String,
    pub file: String,
    pub embedding: Vec<f32>,
}

/// How a labelled photo fares as a selfie (the detector's selfie checks).
#[derive(Debug, Clone)]
pub struct SelfieCheck {
    pub file: String,
    pub face_px: f32,
    pub sharpness: f32,
    pub issues: Vec<Issue>,
}

/// Similarities of every pair, split by whether the two faces are one person.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Distributions {
    pub same: Vec<f32>,
    pub different: Vec<f32>,
}

/// A threshold chosen for a false-match rate, and what it measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Recommendation {
    pub false_match_rate: f64,
    pub threshold: f32,
    /// Different-person pairs at or above the threshold.
    pub false_matches: usize,
    /// Same-person pairs at or above the threshold.
    pub true_matches: usize,
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

/// Every pair of samples once.
pub fn distributions(samples: &[Sample]) -> Distributions {
    let mut d = Distributions::default();
    for (i, a) in samples.iter().enumerate() {
        for b in &samples[i + 1..] {
            let s = cosine(&a.embedding, &b.embedding);
            if a.person == b.person {
                d.same.push(s);
            } else {
                d.different.push(s);
            }
        }
    }
    d
}

/// The smallest multiple of [`STEP`] at which at most
/// `floor(rate * different.len())` different-person pairs score at or above
/// it. With fewer than `1 / rate` different pairs no false match is allowed,
/// so the threshold lands just above the highest different-person score.
pub fn recommend(d: &Distributions, rate: f64) -> Recommendation {
    let mut sorted = d.different.clone();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let allowed = (rate * sorted.len() as f64).floor() as usize;
    // The (allowed+1)-th highest must fall below the threshold.
    let threshold = match sorted.get(allowed) {
        Some(&v) => {
            let mut t = ((v / STEP).floor() + 1.0) * STEP;
            // Guard against f32 rounding putting t at or below v.
            if t <= v {
                t += STEP;
            }
            (t * 100.0).round() / 100.0
        }
        None => -1.0,
    }
    .clamp(-1.0, 1.0);
    Recommendation {
        false_match_rate: rate,
        threshold,
        false_matches: d.different.iter().filter(|&&s| s >= threshold).count(),
        true_matches: d.same.iter().filter(|&&s| s >= threshold).count(),
    }
}

/// Quantiles for the table: min, median, max.
fn summary(values: &[f32]) -> String {
    if values.is_empty() {
        return "none".into();
    }
    let mut v = values.to_vec();
    v.sort_by(f32::total_cmp);
    format!(
        "min {:.3}  median {:.3}  max {:.3}",
        v[0],
        v[v.len() / 2],
        v[v.len() - 1]
    )
}

/// The `[thresholds]` table (with its calibration) as TOML text.
pub fn thresholds_toml(t: &Thresholds) -> String {
    let mut out = String::from(
        "# Cosine similarity tiers, set by `facepass models calibrate` (see\n\
         # [thresholds.calibration] for what was measured).\n",
    );
    out.push_str(&format!(
        "[thresholds]\nmatch_similarity = {:.2}\npossible_similarity = {:.2}\n",
        t.match_similarity, t.possible_similarity
    ));
    if let Some(c) = &t.calibration {
        out.push_str(&format!(
            "\n[thresholds.calibration]\nset = {}\npeople = {}\nfaces = {}\nsame_pairs = {}\n\
             different_pairs = {}\nmatch_false_match_rate = {}\npossible_false_match_rate = {}\n\
             match_true_match_rate = {:.4}\npossible_true_match_rate = {:.4}\n",
            toml::Value::String(c.set.clone()),
            c.people,
            c.faces,
            c.same_pairs,
            c.different_pairs,
            c.match_false_match_rate,
            c.possible_false_match_rate,
            c.match_true_match_rate,
            c.possible_true_match_rate,
        ));
    }
    out
}

/// Replaces the `[thresholds]` table and its sub-tables (with the comment
/// lines right above it) in a manifest's text; everything else stays byte
/// for byte. The result must parse as a pack manifest with these thresholds.
pub fn replace_thresholds(manifest: &str, t: &Thresholds) -> anyhow::Result<String> {
    let lines: Vec<&str> = manifest.split_inclusive('\n').collect();
    let header = |l: &str| {
        let l = l.trim();
        l.starts_with('[') && !l.starts_with("[[")
    };
    let ours = |l: &str| {
        let name = l
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim();
        name == "thresholds" || name.starts_with("thresholds.")
    };
    let Some(start) = lines.iter().position(|l| header(l) && ours(l)) else {
        bail!("the manifest has no [thresholds] table");
    };
    let mut first = start;
    while first > 0 && lines[first - 1].trim_start().starts_with('#') {
        first -= 1;
    }
    let mut end = start + 1;
    while end < lines.len() && (!header(lines[end]) || ours(lines[end])) {
        end += 1;
    }
    // Comment lines that open the next table belong to it.
    while end > start + 1 && end < lines.len() && lines[end - 1].trim_start().starts_with('#') {
        end -= 1;
    }
    let mut out: String = lines[..first].concat();
    out.push_str(&thresholds_toml(t));
    if end < lines.len() {
        out.push('\n');
        out.push_str(&lines[end..].concat());
    }
    let parsed = PackManifest::parse(&out).map_err(|e| anyhow::anyhow!("{e}"))?;
    if parsed.thresholds.match_similarity != t.match_similarity
        || parsed.thresholds.possible_similarity != t.possible_similarity
    {
        bail!("the rewritten manifest does not carry the new thresholds");
    }
    Ok(out)
}

fn images_in(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| IMAGE_EXTS.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// The labelled folder: person -> photos, sorted.
pub fn labelled_set(dir: &Path) -> anyhow::Result<BTreeMap<String, Vec<PathBuf>>> {
    let mut people = BTreeMap::new();
    for entry in std::fs::read_dir(dir)
        .with_context(|| format!("reading the labelled folder {}", dir.display()))?
        .flatten()
    {
        if entry.path().is_dir() {
            let photos = images_in(&entry.path())?;
            if !photos.is_empty() {
                people.insert(entry.file_name().to_string_lossy().to_string(), photos);
            }
        }
    }
    if people.is_empty() {
        bail!(
            "{} has no person folders with photos (expected one sub-folder per person)",
            dir.display()
        );
    }
    Ok(people)
}

/// The pack's pipeline, in process.
struct Pipeline {
    detector: Arc<FaceDetector>,
    batcher: facepass_embedder::batcher::Batcher,
    mean: f32,
    std: f32,
}

impl Pipeline {
    fn load(pack: &Path) -> anyhow::Result<Self> {
        let dylib = std::env::var("ORT_DYLIB_PATH").ok();
        let mut det = DetectorConfig::default();
        det.model.pack = pack.display().to_string();
        det.workers = 1;
        let detector = Arc::new(
            FaceDetector::load(&det, dylib.as_deref())
                .map_err(|e| anyhow::anyhow!("loading the detector of {}: {e}", pack.display()))?,
        );
        let mut rec = EmbedderConfig::default();
        rec.model.pack = pack.display().to_string();
        rec.batching.workers = 1;
        facepass_embedder::apply_pack(&mut rec)
            .map_err(|e| anyhow::anyhow!("loading the recogniser of {}: {e}", pack.display()))?;
        let batcher = facepass_embedder::start_batcher(&rec, dylib.as_deref())
            .map_err(|e| anyhow::anyhow!("loading the recogniser of {}: {e}", pack.display()))?;
        Ok(Pipeline {
            detector,
            batcher,
            mean: rec.model.input_mean,
            std: rec.model.input_std,
        })
    }

    async fn faces(
        &self,
        path: &Path,
        mode: Mode,
    ) -> anyhow::Result<Vec<(facepass_detector::engine::Face, Vec<f32>)>> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let found = self
            .detector
            .detect(bytes.into(), mode)
            .await
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let inputs = found
            .faces
            .iter()
            .map(|f| facepass_embedder::model::preprocess(f.crop.as_raw(), self.mean, self.std))
            .collect();
        let embeddings = self
            .batcher
            .embed(inputs)
            .await
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok(found.faces.into_iter().zip(embeddings).collect())
    }
}

/// What a calibration run measured.
pub struct Report {
    pub manifest: PackManifest,
    pub samples: Vec<Sample>,
    pub people: usize,
    pub no_face: Vec<String>,
    pub selfie_checks: Vec<SelfieCheck>,
    pub distributions: Distributions,
    pub match_: Recommendation,
    pub possible: Recommendation,
    pub thresholds: Thresholds,
}

fn file_label(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

/// Embeds the labelled set (and crowd photos) and recommends thresholds.
pub async fn measure(o: &Options) -> anyhow::Result<Report> {
    for (what, rate) in [
        ("--match-fmr", o.match_false_match_rate),
        ("--possible-fmr", o.possible_false_match_rate),
    ] {
        if !(rate > 0.0 && rate < 1.0) {
            bail!("{what} must be within 0 and 1 (exclusive), got {rate}");
        }
    }
    if o.match_false_match_rate > o.possible_false_match_rate {
        bail!("--match-fmr must not exceed --possible-fmr (a match is the stricter tier)");
    }
    let manifest = PackManifest::load(&o.pack).map_err(|e| anyhow::anyhow!("{e}"))?;
    let people = labelled_set(&o.labelled)?;
    let pipeline = Pipeline::load(&o.pack)?;
    let mut samples = Vec::new();
    let mut no_face = Vec::new();
    let mut selfie_checks = Vec::new();
    let total: usize = people.values().map(Vec::len).sum::<usize>() + o.crowd.len();
    let mut done = 0;
    let progress = |done: usize, label: &str| {
        if std::io::stderr().is_terminal() {
            eprint!("\rembedding {done}/{total}: {label:<60}");
        }
    };
    for (person, photos) in &people {
        for photo in photos {
            done += 1;
            let label = file_label(&o.labelled, photo);
            progress(done, &label);
            let faces = pipeline.faces(photo, Mode::Selfie).await?;
            let Some((face, embedding)) = faces.into_iter().next() else {
                no_face.push(label);
                continue;
            };
            let [x1, y1, x2, y2] = face.detection.bbox;
            selfie_checks.push(SelfieCheck {
                file: label.clone(),
                face_px: (x2 - x1).min(y2 - y1),
                sharpness: sharpness(&face.crop),
                issues: face.issues.clone(),
            });
            samples.push(Sample {
                person: person.clone(),
                file: label,
                embedding,
            });
        }
    }
    let mut crowd_faces = 0;
    for photo in &o.crowd {
        done += 1;
        let label = photo.display().to_string();
        progress(done, &label);
        let faces = pipeline.faces(photo, Mode::All).await?;
        if faces.is_empty() {
            no_face.push(label.clone());
        }
        for (i, (_, embedding)) in faces.into_iter().enumerate() {
            crowd_faces += 1;
            samples.push(Sample {
                person: format!("crowd:{label}#{i}"),
                file: format!("{label}#{i}"),
                embedding,
            });
        }
    }
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
    let distributions = distributions(&samples);
    if distributions.same.is_empty() {
        bail!("no same-person pairs: give at least one person two photos with a face");
    }
    if distributions.different.is_empty() {
        bail!("no different-person pairs: give at least two people (or a crowd photo)");
    }
    let match_ = recommend(&distributions, o.match_false_match_rate);
    let possible = recommend(&distributions, o.possible_false_match_rate);
    let n_people = people.len() + crowd_faces;
    let mut set = o
        .labelled
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| o.labelled.display().to_string());
    for c in &o.crowd {
        set.push_str(&format!(
            " + crowd {}",
            c.file_name().unwrap_or_default().to_string_lossy()
        ));
    }
    let same = distributions.same.len() as f64;
    let thresholds = Thresholds {
        match_similarity: match_.threshold,
        possible_similarity: possible.threshold.min(match_.threshold),
        calibration: Some(Calibration {
            set,
            people: n_people,
            faces: samples.len(),
            same_pairs: distributions.same.len(),
            different_pairs: distributions.different.len(),
            match_false_match_rate: o.match_false_match_rate,
            possible_false_match_rate: o.possible_false_match_rate,
            match_true_match_rate: match_.true_matches as f64 / same,
            possible_true_match_rate: possible.true_matches as f64 / same,
        }),
    };
    Ok(Report {
        manifest,
        people: n_people,
        samples,
        no_face,
        selfie_checks,
        distributions,
        match_,
        possible,
        thresholds,
    })
}

impl Report {
    /// The table the command prints.
    pub fn table(&self, o: &Options) -> String {
        let d = &self.distributions;
        let nd = d.different.len();
        let ns = d.same.len();
        let mut out = format!(
            "calibration of model pack {} {} on {}{}\n",
            self.manifest.name,
            self.manifest.version,
            o.labelled.display(),
            o.crowd
                .iter()
                .map(|c| format!(" + crowd photo {}", c.display()))
                .collect::<String>()
        );
        out.push_str(&format!(
            "  people {}, faces {}{}\n",
            self.people,
            self.samples.len(),
            if self.no_face.is_empty() {
                String::new()
            } else {
                format!(
                    ", photos without a face (left out): {}",
                    self.no_face.join(", ")
                )
            }
        ));
        out.push_str(&format!(
            "  same-person pairs      {ns:>6}: {}\n",
            summary(&d.same)
        ));
        out.push_str(&format!(
            "  different-person pairs {nd:>6}: {}\n\n",
            summary(&d.different)
        ));
        out.push_str("  tier      false-match rate  threshold  false matches     true matches\n");
        for (tier, r) in [("match", &self.match_), ("possible", &self.possible)] {
            out.push_str(&format!(
                "  {tier:<9} {:<17} {:>9.2}  {:>5}/{:<5} {:>6.2}%  {:>4}/{:<4} {:>6.1}%\n",
                r.false_match_rate,
                r.threshold,
                r.false_matches,
                nd,
                100.0 * r.false_matches as f64 / nd as f64,
                r.true_matches,
                ns,
                100.0 * r.true_matches as f64 / ns as f64
            ));
        }
        for r in [&self.match_, &self.possible] {
            if (nd as f64) * r.false_match_rate < 1.0 {
                out.push_str(&format!(
                    "  note: {nd} different-person pairs cannot measure a false-match rate of {} \
                     (that needs at least {:.0}); the threshold is set above every \
                     different-person score. Add people or a crowd photo.\n",
                    r.false_match_rate,
                    (1.0 / r.false_match_rate).ceil()
                ));
            }
        }
        let current = &self.manifest.thresholds;
        out.push_str(&format!(
            "  the pack's thresholds now: match {:.2}, possible {:.2}\n",
            current.match_similarity, current.possible_similarity
        ));
        if !self.selfie_checks.is_empty() {
            out.push_str(
                "\n  the labelled photos as selfies (detector's selfie checks, defaults):\n",
            );
            out.push_str(
                "  photo                                     face px  sharpness  verdict\n",
            );
            for c in &self.selfie_checks {
                out.push_str(&format!(
                    "  {:<41} {:>7.0}  {:>9.1}  {}\n",
                    c.file,
                    c.face_px,
                    c.sharpness,
                    if c.issues.is_empty() {
                        "usable".to_string()
                    } else {
                        c.issues
                            .iter()
                            .map(|i| format!("{i:?}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ));
            }
        }
        out
    }
}

/// The command: measure, print, then write the manifest and the plot if asked.
pub async fn run(o: &Options) -> anyhow::Result<()> {
    let report = measure(o).await?;
    print!("{}", report.table(o));
    if let Some(plot) = &o.plot {
        let png = crate::plot::histogram(
            &report.distributions,
            &[
                ("match", report.thresholds.match_similarity),
                ("possible", report.thresholds.possible_similarity),
            ],
            &format!(
                "{} {}: cosine similarity of face pairs",
                report.manifest.name, report.manifest.version
            ),
        )?;
        if let Some(parent) = plot.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(plot, png).with_context(|| format!("writing {}", plot.display()))?;
        println!("  histogram: {}", plot.display());
    }
    let path = o.pack.join("manifest.toml");
    if o.write {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let new = replace_thresholds(&text, &report.thresholds)
            .with_context(|| format!("rewriting {}", path.display()))?;
        if new != text {
            let tmp = path.with_extension("toml.tmp");
            std::fs::write(&tmp, &new).with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, &path)
                .with_context(|| format!("replacing {}", path.display()))?;
            println!(
                "  wrote match {:.2} and possible {:.2} into {}",
                report.thresholds.match_similarity,
                report.thresholds.possible_similarity,
                path.display()
            );
        } else {
            println!("  {} already has these thresholds", path.display());
        }
    } else {
        println!("  (not written; --write puts them into {})", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(same: &[f32], different: &[f32]) -> Distributions {
        Distributions {
            same: same.to_vec(),
            different: different.to_vec(),
        }
    }

    #[test]
    fn pairs_are_split_by_person() {
        let s = |p: &str, e: [f32; 2]| Sample {
            person: p.into(),
            file: String::new(),
            embedding: e.to_vec(),
        };
        let samples = [s("a", [1.0, 0.0]), s("a", [1.0, 1.0]), s("b", [0.0, 1.0])];
        let got = distributions(&samples);
        assert_eq!(got.same.len(), 1);
        assert!((got.same[0] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        assert_eq!(got.different.len(), 2);
        assert!(got.different.contains(&0.0));
    }

    #[test]
    fn threshold_keeps_the_false_match_rate() {
        // 100 different pairs 0.0025, 0.0075, ..., 0.4975 (off the 0.01 grid);
        // a rate of 0.05 allows 5 at or above: 0.47 would let 6 through.
        let different: Vec<f32> = (0..100).map(|i| (i as f32 + 0.5) / 200.0).collect();
        let r = recommend(&d(&[0.6, 0.47, 0.3], &different), 0.05);
        assert_eq!(r.false_matches, 4, "{r:?}");
        assert!((r.threshold - 0.48).abs() < 1e-6, "{r:?}");
        assert_eq!(r.true_matches, 1);
        // Stricter rate, higher threshold.
        let strict = recommend(&d(&[0.6], &different), 0.01);
        assert!(strict.threshold > r.threshold);
        assert!(strict.false_matches <= 1);
    }

    #[test]
    fn too_few_pairs_put_the_threshold_above_every_different_score() {
        let r = recommend(&d(&[0.9, 0.7], &[0.1, 0.56, -0.2]), 0.001);
        assert_eq!(r.false_matches, 0);
        assert!((r.threshold - 0.57).abs() < 1e-6, "{r:?}");
        assert_eq!(r.true_matches, 2);
        // A score on a step boundary is still excluded.
        let r = recommend(&d(&[0.9], &[0.5]), 0.001);
        assert!(r.threshold > 0.5 && r.false_matches == 0, "{r:?}");
    }

    const MANIFEST: &str = r#"name = "p"
version = "1"

[licence]
name = "test"
commercial_use = false

[detector]
file = "det.onnx"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
bytes = 1
input_size = 640
score_threshold = 0.5
nms_threshold = 0.4

[recogniser]
file = "rec.onnx"
sha256 = "1111111111111111111111111111111111111111111111111111111111111111"
bytes = 1
dimension = 512
input_mean = 127.5
input_std = 127.5

# the old tiers
[thresholds]
match_similarity = 0.5
possible_similarity = 0.4
"#;

    fn calibrated() -> Thresholds {
        Thresholds {
            match_similarity: 0.57,
            possible_similarity: 0.45,
            calibration: Some(Calibration {
                set: "labelled + crowd \"x\".jpg".into(),
                people: 31,
                faces: 35,
                same_pairs: 10,
                different_pairs: 585,
                match_false_match_rate: 0.001,
                possible_false_match_rate: 0.01,
                match_true_match_rate: 1.0,
                possible_true_match_rate: 1.0,
            }),
        }
    }

    #[test]
    fn the_thresholds_table_is_replaced_and_the_rest_kept() {
        let out = replace_thresholds(MANIFEST, &calibrated()).unwrap();
        let head = MANIFEST.split("# the old tiers").next().unwrap();
        assert!(out.starts_with(head), "{out}");
        assert!(!out.contains("the old tiers"));
        let m = PackManifest::parse(&out).unwrap();
        assert_eq!(m.thresholds, calibrated());
        // Again: identical (idempotent), and a table after it survives.
        assert_eq!(replace_thresholds(&out, &calibrated()).unwrap(), out);
        let with_tail = format!(
            "{out}\n# where it comes from\n[download]\nurl = \"u\"\nsha256 = \"s\"\nbytes = 3\n"
        );
        let again = replace_thresholds(&with_tail, &calibrated()).unwrap();
        assert!(
            again.ends_with(
                "# where it comes from\n[download]\nurl = \"u\"\nsha256 = \"s\"\nbytes = 3\n"
            ),
            "{again}"
        );
        assert!(PackManifest::parse(&again).unwrap().download.is_some());
    }

    #[test]
    fn a_manifest_without_thresholds_is_refused() {
        let text = MANIFEST.split("# the old tiers").next().unwrap();
        assert!(replace_thresholds(text, &calibrated()).is_err());
    }
}
