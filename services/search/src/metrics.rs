//! The face store's metrics (docs/operations.md, "Metrics").

use std::sync::OnceLock;

use facepass_server::metrics::prometheus_client::encoding::EncodeLabelSet;
use facepass_server::metrics::prometheus_client::metrics::family::Family;
use facepass_server::metrics::prometheus_client::metrics::histogram::Histogram;
use facepass_server::metrics::{register, seconds_histogram};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StrategyLabels {
    /// `exact` (SQL over the event's partition), `hnsw` (the event's own
    /// index) or `memory` (this replica's in-memory copy: a cache hit).
    pub strategy: &'static str,
}

/// One event search's time (candidates and ranking), by strategy; the
/// `memory` series' count is the in-memory copy's hits.
pub fn event_seconds() -> &'static Family<StrategyLabels, Histogram> {
    static METRIC: OnceLock<Family<StrategyLabels, Histogram>> = OnceLock::new();
    METRIC.get_or_init(|| {
        register(
            "facepass_search_event_seconds",
            "One event search (candidates and ranking), by strategy; strategy=\"memory\" counts the in-memory copy's hits",
            Family::new_with_constructor(seconds_histogram),
        )
    })
}
