//! Honest health, against the real binaries: each service reports SERVING
//! only once what it needs answers (a warm-up inference on the loaded model
//! for the detector and the embedder; the catalog database and the broker for
//! the gateway), goes NOT_SERVING when a dependency stops, and comes back
//! when it returns (search: its database; the indexer: its broker). The gateway's REST `/readyz` follows the same verdict;
//! `/livez` only says the process answers.
//!
//! Dependencies are cut with a TCP forwarder (`Switch`), so the PostgreSQL
//! and RabbitMQ servers other tests share keep running.

use std::time::{Duration, Instant};

use facepass_integration_tests::switch::Switch;
use facepass_integration_tests::{
    amqp_url, fixture_models, free_port, ort_dylib, pg_base, tempfile_dir, wait_serving, Service,
    TestDatabase,
};
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// The overall status grpc.health.v1 reports, or None when it does not answer.
async fn status(url: &str) -> Option<i32> {
    let channel = Channel::from_shared(url.to_string())
        .ok()?
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await
        .ok()?;
    HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .ok()
        .map(|r| r.get_ref().status)
}

async fn wait_not_serving(url: &str, timeout: Duration, service: &Service) {
    let deadline = Instant::now() + timeout;
    loop {
        if status(url).await == Some(ServingStatus::NotServing as i32) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} still not NOT_SERVING after {timeout:?}\n{}",
            service.name,
            service.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn serving(url: &str, timeout: Duration, service: &Service) {
    if let Err(e) = wait_serving(url, timeout).await {
        panic!("{} not SERVING: {e}\n{}", service.name, service.log_tail());
    }
}

/// `host:port` of a URL such as `postgres://user@host:port/db`.
fn host_port(url: &str) -> String {
    let after = url.split("://").nth(1).unwrap_or(url);
    let after = after.rsplit('@').next().unwrap_or(after);
    after.split('/').next().unwrap_or(after).to_string()
}

/// The same URL through `port` on 127.0.0.1.
fn through(url: &str, port: u16) -> String {
    url.replacen(&host_port(url), &format!("127.0.0.1:{port}"), 1)
}

async fn get(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.expect("http answer");
    let code = response.status().as_u16();
    (code, response.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_readiness_follows_its_database_and_broker() {
    let dir = tempfile_dir::Dir::new("facepass-health").unwrap();
    let db = TestDatabase::create("facepass_health").await.unwrap();
    let pg = Switch::start(&host_port(&pg_base())).await.unwrap();
    let amqp = Switch::start(&host_port(&amqp_url())).await.unwrap();
    let (grpc, http) = (free_port(), free_port());
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let env = vec![
        ("FACEPASS_DATABASE_URL", through(&db.url, pg.port)),
        ("FACEPASS_AMQP__URL", through(&amqp_url(), amqp.port)),
        (
            "FACEPASS_AMQP__NAMESPACE",
            format!("health-{}", uuid::Uuid::new_v4().simple()),
        ),
        ("FACEPASS_INTERNAL_TOKEN", "health-token".to_string()),
        (
            "FACEPASS_SHARE_LINK_KEY",
            "health-share-link-key".to_string(),
        ),
        (
            "FACEPASS_STORAGE_ROOT",
            dir.path().join("objects").display().to_string(),
        ),
        ("FACEPASS_DETECTOR__URL", nowhere.clone()),
        ("FACEPASS_EMBEDDER__URL", nowhere.clone()),
        ("FACEPASS_SEARCH__URL", nowhere),
        ("FACEPASS_GRPC__LISTEN", format!("127.0.0.1:{grpc}")),
        ("FACEPASS_HTTP_LISTEN", format!("127.0.0.1:{http}")),
        ("FACEPASS_LOG__FILTER", "info".to_string()),
    ];
    let env = env.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    let gateway = Service::launch(
        "gateway",
        "facepass-gateway",
        dir.path().join("gateway.log"),
        env,
    )
    .unwrap();
    let url = format!("http://127.0.0.1:{grpc}");
    let rest = format!("http://127.0.0.1:{http}");
    let limit = Duration::from_secs(60);

    serving(&url, limit, &gateway).await;
    assert_eq!(get(&format!("{rest}/readyz")).await.0, 200);

    for (what, switch) in [("database", &pg), ("broker", &amqp)] {
        switch.cut();
        wait_not_serving(&url, limit, &gateway).await;
        let (code, body) = get(&format!("{rest}/readyz")).await;
        assert_eq!(code, 503, "{what} down: {body}");
        let body: serde_json::Value = serde_json::from_str(&body).expect("JSON error body");
        assert_eq!(body["error"]["code"], "UNAVAILABLE", "{body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.starts_with("not ready"), "{message}");
        assert!(
            !message.contains("127.0.0.1"),
            "no hosts in probes: {message}"
        );
        // Liveness does not depend on anything.
        assert_eq!(get(&format!("{rest}/livez")).await.0, 200, "{what} down");

        switch.restore();
        serving(&url, limit, &gateway).await;
        assert_eq!(get(&format!("{rest}/readyz")).await.0, 200, "{what} back");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detector_serves_after_warm_up_and_follows_its_photo_storage() {
    let dir = tempfile_dir::Dir::new("facepass-health").unwrap();
    let root = dir.path().join("objects");
    std::fs::create_dir_all(&root).unwrap();
    let port = free_port();
    let env = vec![
        ("ORT_DYLIB_PATH".to_string(), ort_dylib().unwrap()),
        (
            "FACEPASS_MODEL__PACK".to_string(),
            fixture_models().unwrap().display().to_string(),
        ),
        (
            "FACEPASS_STORAGE_ROOT".to_string(),
            root.display().to_string(),
        ),
        (
            "FACEPASS_GRPC__LISTEN".to_string(),
            format!("127.0.0.1:{port}"),
        ),
        ("FACEPASS_LOG__FILTER".to_string(), "info".to_string()),
    ];
    let detector = Service::launch(
        "detector",
        "facepass-detector",
        dir.path().join("detector.log"),
        env,
    )
    .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let limit = Duration::from_secs(60);
    serving(&url, limit, &detector).await;
    let log = std::fs::read_to_string(&detector.log).unwrap();
    let warm = log
        .find("warm-up inference done")
        .expect("a warm-up inference");
    let serves = log
        .find("dependencies answer: serving")
        .expect("a serving line");
    assert!(warm < serves, "warm-up before SERVING:\n{log}");

    std::fs::rename(&root, dir.path().join("gone")).unwrap();
    wait_not_serving(&url, limit, &detector).await;
    std::fs::rename(dir.path().join("gone"), &root).unwrap();
    serving(&url, limit, &detector).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedder_serves_only_after_a_warm_up_inference() {
    let dir = tempfile_dir::Dir::new("facepass-health").unwrap();
    let port = free_port();
    let env = vec![
        ("ORT_DYLIB_PATH".to_string(), ort_dylib().unwrap()),
        (
            "FACEPASS_MODEL__PACK".to_string(),
            fixture_models().unwrap().display().to_string(),
        ),
        (
            "FACEPASS_GRPC__LISTEN".to_string(),
            format!("127.0.0.1:{port}"),
        ),
        ("FACEPASS_LOG__FILTER".to_string(), "info".to_string()),
    ];
    let embedder = Service::launch(
        "embedder",
        "facepass-embedder",
        dir.path().join("embedder.log"),
        env,
    )
    .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    serving(&url, Duration::from_secs(60), &embedder).await;
    let log = std::fs::read_to_string(&embedder.log).unwrap();
    let warm = log
        .find("warm-up inference done")
        .expect("a warm-up inference");
    let serves = log
        .find("dependencies answer: serving")
        .expect("a serving line");
    assert!(warm < serves, "warm-up before SERVING:\n{log}");
}

/// A service whose readiness follows one dependency behind `switch`: SERVING,
/// NOT_SERVING while the dependency is cut (gRPC health and the metrics
/// port's plain-HTTP `/readyz`, the probe used with TLS), SERVING when it is
/// back; `/livez` answers throughout.
async fn follows(service: &Service, grpc: u16, metrics: u16, switch: &Switch, what: &str) {
    let url = format!("http://127.0.0.1:{grpc}");
    let probe = format!("http://127.0.0.1:{metrics}");
    let limit = Duration::from_secs(60);
    serving(&url, limit, service).await;
    assert_eq!(
        get(&format!("{probe}/readyz")).await,
        (200, "ready\n".into())
    );

    switch.cut();
    wait_not_serving(&url, limit, service).await;
    let (code, body) = get(&format!("{probe}/readyz")).await;
    assert_eq!(code, 503, "{} with its {what} down: {body}", service.name);
    assert!(body.starts_with("not ready"), "{body}");
    assert_eq!(get(&format!("{probe}/livez")).await.0, 200, "{what} down");

    switch.restore();
    serving(&url, limit, service).await;
    assert_eq!(get(&format!("{probe}/readyz")).await.0, 200, "{what} back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_readiness_follows_its_database() {
    let dir = tempfile_dir::Dir::new("facepass-health").unwrap();
    let db = TestDatabase::create("facepass_health").await.unwrap();
    let pg = Switch::start(&host_port(&pg_base())).await.unwrap();
    let (grpc, metrics) = (free_port(), free_port());
    let env = [
        ("FACEPASS_DATABASE_URL", through(&db.url, pg.port)),
        ("FACEPASS_GRPC__LISTEN", format!("127.0.0.1:{grpc}")),
        ("FACEPASS_METRICS__LISTEN", format!("127.0.0.1:{metrics}")),
        (
            "FACEPASS_MODEL__PACK",
            fixture_models().unwrap().display().to_string(),
        ),
        ("FACEPASS_LOG__FILTER", "info".to_string()),
    ];
    let env = env.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    let search = Service::launch(
        "search",
        "facepass-search",
        dir.path().join("search.log"),
        env,
    )
    .unwrap();
    follows(&search, grpc, metrics, &pg, "database").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexer_readiness_follows_its_broker() {
    let dir = tempfile_dir::Dir::new("facepass-health").unwrap();
    let amqp = Switch::start(&host_port(&amqp_url())).await.unwrap();
    let (grpc, metrics) = (free_port(), free_port());
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let env = [
        ("FACEPASS_AMQP__URL", through(&amqp_url(), amqp.port)),
        (
            "FACEPASS_AMQP__NAMESPACE",
            format!("health-{}", uuid::Uuid::new_v4().simple()),
        ),
        ("FACEPASS_DETECTOR__URL", nowhere.clone()),
        ("FACEPASS_EMBEDDER__URL", nowhere.clone()),
        ("FACEPASS_SEARCH__URL", nowhere),
        ("FACEPASS_GRPC__LISTEN", format!("127.0.0.1:{grpc}")),
        ("FACEPASS_METRICS__LISTEN", format!("127.0.0.1:{metrics}")),
        ("FACEPASS_LOG__FILTER", "info".to_string()),
    ];
    let env = env.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    let indexer = Service::launch(
        "indexer",
        "facepass-indexer",
        dir.path().join("indexer.log"),
        env,
    )
    .unwrap();
    follows(&indexer, grpc, metrics, &amqp, "broker").await;
}
