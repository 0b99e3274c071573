//! Model packs: a folder with the detector and recogniser ONNX files and a
//! `manifest.toml` that says what they are (hashes and sizes, licence, input
//! spec, embedding dimension and normalisation, thresholds). buffalo_l's
//! manifest is built in; the generated fixture and proxy packs write their
//! own. A recogniser of another dimension or normalisation is added by a
//! manifest alone.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{sha256_file, ModelError};

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
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Licence {
    pub name: String,
    pub commercial_use: bool,
    #[serde(default)]
    pub url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DetectorEntry {
    pub file: String,
    pub sha256: String,
    pub bytes: u64,
    pub input_size: u32,
    pub score_threshold: f32,
    pub nms_threshold: f32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RecogniserEntry {
    pub file: String,
    pub sha256: String,
    pub bytes: u64,
    pub dimension: usize,
    pub input_mean: f32,
    pub input_std: f32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub match_similarity: f32,
    pub possible_similarity: f32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Download {
    pub url: String,
    pub sha256: String,
    pub bytes: u64,
}

/// A manifest and the folder its files are in.
#[derive(Debug, Clone)]
pub struct Pack {
    pub dir: PathBuf,
    pub manifest: PackManifest,
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
        if m.detector.input_size == 0 || m.detector.input_size % 32 != 0 {
            problems.push("detector.input_size must be a positive multiple of 32".into());
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

    /// One line for logs and the operator: name and licence.
    pub fn licence_line(&self) -> String {
        format!(
            "model pack {} {}: {}{}",
            self.name,
            self.version,
            self.licence.name,
            if self.licence.commercial_use {
                ""
            } else {
                " (NOT for commercial use)"
            }
        )
    }
}

impl Pack {
    /// Reads `dir/manifest.toml`.
    pub fn open(dir: &Path) -> Result<Self, ModelError> {
        let path = dir.join("manifest.toml");
        let text = std::fs::read_to_string(&path).map_err(|e| ModelError::Missing {
            path: path.display().to_string(),
            hint: format!("no model pack here ({e}); see README.md (model packs)"),
        })?;
        let manifest = PackManifest::parse(&text).map_err(|message| ModelError::Invalid {
            path: path.display().to_string(),
            message,
        })?;
        Ok(Pack {
            dir: dir.to_path_buf(),
            manifest,
        })
    }

    pub fn detector_path(&self) -> PathBuf {
        self.dir.join(&self.manifest.detector.file)
    }

    pub fn recogniser_path(&self) -> PathBuf {
        self.dir.join(&self.manifest.recogniser.file)
    }

    /// Checks that both files are there with the manifest's size and hash.
    pub fn verify(&self) -> Result<(), ModelError> {
        let m = &self.manifest;
        for (path, bytes, sha) in [
            (self.detector_path(), m.detector.bytes, &m.detector.sha256),
            (
                self.recogniser_path(),
                m.recogniser.bytes,
                &m.recogniser.sha256,
            ),
        ] {
            verify_file(&path, bytes, sha)?;
        }
        Ok(())
    }
}

/// Checks one file's size, then its SHA-256.
pub fn verify_file(path: &Path, bytes: u64, sha256: &str) -> Result<(), ModelError> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|_| ModelError::Missing {
        path: shown.clone(),
        hint: "see README.md (model packs)".into(),
    })?;
    if meta.len() != bytes {
        return Err(ModelError::Invalid {
            path: shown,
            message: format!(
                "{} bytes, expected {bytes} (truncated or another file)",
                meta.len()
            ),
        });
    }
    let actual = sha256_file(path).map_err(|e| ModelError::Unreadable {
        path: shown.clone(),
        message: e.to_string(),
    })?;
    if !actual.eq_ignore_ascii_case(sha256) {
        return Err(ModelError::HashMismatch {
            path: shown,
            expected: sha256.to_string(),
            actual,
        });
    }
    Ok(())
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
        assert!(m.download.unwrap().url.ends_with("buffalo_l.zip"));
        assert!(PackManifest::builtin("nope").is_none());
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
    fn truncated_and_wrong_files_are_caught() {
        let dir = std::env::temp_dir().join(format!("fp-pack-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("m.onnx");
        std::fs::write(&file, b"hello").unwrap();
        let sha = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
        assert!(verify_file(&file, 5, sha).is_ok());
        assert!(matches!(
            verify_file(&file, 6, sha),
            Err(ModelError::Invalid { .. })
        ));
        assert!(matches!(
            verify_file(&file, 5, &"0".repeat(64)),
            Err(ModelError::HashMismatch { .. })
        ));
        assert!(matches!(
            verify_file(&dir.join("none"), 5, sha),
            Err(ModelError::Missing { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
