//! HTML, SVG and PDF bytes uploaded as "photos" (issue 15, point 6): they
//! are stored (nothing is lost), fail indexing with IMAGE_UNDECODABLE, and
//! whoever fetches them gets opaque bytes that cannot run: served as
//! `application/octet-stream` with `nosniff` and a sandboxing
//! Content-Security-Policy, never as a page or an image a browser would
//! interpret; guests never get them at all.

use std::time::Duration;

use facepass_integration_tests::gateway::{client, create_event, photo, upload, wait_indexed};
use facepass_integration_tests::Cluster;
use facepass_synth::event_photo;

const HOSTILE: [(&str, &[u8]); 4] = [
    (
        "page.html",
        b"<!doctype html><html><body><script>fetch('/api/v1/events')</script></body></html>",
    ),
    (
        "drawing.svg",
        b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(document.cookie)\"><script>alert(1)</script></svg>",
    ),
    (
        "document.pdf",
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/OpenAction<</S/JavaScript/JS(app.alert(1))>>>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF",
    ),
    // An HTML page behind an image's first bytes is still not served as HTML.
    ("polyglot.jpg", b"GIF89a<html><script>alert(1)</script></html>"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_svg_and_pdf_uploads_are_never_served_as_something_that_runs() {
    let cluster = Cluster::start().await.expect("start the five services");
    let (_studio, key) = cluster.create_studio("Hostile").unwrap();
    let mut api = client(&cluster.gateway_grpc, Some(&key)).await.unwrap();
    let event = create_event(&mut api, "Hostile uploads").await;
    let mut ids = Vec::new();
    for (name, bytes) in HOSTILE {
        ids.push((
            name,
            upload(&mut api, &event.id, name, bytes.to_vec()).await.id,
        ));
    }
    // One real photo, so that the event has something a guest can see.
    let real = event_photo(4300, 1200, 900, &[1], (110, 150)).jpeg(85);
    let real_id = upload(&mut api, &event.id, "real", real).await.id;
    let done = wait_indexed(
        &mut api,
        &event.id,
        HOSTILE.len() as u64 + 1,
        Duration::from_secs(90),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    assert_eq!(done.photos_indexed, 1, "{done:?}");
    assert_eq!(done.photos_failed, HOSTILE.len() as u64, "{done:?}");

    let http = reqwest::Client::new();
    for (name, id) in &ids {
        let failed = photo(&mut api, id).await;
        assert_eq!(
            failed.failure_code, "IMAGE_UNDECODABLE",
            "{name}: {failed:?}"
        );
        // The studio may fetch what it uploaded: as opaque bytes.
        let response = http
            .get(format!("{}/api/v1/photos/{id}/image", cluster.gateway_http))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{name}");
        let headers = response.headers().clone();
        let header = |h: &str| {
            headers
                .get(h)
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default()
        };
        assert_eq!(header("content-type"), "application/octet-stream", "{name}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{name}");
        assert_eq!(
            header("content-security-policy"),
            "default-src 'none'; frame-ancestors 'none'; sandbox",
            "{name}"
        );
        assert_eq!(header("x-frame-options"), "DENY", "{name}");
        let body = response.bytes().await.unwrap();
        let original = HOSTILE.iter().find(|(n, _)| n == name).unwrap().1;
        assert_eq!(
            &body[..],
            original,
            "{name}: the bytes are kept as uploaded"
        );
        println!(
            "{name}: stored, IMAGE_UNDECODABLE, served as {}",
            header("content-type")
        );
    }

    // A guest reaches only indexed photos: the hostile ones are NOT_FOUND.
    let share = event.share_token.clone();
    for (name, id) in &ids {
        let response = http
            .get(format!(
                "{}/api/v1/guest/{share}/photos/{id}",
                cluster.gateway_http
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{name} reached a guest");
    }
    let response = http
        .get(format!(
            "{}/api/v1/guest/{share}/photos/{real_id}",
            cluster.gateway_http
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/jpeg");
}
