//! The detector service: decodes an image (bytes, or an object-store key it
//! reads itself), finds faces with SCRFD, judges their quality and returns
//! 112x112 crops aligned to the ArcFace template. Stateless.

pub mod config;
pub mod decode;
pub mod engine;
pub mod heif;
pub mod metadata;
pub mod metrics;
pub mod preview;
pub mod scrfd;
pub mod service;
pub mod turbo;
pub mod vision;

use std::sync::Arc;
use std::time::Duration;

use facepass_proto::detector::v1::detector_service_server::DetectorServiceServer;
use facepass_server::auth::{Caller, InternalAuth};
use facepass_server::{health, storage, GrpcServer, Shutdown};
use object_store::ObjectStore;

pub use config::DetectorConfig;

pub const SERVICE_NAME: &str = "facepass.detector.v1.DetectorService";

/// The object store photos are read from (a folder here; tests and the
/// benchmark pass a path).
pub fn object_store(root: &str) -> anyhow::Result<Arc<dyn ObjectStore>> {
    Ok(storage::open(root, &storage::S3Config::default(), false)?.store)
}

/// Who may call which RPC (the internal callers with their own tokens).
pub const POLICY: facepass_server::auth::Policy =
    &[("Detect", &[Caller::Gateway, Caller::Indexer])];

/// Loads the model, then serves until `shutdown` fires.
pub async fn run(
    config: DetectorConfig,
    server: GrpcServer,
    shutdown: Shutdown,
    env_dylib: Option<String>,
) -> anyhow::Result<()> {
    facepass_server::metrics::serve(&config.metrics, shutdown.clone()).await?;
    let load_config = config.clone();
    let detector = tokio::task::spawn_blocking(move || {
        engine::FaceDetector::load(&load_config, env_dylib.as_deref())
    })
    .await??;
    let detector = Arc::new(detector);
    // A model that loads but cannot infer must never report SERVING.
    let took = warm_up(&detector)
        .await
        .map_err(|why| anyhow::anyhow!("warm-up inference failed: {why}"))?;
    tracing::info!(ms = took.as_secs_f64() * 1e3, "warm-up inference done");
    match heif::status() {
        Ok(version) => tracing::info!(libheif = %version, "HEIC/HEIF and AVIF photos accepted"),
        Err(why) => tracing::warn!(
            %why,
            "HEIC/HEIF and AVIF photos will be refused with IMAGE_UNDECODABLE: install libheif1"
        ),
    }
    match turbo::status() {
        Ok(()) => tracing::info!("reduced-scale JPEG decoding by libjpeg-turbo"),
        Err(why) => tracing::warn!(
            %why,
            "reduced-scale JPEG decoding falls back to jpeg-decoder, about half as fast: install libturbojpeg0"
        ),
    }
    let storage = Arc::new(storage::open(&config.storage_root, &config.s3, false)?);
    match storage::probe(&storage).await {
        Ok(()) => tracing::info!(storage = %storage.location.describe(), "photo storage reachable"),
        Err(why) => tracing::warn!(%why, "photo storage not reachable yet"),
    }
    let store = storage.store.clone();

    let (reporter, health_service) = health::not_serving_reporter(SERVICE_NAME).await;
    tokio::spawn(health::watch(
        reporter,
        SERVICE_NAME,
        Duration::from_secs(5),
        shutdown.clone(),
        // A missing storage folder is a broken mount: not serving. An S3
        // outage is not a reason to stop selfie detection (selfies never
        // touch the store), so S3 reachability is only logged and counted;
        // photos fail with STORAGE_UNAVAILABLE and the indexer retries them.
        move || {
            let storage = storage.clone();
            async move {
                match storage.location {
                    storage::Location::Local(_) => storage::probe(&storage).await,
                    storage::Location::S3 { .. } => Ok(()),
                }
            }
        },
    ));

    let api = service::DetectorApi::new(detector, store, config.limits.max_bytes);
    let svc = DetectorServiceServer::new(api)
        .max_decoding_message_size(config.grpc.max_message_bytes)
        .max_encoding_message_size(config.grpc.max_message_bytes);
    let svc =
        InternalAuth::new(&config.internal_token, &config.internal_callers, POLICY).layer(svc);
    server
        .serve(
            SERVICE_NAME,
            tonic::service::Routes::new(svc),
            health_service,
            shutdown,
        )
        .await
}

/// Decodes and detects on a small grey image (the warm-up before SERVING):
/// how long it took, or why it failed.
pub async fn warm_up(detector: &Arc<engine::FaceDetector>) -> Result<Duration, String> {
    let started = std::time::Instant::now();
    let mut png = Vec::new();
    image::RgbImage::from_pixel(160, 120, image::Rgb([128, 128, 128]))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| format!("cannot make the warm-up image: {e}"))?;
    let png = bytes::Bytes::from(png);
    // A photo's path and a selfie's (its own sessions, when there are any:
    // their first inference is paid here, not by a guest).
    for mode in [engine::Mode::All, engine::Mode::Selfie] {
        detector
            .detect(png.clone(), mode)
            .await
            .map_err(|e| e.message)?;
    }
    Ok(started.elapsed())
}
