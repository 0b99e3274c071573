//! Where a guest's wait goes (docs/operations.md, "Metrics"): each stage of
//! a selfie search as its caller sees it, queues and network included.

use std::sync::OnceLock;
use std::time::Instant;

use facepass_server::metrics::prometheus_client::encoding::EncodeLabelSet;
use facepass_server::metrics::prometheus_client::metrics::family::Family;
use facepass_server::metrics::prometheus_client::metrics::histogram::Histogram;
use facepass_server::metrics::{register, seconds_histogram};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabels {
    /// `detect` (the detector: decode, detection, alignment), `embed` (the
    /// embedder) or `search` (the face store's search and ranking).
    pub stage: &'static str,
}

fn stages() -> &'static Family<StageLabels, Histogram> {
    static STAGES: OnceLock<Family<StageLabels, Histogram>> = OnceLock::new();
    STAGES.get_or_init(|| {
        register(
            "facepass_selfie_stage_seconds",
            "One stage of a selfie search as the gateway waits for it: detect, embed or search",
            Family::new_with_constructor(seconds_histogram),
        )
    })
}

/// Records `stage` as having taken the time since `started`.
pub fn selfie_stage(stage: &'static str, started: Instant) {
    stages()
        .get_or_create(&StageLabels { stage })
        .observe(started.elapsed().as_secs_f64());
}
