//! The embedder's configuration (`FACEPASS_*`, see docs/ARCHITECTURE.md).

use facepass_core::config::Validate;
use facepass_inference::OrtConfig;
use facepass_server::auth::InternalCallers;
use facepass_server::metrics::MetricsConfig;
use facepass_server::telemetry::LogConfig;
use facepass_server::GrpcServerConfig;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EmbedderConfig {
    pub grpc: GrpcServerConfig,
    pub log: LogConfig,
    /// The Prometheus endpoint (`metrics.listen`, off when empty).
    pub metrics: MetricsConfig,
    pub ort: OrtConfig,
    /// A token any internal caller may present for any RPC (development,
    /// single-secret set-ups); empty with no `internal_callers` disables
    /// the check.
    pub internal_token: String,
    /// Each internal caller's own tokens (docs/security.md §4).
    pub internal_callers: InternalCallers,
    pub model: RecogniserModelConfig,
    pub batching: BatchingConfig,
    /// Most faces one request may carry.
    pub max_faces_per_request: usize,
    /// Licence of the model in use (from its pack), reported by GetModelInfo.
    #[serde(skip)]
    pub licence: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RecogniserModelConfig {
    /// A model pack folder (with manifest.toml); when set, it supplies the
    /// name, file, hash, dimension and normalisation below.
    pub pack: String,
    /// Recorded with every stored face; searches never mix models.
    pub name: String,
    /// ArcFace ONNX file (w600k_r50.onnx for buffalo_l).
    pub path: String,
    /// Expected SHA-256 (hex); empty skips the check.
    pub sha256: String,
    /// Embedding dimension the model outputs.
    pub dimension: usize,
    /// Pixel normalisation: (p - mean) / std.
    pub input_mean: f32,
    pub input_std: f32,
    /// The model's batch dimension is fixed at this size (0: dynamic);
    /// each batch is then fed in slices of exactly this many crops.
    pub fixed_batch: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BatchingConfig {
    /// Most faces in one inference call.
    pub max_batch: usize,
    /// How long the first face of a batch may wait for company.
    pub max_wait_us: u64,
    /// Inference threads, each with its own session.
    pub workers: usize,
    /// Threads each worker's session may use for one batch (0:
    /// `ort.intra_threads`). The interactive worker keeps
    /// `ort.intra_threads`: a selfie is one short inference a guest waits
    /// for, while the bulk batches share the node's cores with the
    /// detector.
    pub threads: usize,
    /// Faces that may wait for a worker before requests are refused.
    pub queue_capacity: usize,
    /// One more session, on an inference thread of its own at the
    /// process's CPU priority, for interactive faces only (a guest's
    /// selfie): they never wait for a bulk batch to end. It costs that
    /// session's memory (about the model file's size). Off: interactive
    /// faces go first into the workers' next batch.
    pub interactive_worker: bool,
    /// The CPU niceness (0..=19) of the workers' threads and their
    /// sessions' thread pools, which embed the faces of photos being
    /// indexed: 10 (the default) lets a selfie's detection and embedding,
    /// at the process's priority, take the cores while they run. 0 turns
    /// it off.
    pub bulk_nice: i32,
}

impl Default for RecogniserModelConfig {
    fn default() -> Self {
        RecogniserModelConfig {
            pack: String::new(),
            name: "fixture".into(),
            path: ".facepass/models/fixture/rec.onnx".into(),
            sha256: String::new(),
            dimension: 512,
            input_mean: 127.5,
            input_std: 127.5,
            fixed_batch: 0,
        }
    }
}

impl Default for BatchingConfig {
    fn default() -> Self {
        BatchingConfig {
            // On CPU iresnet50 gains nothing measurable beyond 8, and smaller
            // batches spread a group photo's faces over the workers
            // (docs/benchmarks.md). Raise it (32-128) with the CUDA provider.
            max_batch: 8,
            max_wait_us: 2_000,
            // Two batches at once of one thread each: on a node that
            // also runs the detector, a batch split over both cores waits
            // at every layer for the core the detector holds; two
            // single-threaded batches never wait for each other
            // (docs/benchmarks.md, "The whole mesh": 67-72 % of the
            // in-process throughput with 1 x 2 threads, 82-90 % with 2 x 1).
            workers: 2,
            threads: 1,
            queue_capacity: 4_096,
            interactive_worker: true,
            bulk_nice: 10,
        }
    }
}

impl Default for EmbedderConfig {
    fn default() -> Self {
        EmbedderConfig {
            grpc: GrpcServerConfig::with_listen("127.0.0.1:50053"),
            log: LogConfig::default(),
            metrics: MetricsConfig::default(),
            ort: OrtConfig::default(),
            internal_token: String::new(),
            internal_callers: InternalCallers::default(),
            model: RecogniserModelConfig::default(),
            batching: BatchingConfig::default(),
            max_faces_per_request: 512,
            licence: String::new(),
        }
    }
}

impl Validate for EmbedderConfig {
    fn validate(&self) -> Vec<String> {
        let mut problems = self.grpc.problems();
        problems.extend(self.log.problems());
        problems.extend(self.metrics.problems());
        problems.extend(self.internal_callers.problems(&self.internal_token));
        problems.extend(self.ort.problems());
        if self.model.path.is_empty() && self.model.pack.is_empty() {
            problems.push("model.path is required".into());
        }
        if self.model.dimension == 0 {
            problems.push("model.dimension must be positive".into());
        }
        if self.model.input_std == 0.0 {
            problems.push("model.input_std must not be zero".into());
        }
        if self.batching.max_batch == 0 || self.batching.workers == 0 {
            problems.push("batching.max_batch and batching.workers must be at least 1".into());
        }
        if !(0..=19).contains(&self.batching.bulk_nice) {
            problems.push("batching.bulk_nice must be within 0 and 19".into());
        }
        if self.batching.queue_capacity < self.max_faces_per_request {
            problems.push("batching.queue_capacity must hold at least one full request".into());
        }
        problems
    }
}
