//! The gateway: owns the catalog (studios, API keys, events, photos, outbox)
//! in PostgreSQL schema `catalog`; serves the public gRPC API (`facepass.v1`)
//! for Pixora and REST + the web UI for browsers; writes photos and their
//! `photo.uploaded` events in one transaction, relays the outbox to
//! RabbitMQ, and applies `photo.indexed` / `photo.failed` to the catalog.

pub mod admin;
pub mod api;
pub mod auth;
pub mod branding;
pub mod catalog;
pub mod config;
pub mod domain;
pub mod faces;
pub mod https;
pub mod keys;
pub mod limits;
pub mod outcomes;
pub mod privacy;
pub mod relay;
pub mod rest;
pub mod schema;
pub mod sessions;
pub mod share_tokens;
pub mod shed;
pub mod sweeper;
pub mod uploads;
pub mod watch;
pub mod webhooks;
pub mod zip;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use diesel_migrations::{embed_migrations, EmbeddedMigrations};
use facepass_proto::v1::face_pass_service_server::FacePassServiceServer;
use facepass_server::{health, storage, GrpcServer, Shutdown};
use tokio::sync::Notify;

pub use config::GatewayConfig;

/// migrations/catalog, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/catalog");

pub const SERVICE_NAME: &str = "facepass.v1.FacePassService";

pub async fn migrate(config: &GatewayConfig) -> anyhow::Result<Vec<String>> {
    facepass_db::migrate(&config.database_url, MIGRATIONS).await
}

/// Creates a studio and prints nothing: returns (studio id, API key). The
/// bootstrap path (straight to the database, no admin token needed); the
/// admin API (`facepass admin studio create`) does the same over gRPC.
pub async fn create_studio(
    config: &GatewayConfig,
    name: &str,
) -> anyhow::Result<(uuid::Uuid, String)> {
    migrate(config).await?;
    let catalog = catalog::Catalog::new(facepass_db::pool(&config.database_url, 1)?);
    let (studio, _key, secret) = catalog.create_studio(name).await?;
    Ok((studio.id, secret))
}

/// Serves gRPC and HTTP and runs the relay and the outcome consumer until
/// `shutdown` fires.
pub async fn run(
    config: GatewayConfig,
    server: GrpcServer,
    http: tokio::net::TcpListener,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    if let Some(problem) = share_tokens::problem(&config.share_link_key) {
        anyhow::bail!("invalid configuration: {problem}");
    }
    share_tokens::set_keys(&config.share_link_key);
    facepass_server::metrics::serve(&config.metrics, shutdown.clone()).await?;
    if config.migrate_on_start {
        let applied = migrate(&config).await?;
        tracing::info!(applied = ?applied, "catalog migrations applied");
    }
    let storage = storage::open(&config.storage_root, &config.s3, true)?;
    match storage::probe(&storage).await {
        Ok(()) => tracing::info!(storage = %storage.location.describe(), "photo storage reachable"),
        Err(why) => tracing::warn!(%why, "photo storage not reachable yet"),
    }
    let pool = facepass_db::pool(&config.database_url, config.pool_size)?;
    let gateway = Arc::new(domain::Gateway {
        catalog: catalog::Catalog::new(pool.clone()),
        // In a folder, deleting an object also removes the folders it leaves
        // empty (an event's folder after DeleteEvent), up to the storage root.
        store: storage.store,
        peers: domain::Peers::connect(&config)?,
        config: config.clone(),
        outbox_ready: Arc::new(Notify::new()),
        readiness: health::Readiness::default(),
        selfie_memory: domain::selfie_memory(&config),
        selfie_queue: domain::selfie_queue(&config),
        rate: limits::RateLimiters::new(&config.rate_limits),
    });

    let relay_up = Arc::new(AtomicBool::new(false));
    let outcomes_up = Arc::new(AtomicBool::new(false));
    let relay = tokio::spawn(relay::run(
        gateway.clone(),
        shutdown.clone(),
        relay_up.clone(),
    ));
    tokio::spawn(webhooks::run(gateway.clone(), shutdown.clone()));
    tokio::spawn(sweeper::run(gateway.clone(), shutdown.clone()));
    tokio::spawn(privacy::run_retention(
        gateway.clone(),
        Duration::from_millis(config.retention_poll_ms),
        shutdown.clone(),
    ));
    let outcomes = tokio::spawn(outcomes::run(
        gateway.clone(),
        shutdown.clone(),
        outcomes_up.clone(),
    ));

    let (reporter, health_service) = health::not_serving_reporter(SERVICE_NAME).await;
    tokio::spawn(health::watch_ready(
        reporter,
        SERVICE_NAME,
        Duration::from_secs(2),
        shutdown.clone(),
        gateway.readiness.clone(),
        move || {
            let pool = pool.clone();
            let broker = relay_up.load(Ordering::SeqCst) && outcomes_up.load(Ordering::SeqCst);
            async move {
                facepass_db::ping(&pool, Duration::from_secs(2)).await?;
                if broker {
                    Ok(())
                } else {
                    Err("not connected to rabbitmq".to_string())
                }
            }
        },
    ));

    let http_addr = http.local_addr()?;
    let app = rest::router(gateway.clone());
    let http_shutdown = shutdown.clone();
    let http_tls = config.http_tls.rustls()?;
    let http_server = tokio::spawn(async move {
        // The peer's address, for the guests' rate limit.
        let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
        match http_tls {
            None => {
                tracing::info!(addr = %http_addr, "http server listening");
                axum::serve(http, app)
                    .with_graceful_shutdown(http_shutdown.wait())
                    .await
            }
            Some(tls) => {
                tracing::info!(addr = %http_addr, "https server listening");
                use axum::serve::ListenerExt;
                let listener = https::TlsListener::new(http, tls)?.tap_io(|_| {});
                axum::serve(listener, app)
                    .with_graceful_shutdown(http_shutdown.wait())
                    .await
            }
        }
    });

    let admin = facepass_proto::admin::v1::admin_service_server::AdminServiceServer::new(
        admin::AdminApi::new(gateway.clone()),
    );
    let svc = FacePassServiceServer::new(api::PublicApi::new(gateway))
        .max_decoding_message_size(config.grpc.max_message_bytes);
    server
        .serve(
            SERVICE_NAME,
            tonic::service::Routes::new(svc).add_service(admin),
            health_service,
            shutdown,
        )
        .await?;
    http_server.await??;
    relay.await?;
    outcomes.await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The gateway and the search service share one database, and diesel
    /// keeps one table of applied versions per database: a catalog and a
    /// faces migration with the same version would make the second one look
    /// applied and never run. Versions are the digits of the folder name.
    #[test]
    fn migration_versions_are_unique_across_services() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
        let mut seen = std::collections::BTreeMap::new();
        for set in ["catalog", "faces"] {
            for entry in std::fs::read_dir(root.join(set)).unwrap() {
                let name = entry.unwrap().file_name().to_string_lossy().into_owned();
                let version: String = name
                    .split('_')
                    .next()
                    .unwrap()
                    .chars()
                    .filter(char::is_ascii_digit)
                    .collect();
                if let Some(other) = seen.insert(version.clone(), format!("{set}/{name}")) {
                    panic!("version {version} is used by {other} and {set}/{name}");
                }
            }
        }
        assert!(seen.len() >= 9);
    }
}
