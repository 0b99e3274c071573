//! Honest health: a service reports NOT_SERVING until its dependencies answer
//! (database, broker, model files, peers) and goes back to NOT_SERVING when
//! one stops answering. Probes read it through `grpc.health.v1`.

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

use crate::Shutdown;

/// The latest verdict of [`watch`], for probes that do not speak gRPC (the
/// gateway's `/readyz`): not ready until the first check has passed.
#[derive(Clone, Debug)]
pub struct Readiness(Arc<RwLock<Result<(), String>>>);

impl Default for Readiness {
    fn default() -> Self {
        Readiness(Arc::new(RwLock::new(Err("starting".into()))))
    }
}

static PROCESS: std::sync::OnceLock<Readiness> = std::sync::OnceLock::new();

/// This process's readiness (the first [`watch`] started), for the
/// plain-HTTP `/readyz` beside `/metrics`: kubelet's gRPC probes cannot
/// speak TLS, its HTTP probes on the metrics port can reach this.
pub fn process_readiness() -> Option<Readiness> {
    PROCESS.get().cloned()
}

impl Readiness {
    /// `Ok` while serving, else why not.
    pub fn get(&self) -> Result<(), String> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, value: Result<(), String>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = value;
    }
}

/// Re-checks `check` every `interval` and publishes the result under the
/// overall name `""` and under `service`. Returns when `shutdown` fires,
/// after publishing NOT_SERVING so load balancers drain the instance.
pub async fn watch<F, Fut>(
    reporter: HealthReporter,
    service: &'static str,
    interval: Duration,
    shutdown: Shutdown,
    check: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    watch_ready(
        reporter,
        service,
        interval,
        shutdown,
        Readiness::default(),
        check,
    )
    .await
}

/// [`watch`], also keeping `readiness` up to date.
pub async fn watch_ready<F, Fut>(
    reporter: HealthReporter,
    service: &'static str,
    interval: Duration,
    shutdown: Shutdown,
    readiness: Readiness,
    mut check: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let _ = PROCESS.set(readiness.clone());
    let mut last: Option<bool> = None;
    loop {
        let result = check().await;
        let healthy = result.is_ok();
        readiness.set(result.clone());
        if last != Some(healthy) {
            match &result {
                Ok(()) => tracing::info!(service, "dependencies answer: serving"),
                Err(why) => tracing::warn!(service, reason = %why, "not serving"),
            }
            let status = if healthy {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            reporter.set_service_status("", status).await;
            reporter.set_service_status(service, status).await;
            last = Some(healthy);
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.wait() => break,
        }
    }
    readiness.set(Err("shutting down".into()));
    reporter
        .set_service_status("", ServingStatus::NotServing)
        .await;
    reporter
        .set_service_status(service, ServingStatus::NotServing)
        .await;
}

/// A fresh reporter whose statuses start as NOT_SERVING.
pub async fn not_serving_reporter(
    service: &'static str,
) -> (
    HealthReporter,
    tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
) {
    let (reporter, server) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", ServingStatus::NotServing)
        .await;
    reporter
        .set_service_status(service, ServingStatus::NotServing)
        .await;
    (reporter, server)
}
