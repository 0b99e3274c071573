//! Layered configuration: built-in defaults, then an optional TOML file, then
//! `FACEPASS_*` environment variables, parsed into a typed struct and
//! validated before a service starts.
//!
//! The environment is passed in as a map, so tests build configurations
//! without touching the process environment. A nested key is addressed with a
//! double underscore: `FACEPASS_SERVER__LISTEN` sets `server.listen`.
//! Variables are converted to the type of the default they replace, and
//! variables that name no known key are ignored (one environment file can feed
//! every service), while unknown keys in a file are an error.

use std::collections::BTreeMap;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The prefix of every FacePass environment variable.
pub const ENV_PREFIX: &str = "FACEPASS_";

/// A configuration that can check itself after loading.
pub trait Validate {
    /// Returns every problem found, each a short lowercase sentence.
    fn validate(&self) -> Vec<String>;
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Parse { path: String, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("invalid configuration: {0}")]
    Shape(String),
    #[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
}

/// Loads `T` from its defaults, an optional file and the given environment.
pub fn load<T>(file: Option<&Path>, env: &BTreeMap<String, String>) -> Result<T, ConfigError>
where
    T: Default + Serialize + DeserializeOwned + Validate,
{
    let defaults = toml::Value::try_from(T::default())
        .map_err(|e| ConfigError::Shape(format!("defaults do not serialise: {e}")))?;
    let mut merged = defaults.clone();

    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let from_file: toml::Value = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.display().to_string(),
            message: e.message().to_string(),
        })?;
        merge(&mut merged, from_file);
    }

    for (var, raw) in env {
        let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let path: Vec<String> = rest.split("__").map(|p| p.to_ascii_lowercase()).collect();
        let Some(template) = lookup(&defaults, &path) else {
            continue;
        };
        let value = coerce(template, raw).map_err(|message| ConfigError::Env {
            var: var.clone(),
            message,
        })?;
        set(&mut merged, &path, value);
    }

    let config: T = merged
        .try_into()
        .map_err(|e: toml::de::Error| ConfigError::Shape(e.message().to_string()))?;
    let problems = config.validate();
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError::Invalid(problems))
    }
}

/// The process environment's `FACEPASS_*` variables, for `main` only.
pub fn process_env() -> BTreeMap<String, String> {
    std::env::vars()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect()
}

fn merge(base: &mut toml::Value, overlay: toml::Value) {
    match (base, overlay) {
        (toml::Value::Table(base), toml::Value::Table(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (slot, value) => *slot = value,
    }
}

fn lookup<'a>(value: &'a toml::Value, path: &[String]) -> Option<&'a toml::Value> {
    path.iter()
        .try_fold(value, |v, key| v.as_table().and_then(|t| t.get(key)))
}

fn set(value: &mut toml::Value, path: &[String], new: toml::Value) {
    let mut slot = value;
    for key in path {
        slot = match slot.as_table_mut().and_then(|t| t.get_mut(key)) {
            Some(next) => next,
            None => return,
        };
    }
    *slot = new;
}

fn coerce(template: &toml::Value, raw: &str) -> Result<toml::Value, String> {
    Ok(match template {
        toml::Value::String(_) => toml::Value::String(raw.to_string()),
        toml::Value::Integer(_) => toml::Value::Integer(
            raw.trim()
                .parse()
                .map_err(|_| format!("expected an integer, got {raw:?}"))?,
        ),
        toml::Value::Float(_) => toml::Value::Float(
            raw.trim()
                .parse()
                .map_err(|_| format!("expected a number, got {raw:?}"))?,
        ),
        toml::Value::Boolean(_) => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => toml::Value::Boolean(true),
            "false" | "0" | "no" | "off" => toml::Value::Boolean(false),
            _ => return Err(format!("expected true or false, got {raw:?}")),
        },
        toml::Value::Array(_) => toml::Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_string()))
                .collect(),
        ),
        toml::Value::Table(_) | toml::Value::Datetime(_) => {
            return Err("this key cannot be set from the environment".to_string())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Server {
        listen: String,
        timeout_ms: u64,
    }

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Sample {
        name: String,
        workers: u32,
        verbose: bool,
        server: Server,
    }

    impl Default for Server {
        fn default() -> Self {
            Server {
                listen: "127.0.0.1:1".into(),
                timeout_ms: 1000,
            }
        }
    }

    impl Default for Sample {
        fn default() -> Self {
            Sample {
                name: "x".into(),
                workers: 2,
                verbose: false,
                server: Server::default(),
            }
        }
    }

    impl Validate for Sample {
        fn validate(&self) -> Vec<String> {
            let mut problems = Vec::new();
            if self.workers == 0 {
                problems.push("workers must be at least 1".to_string());
            }
            problems
        }
    }

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_then_file_then_env() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "name = \"file\"\nworkers = 3\n[server]\ntimeout_ms = 5\n",
        )
        .unwrap();
        let cfg: Sample = load(
            Some(&file),
            &env(&[
                ("FACEPASS_WORKERS", "7"),
                ("FACEPASS_SERVER__LISTEN", "0.0.0.0:9"),
                ("FACEPASS_UNRELATED", "ignored"),
                ("OTHER_WORKERS", "99"),
            ]),
        )
        .unwrap();
        assert_eq!(cfg.name, "file");
        assert_eq!(cfg.workers, 7);
        assert!(!cfg.verbose);
        assert_eq!(cfg.server.listen, "0.0.0.0:9");
        assert_eq!(cfg.server.timeout_ms, 5);
    }

    #[test]
    fn wrong_type_in_env_names_the_variable() {
        let err = load::<Sample>(None, &env(&[("FACEPASS_WORKERS", "many")])).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("FACEPASS_WORKERS"), "{text}");
        assert!(text.contains("integer"), "{text}");
    }

    #[test]
    fn unknown_key_in_file_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "wrokers = 3\n").unwrap();
        let err = load::<Sample>(Some(&file), &BTreeMap::new()).unwrap_err();
        assert!(err.to_string().contains("wrokers"), "{err}");
    }

    #[test]
    fn validation_problems_are_listed() {
        let err = load::<Sample>(None, &env(&[("FACEPASS_WORKERS", "0")])).unwrap_err();
        assert!(
            err.to_string().contains("workers must be at least 1"),
            "{err}"
        );
    }

    #[test]
    fn missing_file_is_a_clear_error() {
        let err = load::<Sample>(
            Some(Path::new("/nonexistent/facepass.toml")),
            &BTreeMap::new(),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/facepass.toml"),
            "{err}"
        );
    }
}
