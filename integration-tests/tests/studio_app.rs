//! The studio dashboard (issue 13, item 3; web/src/studio) in headless
//! Chromium against the five real services: integration-tests/browser/
//! studio_app.mjs signs in, creates an event, uploads 30 photos with
//! progress, watches indexing, re-uploads after a reload (all skipped),
//! shows a photo's faces, turns the guest link off and deletes the event.

use facepass_integration_tests::{browser, Cluster};
use facepass_synth::event_photo;

const PHOTOS: usize = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_studio_runs_an_event_from_the_dashboard() {
    let cluster = Cluster::start().await.expect("cluster");
    let (_studio, key) = cluster.create_studio("Фотостудия «Свет»").unwrap();
    let dir = facepass_integration_tests::tempfile_dir::Dir::new("studio-app").unwrap();
    let photos = dir.path().join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    for i in 0..PHOTOS {
        let who: &[u8] = match i % 3 {
            0 => &[1],
            1 => &[1, 2],
            _ => &[3],
        };
        let jpeg = event_photo(900 + i as u64, 1200, 900, who, (130, 170)).jpeg(88);
        std::fs::write(photos.join(format!("IMG_{:04}.jpg", i + 1)), jpeg).unwrap();
    }
    // Two more photos, dropped on the page.
    let drop = dir.path().join("drop");
    std::fs::create_dir_all(&drop).unwrap();
    for i in 0..2 {
        let jpeg = event_photo(960 + i, 1200, 900, &[1], (130, 170)).jpeg(88);
        std::fs::write(drop.join(format!("DROP_{i}.jpg")), jpeg).unwrap();
    }
    // A logo: a teal disc on white.
    let logo = dir.path().join("logo.png");
    image::RgbImage::from_fn(240, 96, |x, y| {
        let (dx, dy) = (x as i32 - 48, y as i32 - 48);
        if dx * dx + dy * dy < 40 * 40 {
            image::Rgb([15, 118, 110])
        } else {
            image::Rgb([255, 255, 255])
        }
    })
    .save(&logo)
    .unwrap();
    let shots = browser::screenshots();

    let seen = browser::run(
        "studio_app.mjs",
        &[
            cluster.gateway_http.as_ref(),
            key.as_ref(),
            photos.as_os_str(),
            shots.as_os_str(),
            logo.as_os_str(),
            drop.as_os_str(),
        ],
        || cluster.logs(),
    );
    println!("studio app: {seen}");
    let step = |name: &str| browser::step(&seen, name);

    // "/" leads to the dashboard's sign-in; a wrong key is refused clearly.
    assert!(step("signin-page")["url"]
        .as_str()
        .unwrap()
        .ends_with("/studio"));
    assert!(!step("wrong-key")["text"].as_str().unwrap().is_empty());
    // The session is an HttpOnly, SameSite=Strict cookie; the key is kept nowhere.
    let signed = step("signed-in");
    assert_eq!(
        signed["cookie"],
        serde_json::json!([{"httpOnly": true, "sameSite": "Strict"}]),
        "{signed}"
    );
    assert_eq!(signed["keyInStorage"], false);

    let created = step("created");
    assert_eq!(created["title"], "Свадьба Анны и Олега");
    assert!(created["guestUrl"].as_str().unwrap().contains("/e/"));
    assert!(created["qrModules"].as_u64().unwrap() >= 21);

    // The guest's page names the studio that processes the face, links its
    // privacy text, shows its logo, colour and the event's date.
    let branded = step("guest-branding");
    assert!(
        branded["header"]
            .as_str()
            .unwrap()
            .contains("Фотостудия «Свет»"),
        "{branded}"
    );
    assert!(
        branded["consent"]
            .as_str()
            .unwrap()
            .contains("Фотостудия «Свет» сравнит"),
        "{branded}"
    );
    assert_eq!(branded["privacy"], "https://svet.example/privacy");
    assert_eq!(branded["logoWidth"], 240);
    assert_eq!(branded["date"], "2026-06-20");
    assert_eq!(branded["button"], "rgb(15, 118, 110)");

    let uploaded = step("uploaded");
    assert_eq!(uploaded["total"], PHOTOS, "{uploaded}");
    assert_eq!(uploaded["done"], PHOTOS, "{uploaded}");
    assert_eq!(uploaded["failed"], 0, "{uploaded}");
    let indexed = step("indexed");
    assert_eq!(indexed["indexed"], PHOTOS, "{indexed}");
    println!(
        "30 photos: uploaded in {} ms, indexed {} ms after the upload began",
        uploaded["ms"], indexed["ms"]
    );

    // The same files after a reload: every one skipped, none sent again.
    let again = step("reuploaded");
    assert_eq!(again["skipped"], PHOTOS, "{again}");
    assert_eq!(again["done"], 0, "{again}");

    // Drag and drop sends what was dropped.
    let dropped = step("dropped");
    assert_eq!(dropped["done"], 2, "{dropped}");

    let photo = step("photo");
    assert!(photo["boxes"].as_u64().unwrap() >= 1, "{photo}");

    let deleted = step("photo-deleted");
    assert_eq!(
        deleted["after"].as_u64().unwrap() + 1,
        deleted["before"].as_u64().unwrap(),
        "{deleted}"
    );

    let off = step("link-off");
    assert_eq!(off["status"], 410, "{off}");
    // An expired link says so, and offers nothing to press.
    let expired = step("guest-link-expired");
    assert!(
        expired["text"]
            .as_str()
            .unwrap()
            .contains("Срок действия ссылки истёк"),
        "{expired}"
    );
    assert_eq!(expired["buttons"], 0);

    // The guest with that link is told, and offered nothing to press.
    let guest = step("guest-link-off");
    assert!(
        guest["text"].as_str().unwrap().contains("отключил"),
        "{guest}"
    );
    assert_eq!(guest["buttons"], 0);
    assert_eq!(step("deleted")["left"], 0);

    // axe-core: no serious or critical violation on any screen.
    let axe = seen["axe"].as_array().unwrap();
    assert_eq!(axe.len(), 4, "{seen}");
    for page in axe {
        assert!(page["passes"].as_u64().unwrap() > 10, "{page}");
        assert_eq!(page["violations"], serde_json::json!([]), "{page}");
    }

    assert_eq!(seen["outside"], serde_json::json!([]), "{seen}");
    assert_eq!(seen["errors"], serde_json::json!([]), "{seen}");
}
