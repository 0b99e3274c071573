//! `facepass models calibrate` on the real photos with the real model pack:
//! it measures the same-person and different-person similarities, recommends
//! the thresholds the set-up ships (tools/models/real_pack.py), writes them
//! into a pack's manifest (a second run finds nothing to change), draws the
//! histogram, and refuses unusable input with a clear message.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use facepass_core::pack::PackManifest;
use facepass_integration_tests::{binary, ort_dylib, real_pack};

/// The thresholds tools/models/real_pack.py writes into the real pack; this
/// test is what holds them to the data.
const SHIPPED_MATCH: f32 = 0.58;
const SHIPPED_POSSIBLE: f32 = 0.48;

fn facepass(args: &[&str]) -> Output {
    Command::new(binary("facepass").unwrap())
        .args(args)
        .env("ORT_DYLIB_PATH", ort_dylib().unwrap())
        .output()
        .unwrap()
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fp-calibrate-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A copy of the real pack whose manifest still has the uncalibrated tiers.
fn uncalibrated_copy(models: &Path, dir: &Path) -> PathBuf {
    let pack = dir.join("pack");
    std::fs::create_dir_all(&pack).unwrap();
    for f in ["det.onnx", "rec.onnx"] {
        std::fs::copy(models.join(f), pack.join(f)).unwrap();
    }
    let text = std::fs::read_to_string(models.join("manifest.toml")).unwrap();
    let head = &text[..text
        .find("# Cosine similarity tiers")
        .expect("the tiers' comment")];
    std::fs::write(
        pack.join("manifest.toml"),
        format!("{head}[thresholds]\nmatch_similarity = 0.5\npossible_similarity = 0.4\n"),
    )
    .unwrap();
    pack
}

#[test]
fn calibration_on_real_photos_recommends_the_shipped_thresholds() {
    let (models, photos) = real_pack().unwrap();
    let dir = tempdir();
    let pack = uncalibrated_copy(&models, &dir);
    let plot = dir.join("plots/histogram.png");
    let labelled = photos.join("labelled");
    let solvay = photos.join("solvay_conference_1927.jpg");
    let args = [
        "models",
        "calibrate",
        pack.to_str().unwrap(),
        labelled.to_str().unwrap(),
        "--crowd",
        solvay.to_str().unwrap(),
        "--write",
        "--plot",
        plot.to_str().unwrap(),
    ];
    let out = facepass(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // 2 labelled people + the 29 Solvay faces; 5 + 1 labelled faces.
    assert!(stdout.contains("people 31, faces 35"), "{stdout}");
    assert!(stdout.contains("same-person pairs          10"), "{stdout}");
    assert!(stdout.contains("different-person pairs    585"), "{stdout}");
    assert!(
        stdout.contains("wrote match 0.58 and possible 0.48"),
        "{stdout}"
    );

    let manifest = PackManifest::load(&pack).unwrap();
    let t = &manifest.thresholds;
    assert_eq!(
        (t.match_similarity, t.possible_similarity),
        (SHIPPED_MATCH, SHIPPED_POSSIBLE)
    );
    let c = t
        .calibration
        .as_ref()
        .expect("what was measured is recorded");
    assert_eq!(
        (c.people, c.faces, c.same_pairs, c.different_pairs),
        (31, 35, 10, 585)
    );
    assert_eq!(
        c.match_true_match_rate, 1.0,
        "every Obama pair is a sure match"
    );
    // The shipped pack (the set-up's) carries the same tiers.
    let shipped = PackManifest::load(&models).unwrap();
    assert_eq!(
        (
            shipped.thresholds.match_similarity,
            shipped.thresholds.possible_similarity
        ),
        (SHIPPED_MATCH, SHIPPED_POSSIBLE),
        "tools/models/real_pack.py ships what calibration measures"
    );
    // The rest of the manifest is untouched and still verifies.
    let verify = facepass(&["models", "verify", pack.to_str().unwrap()]);
    assert!(verify.status.success());

    let png = image::open(&plot).expect("the histogram is a PNG");
    assert_eq!((png.width(), png.height()), (960, 540));

    // Again: nothing to change.
    let again = facepass(&args);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("already has these thresholds"));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn calibration_refuses_unusable_input_clearly() {
    let (models, photos) = real_pack().unwrap();
    let dir = tempdir();
    let labelled = photos.join("labelled");
    let cases: [(Vec<String>, &str); 3] = [
        (
            vec![dir.display().to_string()],
            "no person folders with photos",
        ),
        (
            vec![
                labelled.display().to_string(),
                "--match-fmr".into(),
                "2".into(),
            ],
            "--match-fmr must be within 0 and 1",
        ),
        (
            vec![
                labelled.display().to_string(),
                "--match-fmr".into(),
                "0.1".into(),
                "--possible-fmr".into(),
                "0.01".into(),
            ],
            "--match-fmr must not exceed --possible-fmr",
        ),
    ];
    for (rest, message) in cases {
        let mut args = vec!["models", "calibrate", models.to_str().unwrap()];
        args.extend(rest.iter().map(String::as_str));
        let out = facepass(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    // One person alone has no different-person pairs.
    std::fs::create_dir_all(dir.join("one/obama")).unwrap();
    std::fs::copy(photos.join("obama.jpg"), dir.join("one/obama/a.jpg")).unwrap();
    std::fs::copy(photos.join("obama3.jpg"), dir.join("one/obama/b.jpg")).unwrap();
    let out = facepass(&[
        "models",
        "calibrate",
        models.to_str().unwrap(),
        dir.join("one").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no different-person pairs"));
    std::fs::remove_dir_all(dir).ok();
}
