//! Model pack manifests: what a pack's `manifest.toml` says (files with
//! hashes and sizes, licence, input spec, embedding dimension and
//! normalisation, thresholds) and the pack's identity, `name@version`.
//!
//! Reading a manifest needs no model file and no ONNX Runtime: the search
//! service learns its thresholds here, the detector and embedder
//! (`facepass-inference`) also verify and load the files it names.

use serde::{Deserialize, Serialize};

/// The built-in buffalo_l manifest.
pub const BUFFALO_L: &str = include_str!("../packs/buffalo_l.toml");

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PackManifest {
    pub name: String,
    pub version: String,
    pub licence: Licence,
    pub detector: DetectorEntry,
    pub recogniser: RecogniserEntry,
    pub thresholds: Thresholds,
    #[serde(default)]
    pub download: Option<Download>,
    /// Set on a reduced-precision variant of another pack (the INT8 tier,
    /// written by tools/models/quantize.py): its own version, so its
    /// embeddings are never compared with the full-precision pack's.
    #[serde(default)]
    pub quantised: Option<Quantised>,
}

/// What a reduced-precision variant was made from, and how.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Quantised {
    /// The full-precision pack, `name@version`.
    pub from: String,
    /// `int8` (or `fp16`).
    pub precision: String,
    #[serde(default)]
    pub method: String,
    #[serde(default)]
    pub calibration: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Licence {
    pub name: String,
    pub commercial_use: bool,
    #[serde(default)]
    pub url: String,
    /// The licence and notice texts, shown to the operator at set-up and
    /// kept with the pack.
    #[serde(default)]
    pub text: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DetectorEntry {
    pub file: String,
    pub sha256: String,
    pub bytes: u64,
    pub input_size: u32,
    /// The model's input is fixed at `input_size` x `input_size`: the
    /// small-face pass then tiles the photo at that size instead of feeding
    /// the model a larger canvas.
    #[serde(default)]
    pub fixed_input: bool,
    pub score_threshold: f32,
    pub nms_threshold: f32,
    /// Where the file comes from (registry, package and version, path).
    #[serde(default)]
    pub source: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RecogniserEntry {
    pub file: String,
    pub sha256: String,
    pub bytes: u64,
    pub dimension: usize,
    /// Crops are fed as `(rgb - input_mean) / input_std`.
    pub input_mean: f32,
    pub input_std: f32,
    /// The model's batch dimension is fixed at this size (0: dynamic);
    /// batches are then fed in slices of exactly this many crops.
    #[serde(default)]
    pub batch: usize,
    /// Where the file comes from (registry, package and version, path).
    #[serde(default)]
    pub source: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub match_similarity: f32,
    pub possible_similarity: f32,
    /// How the thresholds were chosen (`facepass calibrate` writes it).
    #[serde(default)]
    pub calibration: Option<Calibration>,
}

/// What `facepass calibrate` measured when it set the thresholds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// The labelled set (folder name) and when.
    pub set: String,
    pub people: usize,
    pub faces: usize,
    pub same_pairs: usize,
    pub different_pairs: usize,
    /// The false-match rates the two thresholds were chosen for.
    pub match_false_match_rate: f64,
    pub possible_false_match_rate: f64,
    /// Same-person pairs at or above each threshold.
    pub match_true_match_rate: f64,
    pub possible_true_match_rate: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Download {
    pub url: String,
    pub sha256: String,
    pub bytes: u64,
}

impl PackManifest {
    pub fn parse(text: &str) -> Result<Self, String> {
        let m: PackManifest = toml::from_str(text).map_err(|e| e.message().to_string())?;
        let mut problems = Vec::new();
        for (what, sha) in [
            ("detector", &m.detector.sha256),
            ("recogniser", &m.recogniser.sha256),
        ] {
            if sha.len() != 64 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
                problems.push(format!("{what}.sha256 is not 64 hex digits"));
            }
        }
        if m.recogniser.dimension == 0 || m.recogniser.input_std == 0.0 {
            problems.push("recogniser.dimension and input_std must be positive".into());
        }
        if m.detector.input_size == 0 || !m.detector.input_size.is_multiple_of(32) {
            problems.push("detector.input_size must be a positive multiple of 32".into());
        }
        if let Some(q) = &m.quantised {
            if !matches!(q.precision.as_str(), "int8" | "fp16") {
                problems.push(format!(
                    "quantised.precision is '{}' (known: int8, fp16)",
                    q.precision
                ));
            }
            if q.from == m.model_id() {
                problems.push(
                    "a quantised variant needs a version of its own (its embeddings differ from the full-precision pack's)"
                        .into(),
                );
            }
        }
        if m.thresholds.possible_similarity > m.thresholds.match_similarity {
            problems.push("thresholds.possible_similarity must not exceed match_similarity".into());
        }
        if problems.is_empty() {
            Ok(m)
        } else {
            Err(problems.join("; "))
        }
    }

    /// A built-in manifest by name.
    pub fn builtin(name: &str) -> Option<Self> {
        match name {
            "buffalo_l" => Some(Self::parse(BUFFALO_L).expect("the built-in manifest is valid")),
            _ => None,
        }
    }

    /// One line for logs and the operator: name, precision and licence.
    pub fn licence_line(&self) -> String {
        format!(
            "model pack {} {}{}: {}{}",
            self.name,
            self.version,
            self.quantised
                .as_ref()
                .map(|q| format!(" ({} variant of {})", q.precision, q.from))
                .unwrap_or_default(),
            self.licence.name,
            if self.licence.commercial_use {
                ""
            } else {
                " (NOT for commercial use)"
            }
        )
    }

    /// The pack's identity, `name@version`, carried with every embedding.
    pub fn model_id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// Reads and checks `dir/manifest.toml` (and nothing else).
    pub fn load(dir: &std::path::Path) -> Result<Self, String> {
        let path = dir.join("manifest.toml");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "{}: no model pack here ({e}); see README.md (model packs)",
                path.display()
            )
        })?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffalo_l_is_built_in_with_the_published_hashes() {
        let m = PackManifest::builtin("buffalo_l").unwrap();
        assert_eq!(m.detector.file, "det_10g.onnx");
        assert_eq!(m.detector.bytes, 16_923_827);
        assert!(m.recogniser.sha256.starts_with("4c06341c"));
        assert!(!m.licence.commercial_use);
        assert!(m.licence_line().contains("NOT for commercial use"));
        assert_eq!(m.model_id(), format!("buffalo_l@{}", m.version));
        assert!(m.download.unwrap().url.ends_with("buffalo_l.zip"));
        assert!(PackManifest::builtin("nope").is_none());
    }

    #[test]
    fn a_quantised_variant_says_what_it_was_made_from() {
        let variant = BUFFALO_L.replace("version = \"0.7\"", "version = \"0.7-int8\"")
            + "\n[quantised]\nfrom = \"buffalo_l@0.7\"\nprecision = \"int8\"\nmethod = \"QDQ\"\n";
        let m = PackManifest::parse(&variant).unwrap();
        assert_eq!(m.model_id(), "buffalo_l@0.7-int8");
        assert_eq!(m.quantised.as_ref().unwrap().from, "buffalo_l@0.7");
        assert!(m
            .licence_line()
            .starts_with("model pack buffalo_l 0.7-int8 (int8 variant of buffalo_l@0.7): "));
        assert!(PackManifest::builtin("buffalo_l")
            .unwrap()
            .quantised
            .is_none());
        // Its own version, and a known precision.
        let same = BUFFALO_L.to_string()
            + "\n[quantised]\nfrom = \"buffalo_l@0.7\"\nprecision = \"int8\"\n";
        assert!(PackManifest::parse(&same)
            .unwrap_err()
            .contains("version of its own"));
        let odd = variant.replace("precision = \"int8\"", "precision = \"int4\"");
        assert!(PackManifest::parse(&odd).unwrap_err().contains("int4"));
    }

    #[test]
    fn bad_manifests_are_explained() {
        let broken = BUFFALO_L.replace("dimension = 512", "dimension = 0");
        assert!(PackManifest::parse(&broken)
            .unwrap_err()
            .contains("dimension"));
        let broken = BUFFALO_L.replace("5838f7fe", "zz");
        assert!(PackManifest::parse(&broken).unwrap_err().contains("sha256"));
        assert!(PackManifest::parse("name = 1").is_err());
    }

    #[test]
    fn load_reads_only_the_manifest() {
        let dir = tempfile::tempdir().unwrap();
        assert!(PackManifest::load(dir.path())
            .unwrap_err()
            .contains("no model pack"));
        std::fs::write(dir.path().join("manifest.toml"), BUFFALO_L).unwrap();
        // The ONNX files are not there: the manifest alone is enough.
        let m = PackManifest::load(dir.path()).unwrap();
        assert_eq!(m.name, "buffalo_l");
    }
}
