//! The indexer's metrics (docs/operations.md, "Metrics").

use std::sync::OnceLock;

use facepass_server::metrics::prometheus_client::encoding::EncodeLabelSet;
use facepass_server::metrics::prometheus_client::metrics::counter::Counter;
use facepass_server::metrics::prometheus_client::metrics::family::Family;
use facepass_server::metrics::prometheus_client::metrics::histogram::Histogram;
use facepass_server::metrics::{register, seconds_histogram};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `indexed`, `retried` (a transient failure, tried again later) or
    /// `failed` (permanent, or out of attempts).
    pub outcome: &'static str,
    /// The error code for `retried` and `failed`; empty for `indexed`.
    pub code: String,
}

pub struct Metrics {
    pub photos: Family<OutcomeLabels, Counter>,
    pub attempt_seconds: Histogram,
    pub upload_to_indexed_seconds: Histogram,
    pub faces: Counter,
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
        upload_to_indexed_seconds: register(
            "facepass_indexer_upload_to_indexed_seconds",
            "From the upload's acceptance by the gateway to the photo's faces being stored",
            seconds_histogram(),
        ),
        faces: register(
            "facepass_indexer_faces",
            "Faces stored by the indexer",
            Counter::default(),
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
