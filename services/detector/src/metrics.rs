//! The detector's metrics (docs/operations.md, "Metrics").

use std::sync::OnceLock;

use facepass_server::metrics::prometheus_client::encoding::EncodeLabelSet;
use facepass_server::metrics::prometheus_client::metrics::counter::Counter;
use facepass_server::metrics::prometheus_client::metrics::family::Family;
use facepass_server::metrics::prometheus_client::metrics::histogram::Histogram;
use facepass_server::metrics::{register, seconds_histogram};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModeLabels {
    /// `photo` (every face) or `selfie` (the main face).
    pub mode: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LookLabels {
    /// What the small-face pass did: `skipped` (the first pass found only
    /// large faces), `regions`, `whole`, or `off` (photo not larger than
    /// `fine_pass_side`, or the pass turned off).
    pub look: &'static str,
}

pub struct Metrics {
    /// Photos by what the small-face pass did with them.
    pub fine_pass: Family<LookLabels, Counter>,
    /// Decoding a file to pixels (orientation applied).
    pub decode_seconds: Histogram,
    /// Every detection pass over one image, with alignment of its faces.
    pub detect_seconds: Family<ModeLabels, Histogram>,
    /// Rendering a photo's previews (thumb and screen JPEGs).
    pub preview_seconds: Histogram,
}

pub fn get() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| Metrics {
        fine_pass: register(
            "facepass_detector_fine_pass",
            "Photos by what the small-face pass did: skipped, regions, whole or off",
            Family::default(),
        ),
        decode_seconds: register(
            "facepass_detector_decode_seconds",
            "Decoding one photo or selfie to pixels",
            seconds_histogram(),
        ),
        detect_seconds: register(
            "facepass_detector_detect_seconds",
            "Detection (every pass, with the faces' alignment) on one decoded image, by mode",
            Family::new_with_constructor(seconds_histogram),
        ),
        preview_seconds: register(
            "facepass_detector_preview_seconds",
            "Rendering one photo's previews",
            seconds_histogram(),
        ),
    })
}
