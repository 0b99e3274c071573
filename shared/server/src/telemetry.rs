//! Structured logging. Every service logs through `tracing` with fields, as
//! JSON lines in production (`format = "json"`) or compact text for people.

use serde::{Deserialize, Serialize};
use tracing_subscriber::EnvFilter;

/// Logging settings, the `[log]` section of every service's config.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: String,
    /// An `EnvFilter` directive, e.g. `info,facepass_search=debug`.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: "text".into(),
            filter: "info".into(),
        }
    }
}

impl LogConfig {
    /// Problems with these settings, for the service's `Validate`.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !matches!(self.format.as_str(), "text" | "json") {
            problems.push(format!(
                "log.format must be text or json, not {:?}",
                self.format
            ));
        }
        if let Err(e) = EnvFilter::try_new(&self.filter) {
            problems.push(format!(
                "log.filter {:?} is not a valid filter: {e}",
                self.filter
            ));
        }
        problems
    }
}

/// Installs the global subscriber; call once at the top of `main`.
/// `service` is recorded on every line so merged logs stay readable.
pub fn init(service: &'static str, config: &LogConfig) {
    let filter = EnvFilter::try_new(&config.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(true);
    let result = if config.format == "json" {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.compact().try_init()
    };
    if result.is_ok() {
        tracing::info!(
            service,
            version = env!("CARGO_PKG_VERSION"),
            "logging started"
        );
    }
}
