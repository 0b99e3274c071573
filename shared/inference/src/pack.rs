//! Model packs: a folder with the detector and recogniser ONNX files and a
//! `manifest.toml` that says what they are (hashes and sizes, licence, input
//! spec, embedding dimension and normalisation, thresholds). buffalo_l's
//! manifest is built in; the generated fixture and proxy packs write their
//! own. A recogniser of another dimension or normalisation is added by a
//! manifest alone.

use std::path::{Path, PathBuf};

use crate::{sha256_file, ModelError};

pub use facepass_core::pack::*;

/// A manifest and the folder its files are in.
#[derive(Debug, Clone)]
pub struct Pack {
    pub dir: PathBuf,
    pub manifest: PackManifest,
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
