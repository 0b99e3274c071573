//! ONNX Runtime for FacePass: loads the runtime library at start (ort's
//! `load-dynamic`, `ORT_DYLIB_PATH` pointing at the libonnxruntime from the
//! PyPI `onnxruntime` wheel), builds sessions with deliberate thread counts,
//! and checks model files (hash, input/output signature) before use so a
//! wrong or truncated file gives a clear error instead of a crash.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::ValueType;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use ort;

pub mod pack;
pub mod priority;

/// The `[ort]` section of the detector's and embedder's configs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OrtConfig {
    /// Path of libonnxruntime.so; empty means the `ORT_DYLIB_PATH` variable.
    pub dylib_path: String,
    /// Threads one inference may use (0: ONNX Runtime's default, all cores).
    pub intra_threads: usize,
    /// `cpu` or `cuda` (needs the onnxruntime-gpu wheel's library).
    pub provider: String,
    /// With `cuda`: how cuDNN picks each convolution's algorithm: `default`
    /// (one fixed algorithm, nothing searched; FacePass's default),
    /// `heuristic` (cuDNN's ranking, asked again whenever the input shape
    /// changes) or `exhaustive` (ONNX Runtime's own default: times every
    /// algorithm for each new shape). The detector sees a new shape with
    /// nearly every photo (the fitted first pass, the small-face pass's
    /// regions) and the embedder's batches change size all the time, so a
    /// search costs more than it wins: on an H200 the pipeline ran 3.9
    /// photos/s with `default`, 2.1 with `heuristic` and 0.65 with
    /// `exhaustive`, and the embedder's batching 212 faces/s against 157
    /// with `heuristic` and NHWC. Only batches of one size all the time
    /// gain from `heuristic` (docs/benchmarks.md, "On a GPU").
    pub cuda_conv_search: String,
    /// With `cuda`: run convolutions in NHWC layout, the tensor cores' own.
    pub cuda_prefer_nhwc: bool,
}

impl Default for OrtConfig {
    fn default() -> Self {
        OrtConfig {
            dylib_path: String::new(),
            intra_threads: 0,
            provider: "cpu".into(),
            cuda_conv_search: "default".into(),
            cuda_prefer_nhwc: false,
        }
    }
}

impl OrtConfig {
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !matches!(self.provider.as_str(), "cpu" | "cuda") {
            problems.push(format!(
                "ort.provider must be cpu or cuda, not {:?}",
                self.provider
            ));
        }
        if !matches!(
            self.cuda_conv_search.as_str(),
            "exhaustive" | "heuristic" | "default"
        ) {
            problems.push(format!(
                "ort.cuda_conv_search must be exhaustive, heuristic or default, not {:?}",
                self.cuda_conv_search
            ));
        }
        problems
    }
}

/// Why a model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("onnx runtime library not configured: set ORT_DYLIB_PATH (or ort.dylib_path) to libonnxruntime.so, e.g. from `pip install onnxruntime`; scripts/setup.sh does this")]
    NoRuntimePath,
    #[error("cannot load onnx runtime from {path}: {message}")]
    Runtime { path: String, message: String },
    #[error("model file {path} is missing: {hint}")]
    Missing { path: String, hint: String },
    #[error("model file {path} cannot be read: {message}")]
    Unreadable { path: String, message: String },
    #[error("model file {path} has sha256 {actual}, expected {expected} (corrupt, truncated or another model)")]
    HashMismatch {
        path: String,
        expected: String,
        actual: String,
    },
    #[error("model file {path} is not a valid onnx model: {message}")]
    Invalid { path: String, message: String },
    #[error("model file {path} has the wrong signature: {message}")]
    Signature { path: String, message: String },
}

static ENVIRONMENT: OnceLock<Environment> = OnceLock::new();

/// Loads the ONNX Runtime library once per process and returns its
/// environment. Later calls return the first environment.
pub fn environment(
    config: &OrtConfig,
    env_dylib: Option<&str>,
) -> Result<&'static Environment, ModelError> {
    if let Some(env) = ENVIRONMENT.get() {
        return Ok(env);
    }
    let path = if config.dylib_path.is_empty() {
        env_dylib
            .filter(|p| !p.is_empty())
            .ok_or(ModelError::NoRuntimePath)?
            .to_string()
    } else {
        config.dylib_path.clone()
    };
    if !Path::new(&path).is_file() {
        return Err(ModelError::Runtime {
            path,
            message: "no such file".into(),
        });
    }
    let runtime_error = |message: String| ModelError::Runtime {
        path: path.clone(),
        message,
    };
    let builder = ort::init_from(&path).map_err(|e| runtime_error(e.to_string()))?;
    let environment = builder
        .with_name("facepass")
        .with_telemetry(false)
        .build()
        .map_err(|e| runtime_error(e.to_string()))?;
    tracing::info!(path = %path, "onnx runtime loaded");
    Ok(ENVIRONMENT.get_or_init(|| environment))
}

/// The expected shape of one model input or output: `None` for a dynamic
/// dimension that may be anything.
#[derive(Debug, Clone)]
pub struct TensorSpec {
    pub dims: Vec<Option<i64>>,
    /// Also accept the same shape with a leading batch dimension of 1
    /// (`[1, ...dims]`): the values are laid out identically.
    pub optional_batch: bool,
}

impl TensorSpec {
    pub fn new(dims: &[Option<i64>]) -> Self {
        TensorSpec {
            dims: dims.to_vec(),
            optional_batch: false,
        }
    }

    /// Accepts `[1, ...dims]` as well as `dims`.
    pub fn with_optional_batch(mut self) -> Self {
        self.optional_batch = true;
        self
    }
}

/// What a model file must be before a session is built from it.
#[derive(Debug, Clone)]
pub struct ModelCheck {
    pub path: PathBuf,
    /// Lowercase hex SHA-256; empty skips the check (generated test models).
    pub sha256: String,
    pub inputs: Vec<TensorSpec>,
    /// Outputs, by position; their count must match exactly.
    pub outputs: Vec<TensorSpec>,
    /// Shown when the file is missing.
    pub hint: String,
}

/// SHA-256 of a file, lowercase hex, streamed.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Hands the heap memory that building sessions freed back to the
/// operating system; returns whether there was any to hand back. ONNX
/// Runtime parses the whole model file and copies its weights while it
/// optimises the graph; glibc keeps what it freed for the next allocation,
/// so without this each recogniser session leaves about 110 MB of freed
/// but resident memory behind (ResNet-50, docs/benchmarks.md "The whole
/// mesh"). Call it once the sessions are built. Does nothing off glibc.
pub fn release_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim has no preconditions; it only returns free
        // pages of the allocator's own heaps to the kernel.
        unsafe { libc::malloc_trim(0) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// Checks the file and builds a session with `intra_threads` threads.
pub fn load_session(
    env: &Environment,
    check: &ModelCheck,
    intra_threads: usize,
    ort_config: &OrtConfig,
) -> Result<Session, ModelError> {
    load_session_spinning(env, check, intra_threads, ort_config, true)
}

/// [`load_session`]; with `spinning` false the session's threads sleep as
/// soon as an inference ends instead of spinning a while for the next one
/// (ONNX Runtime's default): for a session that runs now and then (a
/// guest's selfie) beside others that have the cores the rest of the time.
pub fn load_session_spinning(
    env: &Environment,
    check: &ModelCheck,
    intra_threads: usize,
    ort_config: &OrtConfig,
    spinning: bool,
) -> Result<Session, ModelError> {
    let path = check.path.display().to_string();
    if !check.path.is_file() {
        return Err(ModelError::Missing {
            path,
            hint: check.hint.clone(),
        });
    }
    if !check.sha256.is_empty() {
        let actual = sha256_file(&check.path).map_err(|e| ModelError::Unreadable {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if !actual.eq_ignore_ascii_case(&check.sha256) {
            return Err(ModelError::HashMismatch {
                path,
                expected: check.sha256.clone(),
                actual,
            });
        }
    }
    let invalid = |message: String| ModelError::Invalid {
        path: path.clone(),
        message,
    };
    let mut builder = Session::builder(env)
        .map_err(|e| invalid(e.to_string()))?
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(|e| invalid(e.to_string()))?;
    if intra_threads > 0 {
        builder = builder
            .with_intra_threads(intra_threads)
            .map_err(|e| invalid(e.to_string()))?;
    }
    if !spinning {
        builder = builder
            .with_intra_op_spinning(false)
            .map_err(|e| invalid(e.to_string()))?;
    }
    if ort_config.provider == "cuda" {
        #[cfg(feature = "cuda")]
        {
            use ort::ep::cuda::ConvAlgorithmSearch;
            let search = match ort_config.cuda_conv_search.as_str() {
                "heuristic" => ConvAlgorithmSearch::Heuristic,
                "exhaustive" => ConvAlgorithmSearch::Exhaustive,
                _ => ConvAlgorithmSearch::Default,
            };
            let cuda = ort::ep::CUDA::default()
                .with_conv_algorithm_search(search)
                .with_prefer_nhwc(ort_config.cuda_prefer_nhwc);
            builder = builder
                .with_execution_providers([cuda.build().error_on_failure()])
                .map_err(|e| invalid(e.to_string()))?;
        }
        #[cfg(not(feature = "cuda"))]
        return Err(invalid(
            "ort.provider is cuda but this binary was built without the `cuda` feature".into(),
        ));
    }
    let session = builder
        .commit_from_file(&check.path)
        .map_err(|e| invalid(e.to_string()))?;
    verify_signature(&session, check).map_err(|message| ModelError::Signature { path, message })?;
    Ok(session)
}

fn verify_signature(session: &Session, check: &ModelCheck) -> Result<(), String> {
    let compare = |kind: &str, actual: &[ort::value::Outlet], expected: &[TensorSpec]| {
        if actual.len() != expected.len() {
            return Err(format!(
                "{} {kind}s, expected {}",
                actual.len(),
                expected.len()
            ));
        }
        for (i, (outlet, spec)) in actual.iter().zip(expected).enumerate() {
            let ValueType::Tensor { shape, .. } = outlet.dtype() else {
                return Err(format!("{kind} {i} ({}) is not a tensor", outlet.name()));
            };
            let mut dims: &[i64] = shape;
            if spec.optional_batch && dims.len() == spec.dims.len() + 1 && matches!(dims[0], 1 | -1)
            {
                dims = &dims[1..];
            }
            if dims.len() != spec.dims.len() {
                return Err(format!(
                    "{kind} {i} ({}) has shape {dims:?}, expected {} dimensions",
                    outlet.name(),
                    spec.dims.len()
                ));
            }
            for (got, want) in dims.iter().zip(&spec.dims) {
                if let Some(want) = want {
                    // -1 is a dynamic dimension: it accepts the size we will feed.
                    if *got != *want && *got != -1 {
                        return Err(format!(
                            "{kind} {i} ({}) has shape {dims:?}, expected {:?}",
                            outlet.name(),
                            spec.dims
                        ));
                    }
                }
            }
        }
        Ok(())
    };
    compare("input", session.inputs(), &check.inputs)?;
    compare("output", session.outputs(), &check.outputs)?;
    Ok(())
}

#[cfg(test)]
mod config_tests {
    use super::OrtConfig;

    #[test]
    fn cuda_options_are_checked() {
        assert!(OrtConfig::default().problems().is_empty());
        assert_eq!(OrtConfig::default().cuda_conv_search, "default");
        for search in ["default", "heuristic", "exhaustive"] {
            let config = OrtConfig {
                cuda_conv_search: search.into(),
                ..OrtConfig::default()
            };
            assert!(config.problems().is_empty(), "{search}");
        }
        let config = OrtConfig {
            cuda_conv_search: "fastest".into(),
            provider: "tpu".into(),
            ..OrtConfig::default()
        };
        let problems = config.problems().join("; ");
        assert!(
            problems.contains("ort.provider must be cpu or cuda"),
            "{problems}"
        );
        assert!(
            problems.contains(
                "ort.cuda_conv_search must be exhaustive, heuristic or default, not \"fastest\""
            ),
            "{problems}"
        );
    }
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    fn resident_mib() -> f64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        let kib: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kib / 1024.0
    }

    #[test]
    fn freed_heap_memory_goes_back_to_the_system() {
        // glibc shrinks a heap on its own when the free space sits at its
        // top, which would make this test pass without malloc_trim (and fail
        // to show anything): switch that off for this process, and keep the
        // last blocks allocated so the freed ones lie below a live block, as
        // ONNX Runtime's freed model copies lie below its live weights.
        // SAFETY: mallopt only changes the allocator's tuning parameters.
        assert_eq!(
            unsafe { libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX) },
            1
        );
        let baseline = resident_mib();
        // 64 MiB in blocks small enough for the heap (not mmap), each
        // written with a non-zero byte so every page is resident.
        let mut blocks: Vec<Vec<u8>> = (0..16_384)
            .map(|i| vec![(i % 255 + 1) as u8; 4096])
            .collect();
        let pinned = blocks.split_off(blocks.len() - 64);
        drop(blocks);
        let before = resident_mib();
        assert!(
            before - baseline > 48.0,
            "resident {baseline:.1} MiB -> {before:.1} MiB: the freed blocks were not kept, nothing to test"
        );
        assert!(super::release_freed_memory(), "nothing was released");
        let after = resident_mib();
        assert!(
            before - after > 48.0,
            "resident {before:.1} MiB -> {after:.1} MiB: the freed 64 MiB stayed"
        );
        assert!(pinned.iter().all(|b| b[0] != 0));
    }
}
