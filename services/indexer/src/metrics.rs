//! The indexer's metrics (docs/operations.md, "Metrics").

use std::sync::OnceLock;

use facepass_server::metrics::prometheus_client::encoding::EncodeLabelSet;
use facepass_server::metrics::prometheus_client::metrics::counter::Counter;
use facepass_server::metrics::prometheus_client::metrics::family::Family;
use facepass_server::metrics::prometheus_client::metrics::gauge::Gauge;
use facepass_server::metrics::prometheus_client::metrics::histogram::{
    exponential_buckets, Histogram,
};
use facepass_server::metrics::{register, seconds_histogram};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `indexed`, `retried` (a transient failure, tried again later) or
    /// `failed` (permanent, or out of attempts).
    pub outcome: &'static str,
    /// The error code for `retried` and `failed`; empty for `indexed`.
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    pub queue: String,
}

pub struct Metrics {
    pub photos: Family<OutcomeLabels, Counter>,
    pub attempt_seconds: Histogram,
    pub upload_to_indexed_seconds: Histogram,
    pub faces: Counter,
    /// Messages ready in each queue of the topology (the backlog).
    pub queue_messages: Family<QueueLabels, Gauge>,
    /// Consumers attached to each queue.
    pub queue_consumers: Family<QueueLabels, Gauge>,
}

pub fn get() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| Metrics {
        photos: register(
            "facepass_indexer_photos",
            "Photos handled by the indexer, by outcome and error code",
            Family::default(),
        ),
        attempt_seconds: register(
            "facepass_indexer_attempt_duration_seconds",
            "One indexing attempt: fetch, detect, embed and store a photo's faces",
            seconds_histogram(),
        ),
        // 0.1 s to about 55 minutes: a backlog is measured in minutes.
        upload_to_indexed_seconds: register(
            "facepass_indexer_upload_to_indexed_seconds",
            "From the upload's acceptance by the gateway to the photo's faces being stored",
            Histogram::new(exponential_buckets(0.1, 2.0, 16)),
        ),
        faces: register(
            "facepass_indexer_faces",
            "Faces stored by the indexer",
            Counter::default(),
        ),
        queue_messages: register(
            "facepass_queue_messages",
            "Messages ready (not yet delivered) in each RabbitMQ queue, read every 5 s by the indexer",
            Family::default(),
        ),
        queue_consumers: register(
            "facepass_queue_consumers",
            "Consumers of each RabbitMQ queue, read every 5 s by the indexer",
            Family::default(),
        ),
    })
}

/// Counts one outcome.
pub fn outcome(outcome: &'static str, code: &str) {
    get()
        .photos
        .get_or_create(&OutcomeLabels {
            outcome,
            code: code.to_string(),
        })
        .inc();
}

/// Reads the depth of every queue of the topology every `every`, until the
/// channel closes (a passive declare on a channel of its own: it creates
/// nothing and does not disturb the consumer).
pub async fn watch_queues(
    channel: facepass_queue::lapin::Channel,
    queues: Vec<String>,
    every: std::time::Duration,
) {
    loop {
        for queue in &queues {
            let declared = channel
                .queue_declare(
                    queue.as_str().into(),
                    facepass_queue::lapin::options::QueueDeclareOptions {
                        passive: true,
                        ..Default::default()
                    },
                    facepass_queue::lapin::types::FieldTable::default(),
                )
                .await;
            match declared {
                Ok(q) => {
                    let labels = QueueLabels {
                        queue: queue.clone(),
                    };
                    get()
                        .queue_messages
                        .get_or_create(&labels)
                        .set(q.message_count().into());
                    get()
                        .queue_consumers
                        .get_or_create(&labels)
                        .set(q.consumer_count().into());
                }
                // A queue gone or the channel closed: drop the gauges rather
                // than leave stale values; the next session starts a new
                // watcher.
                Err(_) => {
                    for queue in &queues {
                        let labels = QueueLabels {
                            queue: queue.clone(),
                        };
                        get().queue_messages.remove(&labels);
                        get().queue_consumers.remove(&labels);
                    }
                    return;
                }
            }
        }
        tokio::time::sleep(every).await;
    }
}
