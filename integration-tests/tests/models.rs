//! Model packs through the operator CLI and the services' loaders: the
//! generated fixture pack verifies, a truncated or altered file is refused
//! with a clear error, and fetching buffalo_l without network access fails
//! with instructions instead of hanging or crashing.

use std::process::Command;

use facepass_detector::engine::FaceDetector;
use facepass_detector::DetectorConfig;
use facepass_integration_tests::{binary, fixture_models, ort_dylib};

fn facepass(args: &[&str]) -> std::process::Output {
    Command::new(binary("facepass").unwrap())
        .args(args)
        // A closed local port as proxy: the download fails fast, online or not.
        .env("https_proxy", "http://127.0.0.1:9")
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .output()
        .unwrap()
}

#[test]
fn fixture_pack_verifies_and_a_damaged_copy_does_not() {
    let pack = fixture_models().unwrap();
    let ok = facepass(&["models", "verify", pack.to_str().unwrap()]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("model pack fixture"));

    let copy = tempdir();
    for f in ["manifest.toml", "det.onnx", "rec.onnx"] {
        std::fs::copy(pack.join(f), copy.join(f)).unwrap();
    }
    let rec = std::fs::read(copy.join("rec.onnx")).unwrap();
    std::fs::write(copy.join("rec.onnx"), &rec[..rec.len() / 2]).unwrap();
    let bad = facepass(&["models", "verify", copy.to_str().unwrap()]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("rec.onnx") && err.contains("truncated"),
        "{err}"
    );

    let mut flipped = rec.clone();
    flipped[1000] ^= 1;
    std::fs::write(copy.join("rec.onnx"), &flipped).unwrap();
    let bad = facepass(&["models", "verify", copy.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("sha256"));
    std::fs::remove_dir_all(copy).ok();
}

#[test]
fn detector_loads_from_a_pack_and_refuses_a_damaged_one() {
    let mut config = DetectorConfig::default();
    config.model.path = String::new();
    config.model.pack = fixture_models().unwrap().display().to_string();
    config.workers = 1;
    let detector =
        FaceDetector::load(&config, Some(&ort_dylib().unwrap())).expect("load from pack");
    // The pack's identity, name@version, as the embedder reports its own.
    let manifest =
        facepass_core::pack::PackManifest::load(&fixture_models().unwrap()).expect("manifest");
    assert_eq!(detector.model_name(), manifest.model_id());
    assert!(detector.model_name().starts_with("fixture@"));

    let copy = tempdir();
    std::fs::copy(
        fixture_models().unwrap().join("manifest.toml"),
        copy.join("manifest.toml"),
    )
    .unwrap();
    std::fs::write(copy.join("det.onnx"), b"not a model").unwrap();
    config.model.pack = copy.display().to_string();
    let err = FaceDetector::load(&config, Some(&ort_dylib().unwrap()))
        .err()
        .expect("must fail");
    assert!(err.to_string().contains("det.onnx"), "{err}");
    std::fs::remove_dir_all(copy).ok();
}

#[test]
fn fetching_buffalo_l_offline_says_what_to_do() {
    let dir = tempdir();
    let out = facepass(&[
        "models",
        "fetch",
        "buffalo_l",
        "--dir",
        dir.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot download https://github.com/deepinsight/insightface"),
        "{err}"
    );
    assert!(
        err.contains("buffalo_l.zip") && err.contains("det_10g.onnx"),
        "{err}"
    );
    assert!(
        !dir.join("buffalo_l.zip.part").exists(),
        "partial download left behind"
    );

    let unknown = facepass(&[
        "models",
        "fetch",
        "antelope",
        "--dir",
        dir.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no built-in model pack"));
    std::fs::remove_dir_all(dir).ok();
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("fp-models-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
