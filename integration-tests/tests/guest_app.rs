//! The guest's page (issue 13, item 2; web/src/guest) in headless Chromium
//! against the five real services: integration-tests/browser/guest_app.mjs
//! plays a guest on a phone and at a desktop, and this test judges what it
//! saw. Screenshots land in target/screenshots (FACEPASS_SCREENSHOTS).

use std::time::Duration;

use facepass_integration_tests::gateway::{client, create_event, upload, wait_indexed};
use facepass_integration_tests::{browser, Cluster};
use facepass_synth::{event_photo, selfie};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_guest_finds_views_downloads_and_forgets_their_photos() {
    let cluster = Cluster::start().await.expect("cluster");
    let (_studio, key) = cluster.create_studio("Studio").unwrap();
    let mut api = client(&cluster.gateway_grpc, Some(&key)).await.unwrap();
    let event = create_event(&mut api, "Выпускной 11 «А»").await;
    // Person 1 is in three photos, person 2 in one; a file that is not an
    // image fails and must not count as pending.
    let photos = [
        event_photo(700, 1600, 1200, &[1], (150, 200)).jpeg(90),
        event_photo(701, 1600, 1200, &[1, 2], (150, 200)).jpeg(90),
        event_photo(702, 1200, 1600, &[1, 3], (150, 200)).jpeg(90),
        event_photo(703, 1600, 1200, &[2], (150, 200)).jpeg(90),
    ];
    for (i, bytes) in photos.iter().enumerate() {
        upload(&mut api, &event.id, &format!("g{i}"), bytes.clone()).await;
    }
    upload(&mut api, &event.id, "broken", b"not an image".to_vec()).await;
    wait_indexed(&mut api, &event.id, 5, Duration::from_secs(240))
        .await
        .unwrap();

    let dir = facepass_integration_tests::tempfile_dir::Dir::new("guest-app").unwrap();
    let selfie_path = dir.path().join("selfie.jpg");
    std::fs::write(&selfie_path, selfie(11, 1).jpeg(90)).unwrap();
    let no_face = dir.path().join("wall.png");
    std::fs::write(&no_face, event_photo(704, 800, 600, &[], (100, 120)).png()).unwrap();
    let other = dir.path().join("other.jpg");
    std::fs::write(&other, selfie(12, 2).jpeg(90)).unwrap();
    // The fake camera's video: that guest's selfie as one Y4M frame.
    let camera = dir.path().join("camera.y4m");
    std::fs::write(
        &camera,
        y4m(&image::load_from_memory(&selfie(13, 2).png())
            .unwrap()
            .to_rgb8()),
    )
    .unwrap();
    let shots = browser::screenshots();

    let seen = browser::run(
        "guest_app.mjs",
        &[
            cluster.gateway_http.as_ref(),
            event.share_token.as_ref(),
            selfie_path.as_os_str(),
            no_face.as_os_str(),
            shots.as_os_str(),
            other.as_os_str(),
            camera.as_os_str(),
        ],
        || cluster.logs(),
    );
    let step = |name: &str| browser::step(&seen, name);
    println!("guest app: {seen}");

    // Consent first: in Russian, the event's name, no selfie before it.
    let consent = step("consent");
    assert_eq!(consent["title"], "Выпускной 11 «А»");
    assert!(
        consent["text"]
            .as_str()
            .unwrap()
            .contains("Селфи нигде не сохраняется"),
        "{consent}"
    );
    assert_eq!(consent["continueDisabled"], true);
    // 4 of 5 photos searchable; the failed one is not "being processed".
    let counts = consent["counts"].as_str().unwrap();
    assert!(counts.contains("4 из 5"), "{counts}");
    assert!(!counts.contains("обрабатываются"), "{counts}");
    assert_eq!(consent["selfieButtons"], 0);

    // Results: person 1's three photos as thumbnails, two per row on a phone,
    // no raw percentages.
    let results = step("results");
    assert_eq!(results["tiles"], 3, "{results}");
    for src in results["sources"].as_array().unwrap() {
        assert!(src.as_str().unwrap().ends_with("?size=thumb"), "{src}");
    }
    assert_eq!(results["columns"], 2, "{results}");
    assert_eq!(results["percentShown"], false);
    assert!(results["sections"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s == "Это вы"));

    // The viewer shows screen previews, moves by keyboard, offers the original.
    let viewer = step("viewer");
    assert!(viewer["first"].as_str().unwrap().ends_with("?size=screen"));
    assert_ne!(viewer["first"], viewer["second"]);
    assert!(!viewer["download"].as_str().unwrap().contains("size="));
    assert_eq!(viewer["closed"], true);

    // An error says what to do and keeps the results.
    let error = step("error");
    assert!(
        error["text"].as_str().unwrap().contains("не видно лица"),
        "{error}"
    );
    assert_eq!(error["tilesBefore"], error["tilesAfter"]);

    // The older, slower search does not overwrite the newer one.
    let race = step("race");
    assert_eq!(race["searches"], 2, "{race}");
    assert_eq!(race["error"], 0, "{race}");
    assert_eq!(race["tiles"], 3, "{race}");

    // Shed by the gateway (429 with Retry-After): the page counts down and
    // sends the selfie again by itself.
    let shed = step("shed");
    assert_eq!(shed["searches"], 2, "{shed}");
    assert!(
        shed["waiting"]
            .as_str()
            .unwrap()
            .contains("Пробуем снова через"),
        "{shed}"
    );
    assert_eq!(shed["error"], 0, "{shed}");
    assert_eq!(shed["tiles"], 3, "{shed}");

    // Me and a friend: only the photo with both (person 1 and person 2).
    let together = step("together");
    assert_eq!(together["error"], "", "{together}");
    assert_eq!(together["tiles"], 1, "{together}");

    // Download all: a ZIP.
    let download = step("download");
    assert_eq!(download["signature"], "504b0304", "{download}");
    assert!(
        download["size"].as_u64().unwrap() > 3 * 50_000,
        "{download}"
    );

    // English from the browser's language; desktop has more columns.
    assert_eq!(step("english")["text"], "Before we look");
    assert!(step("desktop")["columns"].as_u64().unwrap() >= 4);

    // Forget me: the receipt, and the results are gone.
    let forgotten = step("forgotten");
    assert!(
        forgotten["text"].as_str().unwrap().starts_with("Готово"),
        "{forgotten}"
    );
    assert_eq!(forgotten["tiles"], 0);

    // A bad link: a clear message and nothing to press.
    let bad = step("bad-link");
    assert!(bad["text"].as_str().unwrap().contains("Такой ссылки нет"));
    assert_eq!(bad["buttons"], 0);

    // The in-page camera: a live picture, and a shot of it finds the guest.
    let camera = step("camera");
    assert_eq!(camera["video"]["playing"], true, "{camera}");
    assert!(camera["video"]["width"].as_u64().unwrap() > 0, "{camera}");
    assert_eq!(camera["closed"], true, "{camera}");
    assert_eq!(camera["error"], "", "{camera}");
    assert_eq!(camera["tiles"], 2, "{camera}");

    // axe-core: no serious or critical violation in any state.
    let axe = seen["axe"].as_array().unwrap();
    assert_eq!(axe.len(), 5, "{seen}");
    for page in axe {
        assert!(page["passes"].as_u64().unwrap() > 10, "{page}");
        assert_eq!(page["violations"], serde_json::json!([]), "{page}");
    }

    // Nothing from elsewhere, no script error.
    assert_eq!(seen["outside"], serde_json::json!([]), "{seen}");
    assert_eq!(seen["errors"], serde_json::json!([]), "{seen}");
}

/// One frame of YUV 4:2:0 video (Y4M, the format of Chromium's fake camera),
/// BT.601 full range.
fn y4m(rgb: &image::RgbImage) -> Vec<u8> {
    let (w, h) = (rgb.width() & !1, rgb.height() & !1);
    let mut out = format!("YUV4MPEG2 W{w} H{h} F30:1 Ip A1:1 C420jpeg\nFRAME\n").into_bytes();
    let px = |x: u32, y: u32| {
        let p = rgb.get_pixel(x, y).0;
        (p[0] as f32, p[1] as f32, p[2] as f32)
    };
    for y in 0..h {
        for x in 0..w {
            let (r, g, b) = px(x, y);
            out.push(
                (0.299 * r + 0.587 * g + 0.114 * b)
                    .round()
                    .clamp(0.0, 255.0) as u8,
            );
        }
    }
    let mut u = Vec::new();
    let mut v = Vec::new();
    for y in (0..h).step_by(2) {
        for x in (0..w).step_by(2) {
            let (mut r, mut g, mut b) = (0.0, 0.0, 0.0);
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let p = px(x + dx, y + dy);
                r += p.0 / 4.0;
                g += p.1 / 4.0;
                b += p.2 / 4.0;
            }
            u.push(
                (128.0 - 0.168736 * r - 0.331264 * g + 0.5 * b)
                    .round()
                    .clamp(0.0, 255.0) as u8,
            );
            v.push(
                (128.0 + 0.5 * r - 0.418688 * g - 0.081312 * b)
                    .round()
                    .clamp(0.0, 255.0) as u8,
            );
        }
    }
    out.extend(u);
    out.extend(v);
    out
}
