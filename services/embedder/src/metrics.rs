//! The embedder's metrics (docs/operations.md, "Metrics").

use std::sync::OnceLock;

use facepass_server::metrics::prometheus_client::metrics::counter::Counter;
use facepass_server::metrics::prometheus_client::metrics::gauge::Gauge;
use facepass_server::metrics::prometheus_client::metrics::histogram::{
    exponential_buckets, Histogram,
};
use facepass_server::metrics::{register, seconds_histogram};

pub struct Metrics {
    /// Faces per inference batch.
    pub batch_size: Histogram,
    /// A face's wait in the queue before its batch starts.
    pub queue_wait_seconds: Histogram,
    /// One batch's inference.
    pub inference_seconds: Histogram,
    /// Faces waiting for an inference thread now.
    pub queued: Gauge,
    /// Faces embedded for callers (the batches also hold the warm-up and
    /// the health probe's grey crop).
    pub faces: Counter,
}

pub fn get() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| Metrics {
        batch_size: register(
            "facepass_embedder_batch_size",
            "Faces per recogniser inference batch",
            Histogram::new(exponential_buckets(1.0, 2.0, 8)),
        ),
        queue_wait_seconds: register(
            "facepass_embedder_queue_wait_seconds",
            "A face's wait in the batching queue before its batch's inference starts",
            seconds_histogram(),
        ),
        inference_seconds: register(
            "facepass_embedder_inference_seconds",
            "One batch's recogniser inference",
            seconds_histogram(),
        ),
        queued: register(
            "facepass_embedder_queued_faces",
            "Faces waiting in the batching queue now",
            Gauge::default(),
        ),
        faces: register(
            "facepass_embedder_faces",
            "Faces embedded for callers' Embed requests",
            Counter::default(),
        ),
    })
}
