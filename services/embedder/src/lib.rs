//! The embedder service: turns aligned 112x112 crops into L2-normalised
//! ArcFace embeddings, batching faces of concurrent requests into one
//! inference. Stateless; the service Kubernetes scales out.

pub mod batcher;
pub mod config;
pub mod model;
pub mod service;

use std::sync::Arc;
use std::time::Duration;

use facepass_proto::embedder::v1::embedder_service_server::EmbedderServiceServer;
use facepass_server::auth::RequireToken;
use facepass_server::{health, GrpcServer, Shutdown};

pub use config::EmbedderConfig;

pub const SERVICE_NAME: &str = "facepass.embedder.v1.EmbedderService";

/// Loads one session per worker and starts the batcher.
pub fn start_batcher(
    config: &EmbedderConfig,
    env_dylib: Option<&str>,
) -> Result<batcher::Batcher, facepass_inference::ModelError> {
    let env = facepass_inference::environment(&config.ort, env_dylib)?;
    let check = model::model_check(config);
    let models = (0..config.batching.workers)
        .map(|_| {
            facepass_inference::load_session(
                env,
                &check,
                config.ort.intra_threads,
                &config.ort.provider,
            )
            .map(|session| model::ArcFace { session })
        })
        .collect::<Result<Vec<_>, _>>()?;
    tracing::info!(
        model = %config.model.name,
        path = %config.model.path,
        workers = config.batching.workers,
        max_batch = config.batching.max_batch,
        "recogniser model loaded"
    );
    Ok(batcher::Batcher::start(
        models,
        batcher::Settings {
            max_batch: config.batching.max_batch,
            max_wait: Duration::from_micros(config.batching.max_wait_us),
            queue_capacity: config.batching.queue_capacity,
            dimension: config.model.dimension,
            input_len: 3 * model::CROP * model::CROP,
        },
    ))
}

/// Replaces the model settings with those of `model.pack`, when one is set.
pub fn apply_pack(config: &mut EmbedderConfig) -> Result<(), facepass_inference::ModelError> {
    if config.model.pack.is_empty() {
        return Ok(());
    }
    let pack = facepass_inference::pack::Pack::open(std::path::Path::new(&config.model.pack))?;
    pack.verify()?;
    let m = &pack.manifest;
    tracing::info!(licence = %m.licence.name, commercial_use = m.licence.commercial_use, "{}", m.licence_line());
    // The pack id the face store checks: embeddings of another pack (or
    // another version of one) are never compared with these.
    config.model.name = format!("{}@{}", m.name, m.version);
    config.model.path = pack.recogniser_path().display().to_string();
    config.model.sha256 = String::new(); // verified just above
    config.model.dimension = m.recogniser.dimension;
    config.model.input_mean = m.recogniser.input_mean;
    config.model.input_std = m.recogniser.input_std;
    config.licence = m.licence_line();
    Ok(())
}

/// Loads the model, then serves until `shutdown` fires.
pub async fn run(
    mut config: EmbedderConfig,
    server: GrpcServer,
    shutdown: Shutdown,
    env_dylib: Option<String>,
) -> anyhow::Result<()> {
    apply_pack(&mut config)?;
    let load_config = config.clone();
    let batcher =
        tokio::task::spawn_blocking(move || start_batcher(&load_config, env_dylib.as_deref()))
            .await??;
    let (reporter, health_service) = health::not_serving_reporter(SERVICE_NAME).await;
    // The model is loaded and the inference threads run: nothing else to wait for.
    tokio::spawn(health::watch(
        reporter,
        SERVICE_NAME,
        Duration::from_secs(30),
        shutdown.clone(),
        || async { Ok(()) },
    ));
    let api = service::EmbedderApi::new(Arc::new(batcher), config.clone());
    let svc = EmbedderServiceServer::new(api)
        .max_decoding_message_size(config.grpc.max_message_bytes)
        .max_encoding_message_size(config.grpc.max_message_bytes);
    let svc = tonic::service::interceptor::InterceptedService::new(
        svc,
        RequireToken::new(&config.internal_token),
    );
    server
        .serve(
            SERVICE_NAME,
            tonic::service::Routes::new(svc),
            health_service,
            shutdown,
        )
        .await
}
