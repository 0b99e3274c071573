//! Previews and "download all" (issue 13, item 1), on the real binaries:
//! indexing writes a ~400 px thumbnail and a ~1600 px screen view of each
//! photo next to it in the object store (from the image the detector
//! decodes anyway), guests and studios get them by `?size=`, a photo's
//! previews go with it, and the guest's "download all" streams a ZIP of the
//! originals that Python's zipfile reads back byte for byte, while the
//! gateway's memory stays flat.

use std::collections::HashMap;
use std::time::Duration;

use facepass_integration_tests::gateway::{client, files_under, wait_indexed};
use facepass_integration_tests::{repo_root, Cluster};
use facepass_synth::{event_photo, selfie};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn photos_get_previews_and_guests_download_all_as_a_zip() {
    let cluster = Cluster::start().await.expect("cluster");
    let (studio, key) = cluster.create_studio("Studio").unwrap();
    let mut api = client(&cluster.gateway_grpc, Some(&key)).await.unwrap();
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", cluster.gateway_http);

    let event: Value = http
        .post(url("/api/v1/events"))
        .bearer_auth(&key)
        .json(&json!({"name": "Выпускной 2026"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let event_id = event["id"].as_str().unwrap().to_string();
    let token = event["share_token"].as_str().unwrap().to_string();

    // Large JPEGs (the reduced-decode path), a PNG (full decode), all with
    // person 1; the originals' hashes for the ZIP check.
    let mut originals: HashMap<String, (String, Vec<u8>)> = HashMap::new();
    let mut uploads: Vec<(String, Vec<u8>)> = (0..6)
        .map(|i| {
            let bytes = event_photo(300 + i, 4000, 3000, &[1, 2], (260, 340)).jpeg(97);
            (format!("IMG_{:04}.JPG", 100 + i), bytes)
        })
        .collect();
    uploads.push((
        "portrait.png".into(),
        event_photo(320, 900, 1200, &[1], (200, 260)).png(),
    ));
    // Two uploads with the same file name get distinct names in the ZIP.
    uploads.push((
        "IMG_0100.JPG".into(),
        event_photo(321, 1000, 800, &[1], (150, 200)).jpeg(90),
    ));
    let mut total_bytes = 0usize;
    for (i, (name, bytes)) in uploads.iter().enumerate() {
        let photo: Value = http
            .post(url(&format!(
                "/api/v1/events/{event_id}/photos?external_id=p{i}&file_name={name}"
            )))
            .bearer_auth(&key)
            .body(bytes.clone())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        total_bytes += bytes.len();
        originals.insert(
            photo["id"].as_str().unwrap().to_string(),
            (name.clone(), bytes.clone()),
        );
    }
    // HEIC and AVIF originals (libheif decodes them): their previews are
    // JPEG, which every browser shows.
    let testdata = repo_root().join("services/detector/testdata");
    let mut heif_ids = Vec::new();
    for name in ["heif-selfie.heic", "heif-selfie.avif"] {
        let photo: Value = http
            .post(url(&format!(
                "/api/v1/events/{event_id}/photos?external_id={name}&file_name={name}"
            )))
            .bearer_auth(&key)
            .body(std::fs::read(testdata.join(name)).unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        heif_ids.push((name, photo["id"].as_str().unwrap().to_string()));
    }
    wait_indexed(
        &mut api,
        &event_id,
        uploads.len() as u64 + 2,
        Duration::from_secs(600),
    )
    .await
    .unwrap();

    // --- previews in the store, next to the originals ------------------------
    let previews_dir = cluster
        .storage_root
        .join(format!("studios/{studio}/events/{event_id}/previews"));
    for (id, (name, bytes)) in &originals {
        let original = image::load_from_memory(bytes).unwrap();
        let long = original.width().max(original.height());
        for (size, side) in [("thumb", 400u32), ("screen", 1600)] {
            let path = previews_dir.join(id).join(format!("{size}.jpg"));
            let jpeg = std::fs::read(&path).unwrap_or_else(|e| panic!("{name}: {path:?}: {e}"));
            assert!(
                jpeg.starts_with(&[0xFF, 0xD8, 0xFF]),
                "{name} {size} is not a JPEG"
            );
            let img = image::load_from_memory(&jpeg).unwrap();
            assert_eq!(
                img.width().max(img.height()),
                side.min(long),
                "{name} {size}: {}x{}",
                img.width(),
                img.height()
            );
            // The aspect is kept.
            let aspect = |w: u32, h: u32| w as f64 / h as f64;
            assert!(
                (aspect(img.width(), img.height()) - aspect(original.width(), original.height()))
                    .abs()
                    < 0.01
            );
        }
    }

    for (name, id) in &heif_ids {
        // 480x640 originals: the thumbnail fits 400, the screen view keeps them.
        for (size, dims) in [("thumb", (300, 400)), ("screen", (480, 640))] {
            let jpeg = std::fs::read(previews_dir.join(id).join(format!("{size}.jpg")))
                .unwrap_or_else(|e| panic!("{name} {size}: {e}"));
            assert!(jpeg.starts_with(&[0xFF, 0xD8, 0xFF]), "{name} {size}");
            let img = image::load_from_memory(&jpeg).unwrap();
            assert_eq!((img.width(), img.height()), dims, "{name} {size}");
        }
    }

    // --- guests get previews by URL; the original only on request ------------
    let consent = http
        .get(url(&format!("/api/v1/guest/{token}")))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["policy_version"]
        .as_str()
        .unwrap()
        .to_string();
    let found: Value = http
        .post(url(&format!(
            "/api/v1/guest/{token}/search?consent={consent}"
        )))
        .body(selfie(5, 1).jpeg(90))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Person 1's photos (the HEIC and AVIF fixtures hold another face).
    let matches: Vec<&Value> = found["matches"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| originals.contains_key(m["photo_id"].as_str().unwrap()))
        .collect();
    assert_eq!(matches.len(), originals.len(), "{found}");
    let (mut thumbs, mut full) = (0usize, 0usize);
    for m in &matches {
        let thumb = http
            .get(url(m["thumb_url"].as_str().unwrap()))
            .send()
            .await
            .unwrap();
        assert_eq!(thumb.headers()["content-type"], "image/jpeg");
        let thumb = thumb.bytes().await.unwrap();
        let img = image::load_from_memory(&thumb).unwrap();
        assert!(img.width().max(img.height()) <= 400);
        thumbs += thumb.len();
        let screen = http
            .get(url(m["screen_url"].as_str().unwrap()))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert!(image::load_from_memory(&screen).unwrap().width() <= 1600);
        let original = &originals[m["photo_id"].as_str().unwrap()].1;
        full += original.len();
        // Face boxes are in the original's pixels, which the match names.
        let dims = image::load_from_memory(original).unwrap();
        assert_eq!(
            (m["width"].as_u64(), m["height"].as_u64()),
            (Some(dims.width() as u64), Some(dims.height() as u64))
        );
    }
    println!(
        "{} matches: thumbnails {} KiB in all, originals {} KiB ({:.1}% of the bytes)",
        matches.len(),
        thumbs / 1024,
        full / 1024,
        100.0 * thumbs as f64 / full as f64
    );
    assert!(thumbs * 10 < full, "thumbnails are not much smaller");
    let bad = http
        .get(url(&format!(
            "{}?size=huge",
            matches[0]["url"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    // The studio too (its API key).
    let studio_thumb = http
        .get(url(&format!(
            "/api/v1/photos/{}/image?size=thumb",
            matches[0]["photo_id"].as_str().unwrap()
        )))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(studio_thumb.status(), 200);
    let no_key = http
        .get(url(&format!(
            "/api/v1/photos/{}/image",
            matches[0]["photo_id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(no_key.status(), 401);

    // --- download all: a ZIP of the originals, streamed ----------------------
    let ids: Vec<&str> = matches
        .iter()
        .map(|m| m["photo_id"].as_str().unwrap())
        .collect();
    let (peak_before, _) = cluster.memory_mib("gateway");
    let started = std::time::Instant::now();
    let zip = http
        .post(url(&format!("/api/v1/guest/{token}/download")))
        .json(&json!({ "photo_ids": ids }))
        .send()
        .await
        .unwrap();
    assert_eq!(zip.status(), 200);
    assert_eq!(zip.headers()["content-type"], "application/zip");
    let disposition = zip.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(disposition.contains("%D0%92%D1%8B%D0%BF"), "{disposition}");
    let zip = zip.bytes().await.unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let (peak_after, _) = cluster.memory_mib("gateway");
    println!(
        "download all: {} photos, {:.1} MB ZIP in {seconds:.2} s; gateway peak RSS {peak_before:.0} -> {peak_after:.0} MiB",
        ids.len(),
        zip.len() as f64 / 1e6
    );
    assert!(zip.len() > total_bytes, "{} < {total_bytes}", zip.len());
    // Memory does not follow the archive's size.
    assert!(
        peak_after - peak_before < zip.len() as f64 / 1048576.0 / 2.0,
        "gateway peak grew {peak_before:.0} -> {peak_after:.0} MiB for a {} MB ZIP",
        zip.len() / 1_000_000
    );
    // Python's zipfile reads every entry back, CRCs checked.
    let dir = facepass_integration_tests::tempfile_dir::Dir::new("zip").unwrap();
    let path = dir.path().join("photos.zip");
    std::fs::write(&path, &zip).unwrap();
    let out = std::process::Command::new(repo_root().join(".venv/bin/python"))
        .args([
            "-c",
            "import hashlib, json, sys, zipfile\n\
             z = zipfile.ZipFile(sys.argv[1])\n\
             assert z.testzip() is None\n\
             print(json.dumps({i.filename: hashlib.sha256(z.read(i)).hexdigest() for i in z.infolist()}))",
            path.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let entries: HashMap<String, String> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(entries.len(), originals.len(), "{entries:?}");
    assert!(entries.contains_key("IMG_0100.JPG") && entries.contains_key("IMG_0100 (2).JPG"));
    let mut want: Vec<String> = originals
        .values()
        .map(|(_, b)| hex::encode(Sha256::digest(b)))
        .collect();
    let mut got: Vec<String> = entries.values().cloned().collect();
    want.sort();
    got.sort();
    assert_eq!(got, want, "the ZIP's entries are not the originals");
    // The page's form POST gets the same archive.
    let form_body = ids
        .iter()
        .map(|id| format!("photo_ids={id}"))
        .collect::<Vec<_>>()
        .join("&");
    let by_form = http
        .post(url(&format!("/api/v1/guest/{token}/download")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body)
        .send()
        .await
        .unwrap();
    assert_eq!(by_form.status(), 200);
    assert_eq!(by_form.bytes().await.unwrap().len(), zip.len());
    // A photo that is not the event's is refused before a byte is sent.
    let other = http
        .post(url(&format!("/api/v1/guest/{token}/download")))
        .json(&json!({ "photo_ids": [ids[0], uuid::Uuid::new_v4().to_string()] }))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
    let empty = http
        .post(url(&format!("/api/v1/guest/{token}/download")))
        .json(&json!({ "photo_ids": [] }))
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), 400);

    // --- previews go with their photo and their event ------------------------
    let gone = ids[0];
    let deleted = http
        .delete(url(&format!("/api/v1/photos/{gone}")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    assert!(
        !previews_dir.join(gone).exists(),
        "a deleted photo's previews stay"
    );
    let deleted = http
        .delete(url(&format!("/api/v1/events/{event_id}")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    let left = files_under(
        &cluster
            .storage_root
            .join(format!("studios/{studio}/events/{event_id}")),
    );
    assert!(left.is_empty(), "left behind: {left:?}");
}
