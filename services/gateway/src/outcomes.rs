//! Turns `photo.indexed`, `photo.failed` and `photo.retrying` into catalog
//! status. Updates are
//! idempotent, so redelivery is harmless. Faces indexed for a photo deleted
//! in the meantime are removed from the store.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use facepass_core::Error;
use facepass_proto::events::v1::{PhotoFailed, PhotoIndexed, PhotoRetrying};
use facepass_proto::search::v1 as srch;
use facepass_queue::lapin::message::Delivery;
use facepass_queue::lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, BasicRejectOptions,
};
use facepass_queue::lapin::types::FieldTable;
use facepass_queue::Event;
use facepass_server::Shutdown;
use futures::StreamExt;
use tracing::Instrument;
use uuid::Uuid;

use crate::catalog::{Indexed, Retrying};
use crate::domain::Gateway;

pub async fn run(gateway: Arc<Gateway>, shutdown: Shutdown, connected: Arc<AtomicBool>) {
    let (s, c) = (shutdown.clone(), connected.clone());
    facepass_server::supervise::reconnecting("outcome consumer", shutdown, connected, move || {
        let (gateway, shutdown, connected) = (gateway.clone(), s.clone(), c.clone());
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
        facepass_queue::connect(&gateway.config.amqp.url, "facepass-gateway-outcomes").await?;
    let channel = connection.create_channel().await?;
    topology.declare(&channel).await?;
    channel.basic_qos(32, BasicQosOptions::default()).await?;
    let consumer = channel
        .basic_consume(
            topology.outcomes_queue().as_str().into(),
            "facepass-gateway".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    connected.store(true, Ordering::SeqCst);
    consumer
        .take_until(shutdown.wait())
        .for_each_concurrent(8, |delivery| async move {
            match delivery {
                Ok(delivery) => handle(gateway, delivery).await,
                Err(e) => tracing::warn!(error = %e, "outcome consumer error"),
            }
        })
        .await;
    if shutdown.is_triggered() {
        let _ = connection.close(200, "shutting down".into()).await;
        return Ok(());
    }
    anyhow::bail!("outcome consumer stopped")
}

/// [`handle_outcome`] inside a span that closes the photo's trace.
async fn handle(gateway: &Gateway, delivery: Delivery) {
    let span = tracing::info_span!("apply outcome", otel.kind = "consumer");
    let headers = facepass_queue::string_headers(&delivery.properties);
    facepass_server::telemetry::set_parent(
        &span,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    );
    handle_outcome(gateway, delivery).instrument(span).await
}

async fn handle_outcome(gateway: &Gateway, delivery: Delivery) {
    let kind = facepass_queue::type_of(&delivery.properties).unwrap_or_default();
    let result = if kind == PhotoIndexed::type_name() {
        match facepass_queue::decode::<PhotoIndexed>(&delivery.properties, &delivery.data) {
            Ok(event) => apply_indexed(gateway, event).await,
            Err(why) => Err(Some(why)),
        }
    } else if kind == PhotoFailed::type_name() {
        match facepass_queue::decode::<PhotoFailed>(&delivery.properties, &delivery.data) {
            Ok(event) => apply_failed(gateway, event).await,
            Err(why) => Err(Some(why)),
        }
    } else if kind == PhotoRetrying::type_name() {
        match facepass_queue::decode::<PhotoRetrying>(&delivery.properties, &delivery.data) {
            Ok(event) => apply_retrying(gateway, event).await,
            Err(why) => Err(Some(why)),
        }
    } else {
        Err(Some(format!("unexpected message type {kind:?}")))
    };
    match result {
        Ok(()) => {
            let _ = delivery.ack(BasicAckOptions::default()).await;
        }
        Err(Some(why)) => {
            tracing::error!(reason = %why, "undecodable outcome sent to the dead-letter queue");
            let _ = delivery.reject(BasicRejectOptions { requeue: false }).await;
        }
        Err(None) => {
            // A transient problem (database down): try again shortly.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let _ = delivery
                .nack(BasicNackOptions {
                    requeue: true,
                    ..BasicNackOptions::default()
                })
                .await;
        }
    }
}

/// Queues the studio's webhooks for the photo's outcome (idempotent: a
/// redelivered outcome queues nothing new).
async fn notify(gateway: &Gateway, studio: &str, photo_id: Uuid) -> Result<(), Option<String>> {
    let studio = Uuid::parse_str(studio).map_err(|_| Some("bad studio_id".to_string()))?;
    let photo = match gateway.catalog.get_photo(studio, photo_id).await {
        Ok(photo) => photo,
        // Deleted just now: nothing to tell.
        Err(e) if e.code == facepass_core::ErrorCode::NotFound => return Ok(()),
        Err(e) => return Err(transient(e)),
    };
    crate::webhooks::photo_outcome(gateway, &photo)
        .await
        .map_err(transient)
}

fn transient(e: Error) -> Option<String> {
    tracing::warn!(code = %e.code, error = %e.message, "applying an outcome failed; will retry");
    None
}

async fn apply_indexed(gateway: &Gateway, event: PhotoIndexed) -> Result<(), Option<String>> {
    let photo_id =
        Uuid::parse_str(&event.photo_id).map_err(|_| Some("bad photo_id".to_string()))?;
    let indexed = Indexed {
        face_count: event.face_count as i32,
        width: (event.width > 0).then_some(event.width as i32),
        height: (event.height > 0).then_some(event.height as i32),
        content_type: (!event.content_type.is_empty()).then(|| event.content_type.clone()),
        // A time the file claims that is out of range is simply not kept.
        captured_at: event
            .captured_at
            .and_then(|t| crate::api::from_timestamp("captured_at", t).ok()),
    };
    let found = gateway
        .catalog
        .mark_indexed(photo_id, &indexed)
        .await
        .map_err(transient)?;
    if found {
        tracing::info!(%photo_id, faces = event.face_count, "photo indexed");
        notify(gateway, &event.studio_id, photo_id).await?;
    } else {
        // Deleted while it was being indexed: its faces must not outlive
        // it, nor the previews the detector wrote meanwhile.
        tracing::info!(%photo_id, "indexed photo no longer exists; removing its faces and previews");
        if let (Ok(studio), Ok(event_id)) = (
            Uuid::parse_str(&event.studio_id),
            Uuid::parse_str(&event.event_id),
        ) {
            gateway
                .delete_previews_of(studio, event_id, photo_id)
                .await
                .map_err(transient)?;
        }
        gateway
            .peers
            .search
            .clone()
            .delete_photo_faces(srch::DeletePhotoFacesRequest {
                studio_id: event.studio_id,
                photo_id: event.photo_id,
                event_id: event.event_id,
            })
            .await
            .map_err(|s| transient(Error::from_status(&s)))?;
    }
    Ok(())
}

async fn apply_failed(gateway: &Gateway, event: PhotoFailed) -> Result<(), Option<String>> {
    let photo_id =
        Uuid::parse_str(&event.photo_id).map_err(|_| Some("bad photo_id".to_string()))?;
    // Free text from the indexer (peers' messages included): a NUL would
    // make PostgreSQL refuse the update and the message come back forever.
    let code = facepass_core::text::sanitize(&event.error_code, 64);
    let reason = facepass_core::text::sanitize(&event.reason, 2000);
    let found = gateway
        .catalog
        .mark_failed(photo_id, &code, &reason, event.attempts as i32)
        .await
        .map_err(transient)?;
    tracing::info!(%photo_id, found, code = %event.error_code, reason = %event.reason, "photo failed");
    if found {
        notify(gateway, &event.studio_id, photo_id).await?;
    }
    // A failed photo has no faces: the store removes any an earlier attempt
    // stored (a re-index that failed) and counts the photo as failed; a
    // photo deleted meanwhile leaves no record at all.
    let mut search = gateway.peers.search.clone();
    if found {
        search
            .mark_photo_failed(srch::MarkPhotoFailedRequest {
                studio_id: event.studio_id,
                event_id: event.event_id,
                photo_id: event.photo_id,
                reason: format!("{}: {}", event.error_code, event.reason),
            })
            .await
            .map_err(|s| transient(Error::from_status(&s)))?;
    } else {
        search
            .delete_photo_faces(srch::DeletePhotoFacesRequest {
                studio_id: event.studio_id,
                photo_id: event.photo_id,
                event_id: event.event_id,
            })
            .await
            .map_err(|s| transient(Error::from_status(&s)))?;
    }
    Ok(())
}

/// Records that the photo is being retried, with the attempt's error. A
/// late or repeated message (the photo indexed or failed meanwhile, or a
/// later attempt already recorded) changes nothing.
async fn apply_retrying(gateway: &Gateway, event: PhotoRetrying) -> Result<(), Option<String>> {
    let photo_id =
        Uuid::parse_str(&event.photo_id).map_err(|_| Some("bad photo_id".to_string()))?;
    let time = |t: Option<prost_types::Timestamp>| {
        t.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
    };
    let retrying = Retrying {
        attempt: event.attempt.min(i32::MAX as u32) as i32,
        error_code: facepass_core::text::sanitize(&event.error_code, 64),
        error_reason: facepass_core::text::sanitize(&event.reason, 2000),
        next_attempt_at: time(event.next_attempt_at),
        retry_until: time(event.retry_until),
    };
    let changed = gateway
        .catalog
        .mark_retrying(photo_id, &retrying)
        .await
        .map_err(transient)?;
    tracing::info!(%photo_id, changed, attempt = event.attempt, code = %event.error_code, "photo retrying");
    Ok(())
}
