//! The search service: owns the face store (PostgreSQL + pgvector, schema
//! `faces`) and answers event-scoped similarity searches over gRPC
//! (`facepass.search.v1`). Nothing else reads or writes the face tables.

pub mod config;
pub mod metrics;
pub mod rank;
pub mod service;
pub mod store;

use std::time::Duration;

use diesel_migrations::{embed_migrations, EmbeddedMigrations};
use facepass_proto::search::v1::search_service_server::SearchServiceServer;
use facepass_server::auth::{Caller, InternalAuth};
use facepass_server::{health, GrpcServer, Shutdown};

pub use config::SearchConfig;

/// migrations/faces, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/faces");

pub const SERVICE_NAME: &str = "facepass.search.v1.SearchService";

/// Who may call which RPC (the internal callers with their own tokens):
/// the indexer writes a photo's faces; the gateway does everything else
/// (guest searches, deletions, "forget me", counts, failures it records).
pub const POLICY: facepass_server::auth::Policy = &[
    ("UpsertPhotoFaces", &[Caller::Indexer]),
    ("BulkUpsertPhotoFaces", &[Caller::Indexer]),
    ("MarkPhotoFailed", &[Caller::Gateway]),
    ("SearchEvent", &[Caller::Gateway]),
    ("DeletePhotoFaces", &[Caller::Gateway]),
    ("DeleteFaces", &[Caller::Gateway]),
    ("DeleteEventFaces", &[Caller::Gateway]),
    ("ForgetFaces", &[Caller::Gateway]),
    ("GetEventStats", &[Caller::Gateway, Caller::Indexer]),
    ("ListPhotoFaces", &[Caller::Gateway]),
];

/// Applies the face store's migrations.
pub async fn migrate(config: &SearchConfig) -> anyhow::Result<Vec<String>> {
    facepass_db::migrate(&config.database_url, MIGRATIONS).await
}

/// Runs the service on an already bound server until `shutdown` fires.
pub async fn run(
    config: SearchConfig,
    server: GrpcServer,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    facepass_server::metrics::serve(&config.metrics, shutdown.clone()).await?;
    if config.migrate_on_start {
        let applied = migrate(&config).await?;
        tracing::info!(applied = ?applied, "face store migrations applied");
    }
    let pack = service::PackInfo::from_config(&config)?;
    tracing::info!(model = %pack.model, match_similarity = pack.match_similarity,
        possible_similarity = pack.possible_similarity, "face store model pack");
    let pool = facepass_db::pool(&config.database_url, config.pool_size)?;
    let store = store::FaceStore::new(pool.clone(), config.store.tuning());
    if config.store.index_check_secs > 0 {
        tokio::spawn(build_indexes(
            store.clone(),
            Duration::from_secs(config.store.index_check_secs),
            shutdown.clone(),
        ));
    }

    let (reporter, health_service) = health::not_serving_reporter(SERVICE_NAME).await;
    tokio::spawn(health::watch(
        reporter,
        SERVICE_NAME,
        Duration::from_secs(5),
        shutdown.clone(),
        move || {
            let pool = pool.clone();
            async move { facepass_db::ping(&pool, Duration::from_secs(2)).await }
        },
    ));

    let api = service::SearchApi::new(store, config.clone(), pack);
    let svc = SearchServiceServer::new(api)
        .max_decoding_message_size(config.grpc.max_message_bytes)
        .max_encoding_message_size(config.grpc.max_message_bytes);
    let svc =
        InternalAuth::new(&config.internal_token, &config.internal_callers, POLICY).layer(svc);
    let routes = tonic::service::Routes::new(svc);
    server
        .serve(SERVICE_NAME, routes, health_service, shutdown)
        .await
}

/// Gives events that outgrew exact search their HNSW index, one at a time,
/// in the background (CREATE INDEX CONCURRENTLY: searches and writes go on;
/// the event is searched exactly until the index is ready).
async fn build_indexes(store: store::FaceStore, every: Duration, shutdown: Shutdown) {
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let events = match store.events_needing_index().await {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!(error = %e, "could not list events needing an index");
                continue;
            }
        };
        for event_id in events {
            let started = std::time::Instant::now();
            tracing::info!(%event_id, "building the event's HNSW index");
            match store.build_ann_index(event_id).await {
                Ok(true) => {
                    tracing::info!(%event_id, secs = started.elapsed().as_secs_f64(), "HNSW index ready")
                }
                Ok(false) => tracing::debug!(%event_id, "another replica is building this index"),
                Err(e) => {
                    tracing::warn!(%event_id, error = %e, "HNSW index build failed; the event stays on exact search")
                }
            }
            if shutdown.is_triggered() {
                return;
            }
        }
    }
}
