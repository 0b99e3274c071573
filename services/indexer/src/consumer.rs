//! The RabbitMQ side of the indexer: consume `photo.uploaded` with manual
//! acks and a bounded prefetch, index, publish the outcome with publisher
//! confirms, and only then ack. Transient failures are retried through the
//! retry queue with exponential backoff, each announced by `photo.retrying`
//! (the photo's status and last error); permanent ones (and retries past
//! the window) become `photo.failed` with a readable reason. An undecodable
//! message is rejected to the dead-letter queue. Connection loss is
//! survived by reconnecting; unacked deliveries are redelivered, and
//! redelivery is harmless because the store's upsert is idempotent.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use facepass_core::Error;
use facepass_proto::events::v1::{PhotoFailed, PhotoIndexed, PhotoRetrying, PhotoUploaded};
use facepass_queue::lapin::message::Delivery;
use facepass_queue::lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, BasicRejectOptions,
};
use facepass_queue::lapin::types::FieldTable;
use facepass_queue::lapin::Channel;
use facepass_queue::{Event, Outgoing, Topology};
use facepass_server::Shutdown;
use futures::StreamExt;
use tracing::Instrument;

use crate::metrics;
use crate::pipeline::Pipeline;
use crate::IndexerConfig;

/// Consumes until `shutdown`, reconnecting after broker failures.
pub async fn run(
    config: IndexerConfig,
    pipeline: Pipeline,
    shutdown: Shutdown,
    connected: Arc<AtomicBool>,
) {
    let (s2, c) = (shutdown.clone(), connected.clone());
    facepass_server::supervise::reconnecting("indexer consumer", shutdown, connected, move || {
        let (config, pipeline, shutdown, connected) =
            (config.clone(), pipeline.clone(), s2.clone(), c.clone());
        async move { session(&config, &pipeline, &shutdown, &connected).await }
    })
    .await
}

async fn session(
    config: &IndexerConfig,
    pipeline: &Pipeline,
    shutdown: &Shutdown,
    connected: &AtomicBool,
) -> anyhow::Result<()> {
    let topology = config.amqp.topology();
    let connection =
        std::sync::Arc::new(facepass_queue::connect(&config.amqp.url, "facepass-indexer").await?);
    let channel = facepass_queue::confirmed_channel(&connection).await?;
    topology.declare(&channel).await?;
    topology
        .declare_retry_queues(&channel, &retry_delays(config))
        .await?;
    channel
        .basic_qos(config.prefetch, BasicQosOptions::default())
        .await?;
    let consumer = channel
        .basic_consume(
            topology.indexer_queue().as_str().into(),
            "facepass-indexer".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    connected.store(true, Ordering::SeqCst);
    tracing::info!(queue = %topology.indexer_queue(), prefetch = config.prefetch, "consuming");
    // Queue depths for the metrics, while this session lives.
    let mut queues = vec![
        topology.indexer_queue(),
        topology.outcomes_queue(),
        topology.dead_letter_queue(),
    ];
    queues.extend(
        retry_delays(config)
            .into_iter()
            .map(|d| topology.retry_queue(d)),
    );
    let watch_channel = connection.create_channel().await?;
    let watcher = tokio::spawn(metrics::watch_queues(
        watch_channel,
        queues,
        Duration::from_secs(5),
    ));
    let _stop_watcher = AbortOnDrop(watcher);
    // The queue before priorities, left by an older release: its messages
    // join the priority queue and it goes. In the background, best effort,
    // while this indexer consumes; again every 10 minutes, for an old
    // indexer that binds it again during a rolling upgrade.
    let retire = tokio::spawn({
        let (connection, topology) = (std::sync::Arc::clone(&connection), topology.clone());
        async move {
            loop {
                match topology.retire_legacy_queue(&connection).await {
                    Ok(0) => {}
                    Ok(moved) => {
                        tracing::info!(moved, queue = %topology.legacy_indexer_queue(), "moved the old indexer queue's messages into the priority queue")
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, queue = %topology.legacy_indexer_queue(), "could not retire the old indexer queue yet")
                    }
                }
                tokio::time::sleep(Duration::from_secs(600)).await;
            }
        }
    });
    let _stop_retire = AbortOnDrop(retire);

    let broken = AtomicBool::new(false);
    consumer
        .take_until(shutdown.wait())
        .for_each_concurrent(config.prefetch as usize, |delivery| {
            let channel = channel.clone();
            let topology = topology.clone();
            let broken = &broken;
            async move {
                match delivery {
                    Ok(delivery) => handle(config, pipeline, &channel, &topology, delivery).await,
                    Err(e) => {
                        tracing::warn!(error = %e, "consumer error");
                        broken.store(true, Ordering::SeqCst);
                    }
                }
            }
        })
        .await;
    if shutdown.is_triggered() {
        tracing::info!("in-flight photos finished; closing rabbitmq connection");
        let _ = connection.close(200, "shutting down".into()).await;
        return Ok(());
    }
    anyhow::bail!(if broken.load(Ordering::SeqCst) {
        "consumer failed"
    } else {
        "consumer was cancelled by the broker"
    })
}

/// Aborts a task when dropped (the queue watcher ends with its session).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What became of one delivery.
enum Outcome {
    Indexed(PhotoIndexed),
    Failed(PhotoFailed),
    /// The retry copy, its delay, and the `photo.retrying` that tells the
    /// catalog (published first, so the status never lags the retry).
    Retry(PhotoUploaded, Duration, PhotoRetrying),
}

/// [`handle_photo`] inside the photo's span, a child of the trace its
/// upload started (the message's `traceparent`).
async fn handle(
    config: &IndexerConfig,
    pipeline: &Pipeline,
    channel: &Channel,
    topology: &Topology,
    delivery: Delivery,
) {
    let span = tracing::info_span!("index photo", otel.kind = "consumer");
    let headers = facepass_queue::string_headers(&delivery.properties);
    facepass_server::telemetry::set_parent(
        &span,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    );
    handle_photo(config, pipeline, channel, topology, delivery)
        .instrument(span)
        .await
}

async fn handle_photo(
    config: &IndexerConfig,
    pipeline: &Pipeline,
    channel: &Channel,
    topology: &Topology,
    delivery: Delivery,
) {
    let photo: PhotoUploaded = match facepass_queue::decode(&delivery.properties, &delivery.data) {
        Ok(photo) => photo,
        Err(why) => {
            tracing::error!(reason = %why, "undecodable message sent to the dead-letter queue");
            let _ = delivery.reject(BasicRejectOptions { requeue: false }).await;
            return;
        }
    };
    let attempt = photo.attempt.max(1);
    let started = std::time::Instant::now();
    // The retry window counts from the first attempt (carried by the copies).
    let first_attempt = photo
        .first_attempt_at
        .and_then(|t| SystemTime::try_from(t).ok())
        .unwrap_or_else(SystemTime::now);
    let result = pipeline.index(&photo).await;
    metrics::get()
        .attempt_seconds
        .observe(started.elapsed().as_secs_f64());
    let outcome = match result {
        Ok(indexed) => {
            metrics::outcome("indexed", "");
            metrics::get().faces.inc_by(indexed.face_count.into());
            if let Some(uploaded) = photo
                .uploaded_at
                .and_then(|t| std::time::SystemTime::try_from(t).ok())
            {
                if let Ok(waited) = std::time::SystemTime::now().duration_since(uploaded) {
                    metrics::get()
                        .upload_to_indexed_seconds
                        .observe(waited.as_secs_f64());
                }
            }
            tracing::info!(photo_id = %photo.photo_id, faces = indexed.face_count, attempt, elapsed_ms = started.elapsed().as_millis() as u64, "photo indexed");
            Outcome::Indexed(PhotoIndexed {
                photo_id: photo.photo_id.clone(),
                event_id: photo.event_id.clone(),
                studio_id: photo.studio_id.clone(),
                face_count: indexed.face_count,
                model: indexed.model.to_string(),
                indexed_at: Some(now()),
                width: indexed.width,
                height: indexed.height,
                content_type: indexed.content_type.unwrap_or_default(),
                captured_at: indexed.captured_at.map(Into::into),
            })
        }
        Err(e) if e.code.is_permanent() => {
            tracing::warn!(photo_id = %photo.photo_id, code = %e.code, reason = %e.message, "photo cannot be indexed");
            metrics::outcome("failed", e.code.as_str());
            Outcome::Failed(failed(&photo, &e, attempt, e.message.clone()))
        }
        Err(e) => match decide(config, &photo, attempt, first_attempt, SystemTime::now()) {
            Retry::After(delay) => {
                tracing::warn!(photo_id = %photo.photo_id, code = %e.code, reason = %e.message, attempt, retry_in_ms = delay.as_millis() as u64, "transient failure; retry scheduled");
                metrics::outcome("retried", e.code.as_str());
                let mut next = photo.clone();
                next.attempt = attempt + 1;
                next.first_attempt_at = Some(first_attempt.into());
                let retrying = PhotoRetrying {
                    photo_id: photo.photo_id.clone(),
                    event_id: photo.event_id.clone(),
                    studio_id: photo.studio_id.clone(),
                    error_code: e.code.as_str().to_string(),
                    reason: e.message.clone(),
                    attempt,
                    next_attempt_at: Some((SystemTime::now() + delay).into()),
                    retry_until: Some(
                        (first_attempt + Duration::from_millis(config.retry_for_ms)).into(),
                    ),
                };
                Outcome::Retry(next, delay, retrying)
            }
            Retry::GiveUp(why) => {
                tracing::error!(photo_id = %photo.photo_id, code = %e.code, reason = %e.message, attempt, %why, "giving up");
                metrics::outcome("failed", e.code.as_str());
                let reason = format!("gave up after {attempt} attempts ({why}): {}", e.message);
                Outcome::Failed(failed(&photo, &e, attempt, reason))
            }
        },
    };
    let exchange = topology.events_exchange();
    let retry_queue = match &outcome {
        Outcome::Retry(_, delay, _) => topology.retry_queue(delay.as_millis() as u64),
        _ => String::new(),
    };
    let published = match &outcome {
        Outcome::Indexed(event) => {
            publish(
                channel,
                &exchange,
                routing_key(event),
                &event.photo_id,
                event,
                None,
            )
            .await
        }
        Outcome::Failed(event) => {
            publish(
                channel,
                &exchange,
                routing_key(event),
                &event.photo_id,
                event,
                None,
            )
            .await
        }
        // Straight into the retry queue of that delay (default exchange);
        // the queue's TTL sends it back to photo.uploaded.
        Outcome::Retry(event, _, retrying) => {
            match publish(
                channel,
                &exchange,
                routing_key(retrying),
                &retrying.photo_id,
                retrying,
                None,
            )
            .await
            {
                // The retry keeps its place among priorities: a live
                // photo's retry is still live.
                Ok(()) => {
                    let priority = *delivery.properties.priority();
                    publish(channel, "", &retry_queue, &event.photo_id, event, priority).await
                }
                Err(e) => Err(e),
            }
        }
    };
    match published {
        Ok(()) => {
            if let Err(e) = delivery.ack(BasicAckOptions::default()).await {
                // The outcome is out; a redelivery would only repeat idempotent work.
                tracing::warn!(photo_id = %photo.photo_id, error = %e, "ack failed");
            }
        }
        Err(e) => {
            tracing::warn!(photo_id = %photo.photo_id, error = %e, "outcome not confirmed; message goes back to the queue");
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

/// The routing key an event is published under on the events exchange.
fn routing_key<E: Event>(_: &E) -> &'static str {
    E::ROUTING_KEY
}

/// Publishes `message` with its own type name (`prost::Name`).
async fn publish<E: Event>(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    id: &str,
    message: &E,
    priority: Option<u8>,
) -> Result<(), Error> {
    let payload = message.encode_to_vec();
    // Inside the photo's span: the outcome (or the retry) continues its trace.
    let headers = facepass_server::telemetry::current_headers();
    let message_type = E::type_name();
    let message_type = message_type.as_str();
    facepass_queue::publish_confirmed(
        channel,
        Outgoing {
            exchange,
            routing_key,
            message_type,
            payload: &payload,
            expiration_ms: None,
            message_id: id,
            headers: &headers,
            priority,
        },
    )
    .await
}

fn failed(photo: &PhotoUploaded, e: &Error, attempts: u32, reason: String) -> PhotoFailed {
    PhotoFailed {
        photo_id: photo.photo_id.clone(),
        event_id: photo.event_id.clone(),
        studio_id: photo.studio_id.clone(),
        error_code: e.code.as_str().to_string(),
        reason,
        attempts,
    }
}

/// What to do after a transient failure.
#[derive(Debug, Clone, PartialEq)]
pub enum Retry {
    After(Duration),
    GiveUp(String),
}

/// Retry after the back-off while the next attempt would still start inside
/// the window (`retry_for_ms` from the first attempt) and under the
/// attempts cap, if one is set; otherwise give up, saying which limit ended it.
pub fn decide(
    config: &IndexerConfig,
    _photo: &PhotoUploaded,
    attempt: u32,
    first_attempt: SystemTime,
    now: SystemTime,
) -> Retry {
    if config.max_attempts != 0 && attempt >= config.max_attempts {
        return Retry::GiveUp(format!("the cap of {} attempts", config.max_attempts));
    }
    let delay = backoff(config, attempt);
    let window = Duration::from_millis(config.retry_for_ms);
    let next = now.duration_since(first_attempt).unwrap_or_default() + delay;
    if next > window {
        return Retry::GiveUp(format!(
            "retried for {} s, the limit is {} s",
            now.duration_since(first_attempt)
                .unwrap_or_default()
                .as_secs(),
            window.as_secs()
        ));
    }
    Retry::After(delay)
}

/// The delay before retrying after failed attempt `attempt`.
pub fn backoff(config: &IndexerConfig, attempt: u32) -> Duration {
    Duration::from_millis(facepass_queue::retry_delay_ms(
        config.retry_base_ms,
        config.retry_max_ms,
        attempt,
    ))
}

/// The retry queues this configuration needs.
pub fn retry_delays(config: &IndexerConfig) -> Vec<u64> {
    facepass_queue::retry_delays_ms(
        config.retry_base_ms,
        config.retry_max_ms,
        config.max_attempts,
    )
}

fn now() -> prost_types::Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    prost_types::Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let config = IndexerConfig {
            retry_base_ms: 100,
            retry_max_ms: 1_000,
            ..IndexerConfig::default()
        };
        assert_eq!(backoff(&config, 1).as_millis(), 100);
        assert_eq!(backoff(&config, 3).as_millis(), 400);
        assert_eq!(backoff(&config, 30).as_millis(), 1_000);
        let capped = IndexerConfig {
            max_attempts: 6,
            ..config.clone()
        };
        assert_eq!(retry_delays(&capped), vec![100, 200, 400, 800, 1_000]);
        // No cap: every delay up to the ceiling.
        assert_eq!(retry_delays(&config), vec![100, 200, 400, 800, 1_000]);
    }

    #[test]
    fn transient_failures_are_retried_for_the_window_then_given_up() {
        let config = IndexerConfig {
            retry_base_ms: 1_000,
            retry_max_ms: 60_000,
            retry_for_ms: 3_600_000,
            ..IndexerConfig::default()
        };
        let photo = PhotoUploaded::default();
        let first = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let at = |secs: u64| first + Duration::from_secs(secs);
        assert_eq!(
            decide(&config, &photo, 1, first, at(0)),
            Retry::After(Duration::from_secs(1))
        );
        // Attempt 40, 50 minutes in: still retried, at the ceiling.
        assert_eq!(
            decide(&config, &photo, 40, first, at(3_000)),
            Retry::After(Duration::from_secs(60))
        );
        // A retry that would start after the hour is not scheduled.
        match decide(&config, &photo, 41, first, at(3_590)) {
            Retry::GiveUp(why) => assert!(why.contains("limit is 3600 s"), "{why}"),
            other => panic!("{other:?}"),
        }
        // With a cap, the cap ends it first.
        let capped = IndexerConfig {
            max_attempts: 5,
            ..config
        };
        assert!(
            matches!(decide(&capped, &photo, 5, first, at(10)), Retry::GiveUp(w) if w.contains("cap of 5"))
        );
        assert!(matches!(
            decide(&capped, &photo, 4, first, at(10)),
            Retry::After(_)
        ));
    }
}
