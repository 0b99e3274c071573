//! The outbox relay: publishes `photo.uploaded` rows written together with
//! their photos, with publisher confirms, and marks them sent only once the
//! broker has confirmed. A crash between publish and mark re-publishes,
//! which the indexer absorbs (idempotent upsert).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use facepass_core::ErrorCode;
use facepass_queue::Outgoing;
use facepass_server::Shutdown;
use tracing::Instrument;

use crate::domain::Gateway;

const BATCH: i64 = 100;

/// Publishes until `shutdown`, reconnecting after broker failures.
pub async fn run(gateway: Arc<Gateway>, shutdown: Shutdown, connected: Arc<AtomicBool>) {
    let (s2, c) = (shutdown.clone(), connected.clone());
    facepass_server::supervise::reconnecting("outbox relay", shutdown, connected, move || {
        let (gateway, shutdown, connected) = (gateway.clone(), s2.clone(), c.clone());
        async move { session(&gateway, &shutdown, &connected).await }
    })
    .await
}

async fn session(
    gateway: &Gateway,
    shutdown: &Shutdown,
    connected: &AtomicBool,
) -> anyhow::Result<()> {
    let topology = gateway.config.amqp.topology();
    let connection =
        facepass_queue::connect(&gateway.config.amqp.url, "facepass-gateway-relay").await?;
    let channel = facepass_queue::confirmed_channel(&connection).await?;
    topology.declare(&channel).await?;
    connected.store(true, Ordering::SeqCst);
    let exchange = topology.events_exchange();
    let poll = Duration::from_millis(gateway.config.outbox_poll_ms);
    let mut last_prune = std::time::Instant::now();
    loop {
        let sent = gateway
            .catalog
            .relay_outbox(BATCH, |row| {
                let channel = channel.clone();
                let exchange = exchange.clone();
                // The upload's trace continues here, then in the message.
                let span = tracing::info_span!("outbox publish", otel.kind = "producer");
                if let Some(parent) = &row.trace_context {
                    facepass_server::telemetry::set_parent(
                        &span,
                        [("traceparent", parent.as_str())],
                    );
                }
                let headers = facepass_server::telemetry::headers_of(&span);
                async move {
                    facepass_queue::publish_confirmed(
                        &channel,
                        Outgoing {
                            exchange: &exchange,
                            routing_key: &row.routing_key,
                            message_type: &row.message_type,
                            payload: &row.payload,
                            expiration_ms: None,
                            message_id: &row.id.to_string(),
                            headers: &headers,
                            priority: Some(row.priority.clamp(0, 9) as u8),
                        },
                    )
                    .await
                }
                .instrument(span)
            })
            .await;
        match sent {
            Ok(n) if n as i64 == BATCH => continue,
            Ok(n) => {
                if n > 0 {
                    tracing::debug!(sent = n, "outbox relayed");
                }
            }
            Err(e) if e.code == ErrorCode::Unavailable && !channel.status().connected() => {
                anyhow::bail!("publishing failed: {e}");
            }
            Err(e) => {
                tracing::warn!(code = %e.code, error = %e.message, "outbox relay pass failed")
            }
        }
        if last_prune.elapsed() > Duration::from_secs(600) {
            last_prune = std::time::Instant::now();
            if let Err(e) = gateway.catalog.prune_outbox(24).await {
                tracing::warn!(error = %e, "pruning the outbox failed");
            }
        }
        tokio::select! {
            _ = gateway.outbox_ready.notified() => {}
            _ = tokio::time::sleep(poll) => {}
            _ = shutdown.wait() => {
                let _ = connection.close(200, "shutting down".into()).await;
                return Ok(());
            }
        }
    }
}
