//! The real-faces demo that `scripts/setup.sh` loads (issue 11, item 6), as
//! setup.sh runs it: `facepass demo --photos` uploads the public-domain photos
//! (all but obama2.jpg) into an event of the real model pack's stack and
//! prints its share token; the guest's selfie obama2.jpg, sent to the printed
//! link as the set-up's message says, finds exactly the four photos of Barack
//! Obama. Run twice, the demo reuses its event.

use std::process::Command;
use std::time::Duration;

use facepass_integration_tests::gateway::{client, event, wait_indexed};
use facepass_integration_tests::{binary, real_pack, Cluster};

/// The event's photos, as setup.sh links them.
const EVENT: [&str; 6] = [
    "obama.jpg",
    "obama3.jpg",
    "obama_partial_face.jpg",
    "obama_partial_face2.jpg",
    "biden.jpg",
    "solvay_conference_1927.jpg",
];

fn demo(cluster: &Cluster, key: &str, folder: &std::path::Path) -> String {
    let out = Command::new(binary("facepass").unwrap())
        .args(["demo", "--gateway", &cluster.gateway_grpc, "--key", key])
        .arg("--photos")
        .arg(folder)
        .args([
            "--external-id",
            "real-faces",
            "--name",
            "Real faces (public-domain photos)",
        ])
        .output()
        .expect("running facepass demo");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "facepass demo failed:\n{text}");
    println!("{text}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn printed(out: &str, key: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in the demo's output:\n{out}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_faces_demo_finds_obama_and_no_one_else() {
    let (models, photos) = real_pack().expect("the real pack (scripts/lib/deps.sh real-models)");
    let cluster = Cluster::start_with_pack(&models)
        .await
        .expect("start the five services on the real pack");
    let (_studio, key) = cluster.create_studio("Demo studio (real faces)").unwrap();
    let folder = cluster.dir.path().join("real-event");
    std::fs::create_dir_all(&folder).unwrap();
    for name in EVENT {
        std::fs::copy(photos.join(name), folder.join(name)).unwrap();
    }

    let out = demo(&cluster, &key, &folder);
    let token = printed(&out, "share_token");
    let event_id = printed(&out, "event_id");
    let mut api = client(&cluster.gateway_grpc, Some(&key)).await.unwrap();
    let done = wait_indexed(
        &mut api,
        &event_id,
        EVENT.len() as u64,
        Duration::from_secs(240),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    assert_eq!(
        (done.photos_indexed, done.photos_failed),
        (6, 0),
        "{done:?}"
    );
    assert_eq!(done.share_token, token);

    // The guest's selfie, as the set-up's message shows it (curl to the link).
    let selfie = std::fs::read(photos.join("obama2.jpg")).unwrap();
    let response = reqwest::Client::new()
        .post(format!(
            "{}/api/v1/guest/{token}/search?consent=2026-12-01",
            cluster.gateway_http
        ))
        .body(selfie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let found: serde_json::Value = response.json().await.unwrap();
    // Guests see no file names: the studio's list of the event's photos does.
    let listed: serde_json::Value = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/events/{event_id}/photos?page_size=100",
            cluster.gateway_http
        ))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let file_of = |id: &str| {
        listed["photos"]
            .as_array()
            .unwrap_or_else(|| panic!("{listed}"))
            .iter()
            .find(|p| p["id"] == id)
            .and_then(|p| p["file_name"].as_str())
            .unwrap_or_default()
            .to_string()
    };
    let mut names: Vec<String> = found["matches"]
        .as_array()
        .unwrap_or_else(|| panic!("{found}"))
        .iter()
        .map(|m| file_of(m["photo_id"].as_str().unwrap_or_default()))
        .collect();
    names.sort();
    println!("the demo's guest search with obama2.jpg: {names:?}");
    assert_eq!(
        names,
        [
            "obama.jpg",
            "obama3.jpg",
            "obama_partial_face.jpg",
            "obama_partial_face2.jpg"
        ]
    );

    // Run again (setup.sh run twice): the same event, nothing uploaded twice.
    let again = demo(&cluster, &key, &folder);
    assert_eq!(printed(&again, "event_id"), event_id);
    let same = event(&mut api, &event_id).await;
    assert_eq!(same.photos_total, 6, "{same:?}");
}
