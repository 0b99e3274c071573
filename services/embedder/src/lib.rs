//! The embedder service: turns aligned 112x112 crops into L2-normalised
//! ArcFace embeddings, batching faces of concurrent requests into one
//! inference. Stateless; the service Kubernetes scales out.

pub mod batcher;
pub mod config;
pub mod metrics;
pub mod model;
pub mod service;

use std::sync::Arc;
use std::time::Duration;

use facepass_proto::embedder::v1::embedder_service_server::EmbedderServiceServer;
use facepass_server::auth::{Caller, InternalAuth};
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
    let arcface = |threads: usize, spinning: bool| {
        facepass_inference::load_session_spinning(env, &check, threads, &config.ort, spinning).map(
            |session| model::ArcFace {
                session,
                fixed_batch: config.model.fixed_batch,
                dimension: config.model.dimension,
            },
        )
    };
    let bulk_threads = match config.batching.threads {
        0 => config.ort.intra_threads,
        n => n,
    };
    // Built on a lowered thread: their thread pools run lowered too.
    let models =
        facepass_inference::priority::on_lowered_thread(config.batching.bulk_nice, || {
            (0..config.batching.workers)
                .map(|_| arcface(bulk_threads, true))
                .collect::<Result<Vec<_>, _>>()
        })?;
    // Its threads sleep between selfies rather than spin beside the bulk.
    let interactive = if config.batching.interactive_worker {
        Some(arcface(config.ort.intra_threads, false)?)
    } else {
        None
    };
    facepass_inference::release_freed_memory();
    tracing::info!(
        model = %config.model.name,
        path = %config.model.path,
        workers = config.batching.workers,
        interactive_worker = config.batching.interactive_worker,
        max_batch = config.batching.max_batch,
        "recogniser model loaded"
    );
    Ok(batcher::Batcher::start_with(
        models,
        interactive,
        batcher::Settings {
            max_batch: config.batching.max_batch,
            max_wait: Duration::from_micros(config.batching.max_wait_us),
            queue_capacity: config.batching.queue_capacity,
            dimension: config.model.dimension,
            input_len: 3 * model::CROP * model::CROP,
            bulk_nice: config.batching.bulk_nice,
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
    config.model.fixed_batch = m.recogniser.batch;
    config.licence = m.licence_line();
    Ok(())
}

/// Who may call which RPC (the internal callers with their own tokens).
pub const POLICY: facepass_server::auth::Policy = &[
    ("Embed", &[Caller::Gateway, Caller::Indexer]),
    ("GetModelInfo", &[Caller::Gateway, Caller::Indexer]),
];

/// Loads the model, then serves until `shutdown` fires.
pub async fn run(
    mut config: EmbedderConfig,
    server: GrpcServer,
    shutdown: Shutdown,
    env_dylib: Option<String>,
) -> anyhow::Result<()> {
    facepass_server::metrics::serve(&config.metrics, shutdown.clone()).await?;
    apply_pack(&mut config)?;
    let load_config = config.clone();
    let batcher =
        tokio::task::spawn_blocking(move || start_batcher(&load_config, env_dylib.as_deref()))
            .await??;
    let batcher = Arc::new(batcher);
    // A model that loads but cannot infer must never report SERVING.
    let took = probe(&batcher, &config)
        .await
        .map_err(|why| anyhow::anyhow!("warm-up inference failed: {why}"))?;
    tracing::info!(ms = took.as_secs_f64() * 1e3, "warm-up inference done");
    let (reporter, health_service) = health::not_serving_reporter(SERVICE_NAME).await;
    // Then, every interval, one crop through the batcher proves the
    // inference threads still answer.
    let (probe_batcher, probe_config) = (batcher.clone(), config.clone());
    tokio::spawn(health::watch(
        reporter,
        SERVICE_NAME,
        Duration::from_secs(15),
        shutdown.clone(),
        move || {
            let (batcher, config) = (probe_batcher.clone(), probe_config.clone());
            async move { probe(&batcher, &config).await.map(|_| ()) }
        },
    ));
    let api = service::EmbedderApi::new(batcher, config.clone());
    let svc = EmbedderServiceServer::new(api)
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

/// Embeds one grey crop through the batcher (warm-up and health probe):
/// how long it took, or why it failed.
pub async fn probe(
    batcher: &batcher::Batcher,
    config: &EmbedderConfig,
) -> Result<Duration, String> {
    let started = std::time::Instant::now();
    let grey = vec![128u8; model::CROP * model::CROP * 3];
    let input = model::preprocess(&grey, config.model.input_mean, config.model.input_std);
    // Both lanes: the bulk workers' and the interactive thread's (when
    // there is one, its session's first inference is paid here, not by a
    // guest).
    for interactive in [false, true] {
        let embedded = tokio::time::timeout(
            Duration::from_secs(10),
            batcher.embed_with(vec![input.clone()], interactive),
        )
        .await
        .map_err(|_| "no embedding within 10 s".to_string())?
        .map_err(|e| e.message)?;
        match embedded.first() {
            Some(v) if v.len() == config.model.dimension && v.iter().all(|x| x.is_finite()) => {}
            Some(v) => {
                return Err(format!(
                    "the model made a {}-value embedding (expected {} finite values)",
                    v.len(),
                    config.model.dimension
                ))
            }
            None => return Err("the model made no embedding".into()),
        }
    }
    Ok(started.elapsed())
}
