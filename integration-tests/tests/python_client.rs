//! The Python client for Pixora (clients/python) end to end: its example
//! script creates an event, uploads photos (one large enough to be
//! streamed), waits through WatchEvent, searches with a selfie (first
//! without consent: CONSENT_REQUIRED) and deletes the event, against the
//! five real binaries.

use facepass_integration_tests::{repo_root, Cluster};
use facepass_synth::{event_photo, selfie};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_example_runs_end_to_end() {
    let cluster = Cluster::start().await.expect("cluster");
    let (_studio, key) = cluster.create_studio("Pixora").unwrap();
    let dir = cluster
        .storage_root
        .parent()
        .unwrap()
        .join("python-example");
    std::fs::create_dir_all(&dir).unwrap();
    let mut photos = Vec::new();
    for (i, who) in [&[1u8][..], &[1, 2], &[2], &[]].iter().enumerate() {
        let path = dir.join(format!("IMG_{i:04}.jpg"));
        // The second photo at the highest quality: larger than the others.
        let q = if i == 1 { 100 } else { 85 };
        std::fs::write(
            &path,
            event_photo(600 + i as u64, 1400, 1000, who, (110, 150)).jpeg(q),
        )
        .unwrap();
        photos.push(path);
    }
    // Photos above the median size go through UploadPhotoStream.
    let mut sizes: Vec<u64> = photos
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .collect();
    sizes.sort();
    let stream_above = sizes[1].to_string();
    let selfie_path = dir.join("selfie.jpg");
    std::fs::write(&selfie_path, selfie(77, 1).jpeg(90)).unwrap();

    let python = repo_root().join(".venv/bin/python");
    let target = cluster
        .gateway_grpc
        .trim_start_matches("http://")
        .to_string();
    let out = std::process::Command::new(python)
        .arg(repo_root().join("clients/python/examples/quickstart.py"))
        .args([
            "--target",
            &target,
            "--api-key",
            &key,
            "--stream-above",
            &stream_above,
        ])
        .arg("--selfie")
        .arg(&selfie_path)
        .args(&photos)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "{stdout}\n{stderr}\n{}",
        cluster.logs()
    );
    assert!(
        stdout.contains("indexed 4 of 4 photos, 0 failed, 4 faces"),
        "{stdout}"
    );
    assert_eq!(stdout.matches("streamed IMG_").count(), 2, "{stdout}");
    assert_eq!(stdout.matches("uploaded IMG_").count(), 2, "{stdout}");
    assert!(
        stdout.contains("without consent: CONSENT_REQUIRED (field consent)"),
        "{stdout}"
    );
    assert!(stdout.contains("found IMG_0000.jpg (match"), "{stdout}");
    assert!(stdout.contains("found IMG_0001.jpg (match"), "{stdout}");
    assert!(stdout.contains("found 2 photos"), "{stdout}");
    assert!(
        stdout.contains("deleted the event: 4 photos, 4 faces"),
        "{stdout}"
    );
    assert!(stdout.contains("after deletion: NOT_FOUND"), "{stdout}");
}
