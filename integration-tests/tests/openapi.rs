//! The REST contract (issue 12, item 8), on the real binaries: the OpenAPI
//! 3.1 document the gateway serves is valid (openapi-spec-validator), its
//! browsable page is served from the binary behind a same-origin-only
//! Content-Security-Policy, and schemathesis sends property-based requests
//! (valid and invalid) to every operation: no 5xx, and no status, content
//! type or body that contradicts the document.

use std::process::Command;
use std::time::Duration;

use facepass_integration_tests::gateway::{client, wait_indexed};
use facepass_integration_tests::{browser, repo_root, Cluster, ClusterOptions};
use facepass_synth::{event_photo, selfie};
use serde_json::{json, Value};

/// Schemathesis' examples per operation and its seed; the run prints what
/// it did. FACEPASS_ST_MAX_EXAMPLES and FACEPASS_ST_SEED override them.
const MAX_EXAMPLES: &str = "30";
const SEED: &str = "42";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_rest_api_keeps_its_openapi_contract() {
    // Schemathesis sends its requests as fast as it can, all from one
    // address and one key: with the rate limits on, most guest requests
    // would be 429 and never reach the logic behind them. The limits have
    // their own tests (load.rs, rest::tests).
    let off = |limit: &str| {
        (
            format!("FACEPASS_RATE_LIMITS__{limit}__PER_SECOND"),
            "0".to_string(),
        )
    };
    let cluster = Cluster::start_with(ClusterOptions {
        env: vec![off("API_KEY"), off("GUEST_LINK"), off("GUEST_ADDRESS")],
        ..ClusterOptions::default()
    })
    .await
    .expect("cluster");
    let (_studio, key) = cluster.create_studio("Contract").unwrap();
    let mut api = client(&cluster.gateway_grpc, Some(&key)).await.unwrap();
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", cluster.gateway_http);
    let work = tempfile_dir();

    // --- a seeded event the generated requests can reach ------------------
    let event: Value = http
        .post(url("/api/v1/events"))
        .bearer_auth(&key)
        .json(&json!({"name": "Contract"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let event_id = event["id"].as_str().unwrap().to_string();
    let mut images = Vec::new();
    let mut photo_id = String::new();
    for (i, who) in [&[1u8][..], &[1, 2]].iter().enumerate() {
        let jpeg = event_photo(60 + i as u64, 1200, 900, who, (110, 150)).jpeg(90);
        let photo: Value = http
            .post(url(&format!("/api/v1/events/{event_id}/photos")))
            .bearer_auth(&key)
            .body(jpeg.clone())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        photo_id = photo["id"].as_str().unwrap().to_string();
        let path = work.path().join(format!("photo{i}.jpg"));
        std::fs::write(&path, jpeg).unwrap();
        images.push(path);
    }
    for (name, bytes) in [
        ("selfie.jpg", selfie(5, 1).jpeg(90)),
        ("selfie.png", selfie(6, 2).png()),
    ] {
        let path = work.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        images.push(path);
    }
    wait_indexed(&mut api, &event_id, 2, Duration::from_secs(240))
        .await
        .unwrap();
    let faces: Value = http
        .get(url(&format!("/api/v1/photos/{photo_id}/faces")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let face_id = faces["faces"][0]["id"].as_str().unwrap().to_string();

    // The guest's event is another studio's: the key schemathesis holds
    // cannot reach it, so its link stays on whatever the run does.
    let (_other, other_key) = cluster.create_studio("Guests").unwrap();
    let mut other_api = client(&cluster.gateway_grpc, Some(&other_key))
        .await
        .unwrap();
    let guest_event: Value = http
        .post(url("/api/v1/events"))
        .bearer_auth(&other_key)
        .json(&json!({"name": "Guests"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = guest_event["share_token"].as_str().unwrap().to_string();
    let guest_photo: Value = http
        .post(url(&format!(
            "/api/v1/events/{}/photos",
            guest_event["id"].as_str().unwrap()
        )))
        .bearer_auth(&other_key)
        .body(std::fs::read(&images[1]).unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let guest_photo_id = guest_photo["id"].as_str().unwrap().to_string();
    wait_indexed(
        &mut other_api,
        guest_event["id"].as_str().unwrap(),
        1,
        Duration::from_secs(240),
    )
    .await
    .unwrap();
    let guest: Value = http
        .get(url(&format!("/api/v1/guest/{token}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let consent = guest["policy_version"].as_str().unwrap().to_string();

    // --- the document is valid OpenAPI 3.1 ---------------------------------
    let response = http.get(url("/api/v1/openapi.json")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let operations: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    let doc_path = work.path().join("openapi.json");
    std::fs::write(&doc_path, serde_json::to_vec(&doc).unwrap()).unwrap();
    let check = python(&[
        "-c",
        "import json, sys\n\
         from openapi_spec_validator import validate\n\
         from openapi_spec_validator.validation import OpenAPIV31SpecValidator\n\
         validate(json.load(open(sys.argv[1])), cls=OpenAPIV31SpecValidator)\n\
         print('valid OpenAPI 3.1')",
        doc_path.to_str().unwrap(),
    ]);
    assert!(check.0, "openapi-spec-validator: {}", check.1);
    // A broken document is caught: the validator is not a rubber stamp.
    let mut broken = doc.clone();
    broken["paths"]["/api/v1/events"]["get"]["responses"]["200"]["content"]["application/json"]
        ["schema"] = json!({"$ref": "#/components/schemas/NoSuchThing"});
    broken["info"] = json!({"title": 1});
    std::fs::write(&doc_path, serde_json::to_vec(&broken).unwrap()).unwrap();
    let check = python(&[
        "-c",
        "import json, sys\n\
         from openapi_spec_validator import validate\n\
         from openapi_spec_validator.validation import OpenAPIV31SpecValidator\n\
         validate(json.load(open(sys.argv[1])), cls=OpenAPIV31SpecValidator)",
        doc_path.to_str().unwrap(),
    ]);
    assert!(!check.0, "a broken document passed validation");

    // --- the browsable page ----------------------------------------------------
    let page = http.get(url("/api/v1/docs/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    assert!(page.text().await.unwrap().contains("swagger-ui"));
    // In a real browser it renders every operation and asks no other host
    // for anything (integration-tests/browser/api_docs.mjs).
    let shot = browser::screenshots().join("api-docs.png");
    let seen = browser::run(
        "api_docs.mjs",
        &[cluster.gateway_http.as_ref(), shot.as_os_str()],
        String::new,
    );
    println!(
        "API reference in Chromium: {seen} (screenshot {})",
        shot.display()
    );
    assert_eq!(
        seen["operations"].as_u64(),
        Some(operations as u64),
        "{seen}"
    );
    assert_eq!(seen["outside"], json!([]), "{seen}");
    assert_eq!(seen["errors"], json!([]), "{seen}");

    // --- schemathesis against the live gateway --------------------------------
    let junit = work.path().join("junit.xml");
    let images: Vec<&str> = images.iter().map(|p| p.to_str().unwrap()).collect();
    let st = repo_root().join(".venv/bin/st");
    let started = std::time::Instant::now();
    let out = Command::new(&st)
        .current_dir(work.path())
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .env("PYTHONPATH", repo_root().join("integration-tests/contract"))
        .env("FACEPASS_ST_IMAGES", images.join(":"))
        .env("FACEPASS_ST_EVENT_ID", &event_id)
        .env("FACEPASS_ST_PHOTO_ID", &photo_id)
        .env("FACEPASS_ST_FACE_ID", &face_id)
        .env("FACEPASS_ST_TOKEN", &token)
        .env("FACEPASS_ST_GUEST_PHOTO_ID", &guest_photo_id)
        .env("FACEPASS_ST_CONSENT", &consent)
        .env("NO_COLOR", "1")
        .args([
            "run",
            &url("/api/v1/openapi.json"),
            "--url",
            &cluster.gateway_http,
            "-H",
            &format!("Authorization: Bearer {key}"),
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_schema_conformance,negative_data_rejection",
            "--max-examples",
            &std::env::var("FACEPASS_ST_MAX_EXAMPLES").unwrap_or(MAX_EXAMPLES.into()),
            "--seed",
            &std::env::var("FACEPASS_ST_SEED").unwrap_or(SEED.into()),
            // One worker: CPython 3.11 before 3.11.8 can fail parsing ASTs in two
            // threads at once (hypothesis reads lambdas' source).
            "--workers",
            "1",
            "--request-timeout",
            "20",
            // An endless Server-Sent Events stream: tested in uploads.rs.
            "--exclude-operation-id",
            "watch_event",
            "--report-junit-path",
            junit.to_str().unwrap(),
        ])
        // Every request and answer, to look at: FACEPASS_ST_HAR=<file>.
        .args(match std::env::var("FACEPASS_ST_HAR") {
            Ok(path) => vec![
                "--report".to_string(),
                "junit,har".into(),
                "--report-har-path".into(),
                path,
            ],
            Err(_) => vec!["--report".to_string(), "junit".into()],
        })
        .output()
        .expect("run schemathesis (.venv/bin/st; scripts/lib/deps.sh installs it)");
    // Lines clipped: a Python traceback can quote a whole module.
    let log: String = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
    .lines()
    .map(|l| format!("{}\n", l.chars().take(400).collect::<String>()))
    .collect();
    let report = std::fs::read_to_string(&junit).unwrap_or_default();
    let (failures, errors) = junit_failures(&report);
    let tested = figure(&log, "Tested:").unwrap_or(0);
    let (generated, passed) = cases(&log);
    println!(
        "schemathesis: {operations} operations in the document, {tested} tested with \
         {generated} generated requests, {passed} passed, {failures} failures, {errors} \
         errors in {:.0} s\n{}",
        started.elapsed().as_secs_f64(),
        summary(&log)
    );
    assert!(out.status.success(), "schemathesis failed:\n{log}");
    assert_eq!((failures, errors), (0, 0), "{log}");
    // Every operation but the watch stream was exercised, and passed.
    assert_eq!(tested, operations - 1, "{log}");
    assert!(generated >= 10 * tested, "{log}");
    assert_eq!(generated, passed, "{log}");
    // The generated requests reached real objects: guests searched the
    // seeded event with its share link and consent (hooks.py).
    let consents: u64 = cluster
        .db
        .query_text("SELECT count(*) FROM catalog.consents")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    println!("guest searches with consent during the run: {consents}");
    assert!(
        consents > 0,
        "no generated guest search reached the seeded event"
    );
}

fn tempfile_dir() -> facepass_integration_tests::tempfile_dir::Dir {
    facepass_integration_tests::tempfile_dir::Dir::new("openapi").unwrap()
}

fn python(args: &[&str]) -> (bool, String) {
    let out = Command::new(repo_root().join(".venv/bin/python"))
        .args(args)
        .output()
        .expect("the venv's python (scripts/lib/deps.sh)");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// (failures, errors) of a JUnit report.
fn junit_failures(report: &str) -> (usize, usize) {
    (
        report.matches("<failure").count(),
        report.matches("<error").count(),
    )
}

/// The number after `label` on a line of the summary (`Tested: 27`).
fn figure(log: &str, label: &str) -> Option<usize> {
    log.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix(label))
        .and_then(|rest| rest.trim().parse().ok())
}

/// (generated, passed) from `1398 generated, 1398 passed`.
fn cases(log: &str) -> (usize, usize) {
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains(" generated,"))
        .unwrap_or_default();
    let number_before = |word: &str| {
        line.split(',')
            .find(|part| part.trim().ends_with(word))
            .and_then(|part| part.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (number_before("generated"), number_before("passed"))
}

/// The summary schemathesis prints at the end.
fn summary(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    let start = lines
        .iter()
        .rposition(|l| l.contains("SUMMARY"))
        .unwrap_or(lines.len().saturating_sub(30));
    lines[start..].join("\n")
}
