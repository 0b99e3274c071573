//! The indexer: a RabbitMQ consumer that turns `photo.uploaded` into faces
//! in the store (detector, then embedder, then search) and publishes
//! `photo.indexed` or `photo.failed`. It keeps nothing durable itself.

pub mod config;
pub mod consumer;
pub mod metrics;
pub mod pipeline;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use facepass_server::{health, GrpcServer, Shutdown};

pub use config::IndexerConfig;

/// The name the indexer reports its health under.
pub const SERVICE_NAME: &str = "facepass.indexer";

pub async fn run(
    config: IndexerConfig,
    server: GrpcServer,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    facepass_server::metrics::serve(&config.metrics, shutdown.clone()).await?;
    let pipeline = pipeline::Pipeline::new(
        config.detector.channel_named("detector")?,
        config.embedder.channel_named("embedder")?,
        config.search.channel_named("search")?,
        &config.internal_token,
        config.grpc.max_message_bytes,
    );
    let connected = Arc::new(AtomicBool::new(false));
    let (reporter, health_service) = health::not_serving_reporter(SERVICE_NAME).await;
    let flag = Arc::clone(&connected);
    tokio::spawn(health::watch(
        reporter,
        SERVICE_NAME,
        Duration::from_secs(2),
        shutdown.clone(),
        move || {
            let up = flag.load(Ordering::SeqCst);
            async move {
                if up {
                    Ok(())
                } else {
                    Err("not connected to rabbitmq".to_string())
                }
            }
        },
    ));
    let consuming = tokio::spawn(consumer::run(config, pipeline, shutdown.clone(), connected));
    server
        .serve(
            SERVICE_NAME,
            tonic::service::Routes::default(),
            health_service,
            shutdown,
        )
        .await?;
    consuming.await?;
    Ok(())
}
