//! Where photos live: the local filesystem (the default) or an S3-protocol
//! bucket (AWS, Beget S3, MinIO, Yandex Object Storage, …). The gateway and the
//! detector open the same store from the same two settings:
//!
//! ```toml
//! storage_root = "s3://facepass-photos/prod"   # or a path: ".facepass/objects"
//! [s3]
//! endpoint = "https://s3.ru1.storage.beget.cloud"
//! region = "ru-1"
//! path_style = true
//! ```
//!
//! Credentials never go in the config file: they come from the standard
//! `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (/ `AWS_SESSION_TOKEN`)
//! variables, or from the pod's web identity (`AWS_WEB_IDENTITY_TOKEN_FILE`,
//! `AWS_ROLE_ARN`) on AWS.

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::aws::AmazonS3ConfigKey;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{BackoffConfig, ClientConfigKey, ObjectStore, RetryConfig};
use serde::{Deserialize, Serialize};

/// The `[s3]` section: used only when `storage_root` is an `s3://` URL.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    /// The S3 endpoint, e.g. `https://s3.ru1.storage.beget.cloud` or
    /// `http://minio:9000`; empty for AWS itself (derived from `region`), or
    /// the standard `AWS_ENDPOINT` variable when it is set.
    pub endpoint: String,
    /// The bucket's region (`ru-1` on Beget, `us-east-1` for MinIO).
    pub region: String,
    /// `true`: `https://endpoint/bucket/key` (MinIO, Beget, most non-AWS
    /// servers); `false`: `https://bucket.endpoint/key` (AWS's default).
    pub path_style: bool,
    /// Allow a plain `http://` endpoint (a MinIO inside the cluster).
    pub allow_http: bool,
    /// One request's limit; a request past it is retried.
    pub request_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    /// Retries of a failed request (5xx, timeouts, refused connections) before
    /// the operation fails with STORAGE_UNAVAILABLE. Kept small: the indexer
    /// retries whole photos with back-off, and an upload should fail in seconds,
    /// not minutes, while the store is down.
    pub max_retries: usize,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            endpoint: String::new(),
            region: "us-east-1".into(),
            path_style: true,
            allow_http: false,
            request_timeout_ms: 30_000,
            connect_timeout_ms: 3_000,
            max_retries: 2,
        }
    }
}

/// What `storage_root` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A folder on the local filesystem.
    Local(String),
    /// A bucket, and an optional key prefix inside it (no slashes at the ends).
    S3 { bucket: String, prefix: String },
}

impl Location {
    pub fn parse(root: &str) -> Result<Location, String> {
        if root.trim().is_empty() {
            return Err("storage_root is empty".into());
        }
        let Some(rest) = root.strip_prefix("s3://") else {
            if root.contains("://") {
                return Err(format!(
                    "storage_root {root:?}: only a path or an s3://bucket/prefix URL is supported"
                ));
            }
            return Ok(Location::Local(root.to_string()));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && !bucket.starts_with(['-', '.'])
            && !bucket.ends_with(['-', '.']);
        if !valid_bucket {
            return Err(format!(
                "storage_root {root:?}: {bucket:?} is not a valid bucket name \
                 (3-63 lowercase letters, digits, '-' and '.')"
            ));
        }
        let prefix = prefix.trim_matches('/').to_string();
        if !prefix.is_empty() && ObjectPath::parse(&prefix).is_err() {
            return Err(format!(
                "storage_root {root:?}: {prefix:?} is not a valid key prefix"
            ));
        }
        Ok(Location::S3 {
            bucket: bucket.to_string(),
            prefix,
        })
    }

    /// For logs and health messages: never contains credentials.
    pub fn describe(&self) -> String {
        match self {
            Location::Local(path) => format!("folder {path}"),
            Location::S3 { bucket, prefix } if prefix.is_empty() => format!("s3://{bucket}"),
            Location::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}"),
        }
    }
}

/// Problems with `storage_root` and `[s3]`, for the services' `Validate`.
pub fn problems(root: &str, s3: &S3Config) -> Vec<String> {
    let mut problems = Vec::new();
    match Location::parse(root) {
        Err(why) => problems.push(why),
        Ok(Location::S3 { .. }) => {
            let http = s3.endpoint.starts_with("https://") || s3.endpoint.starts_with("http://");
            if !s3.endpoint.is_empty() && !http {
                problems.push(format!(
                    "s3.endpoint {:?} is not an http(s) URL",
                    s3.endpoint
                ));
            }
            if s3.endpoint.starts_with("http://") && !s3.allow_http {
                problems.push(format!(
                    "s3.endpoint {:?} is plain http: set s3.allow_http = true to allow it",
                    s3.endpoint
                ));
            }
            if s3.region.is_empty() {
                problems.push("s3.region is empty (MinIO accepts us-east-1)".into());
            }
            if s3.request_timeout_ms == 0 || s3.connect_timeout_ms == 0 {
                problems.push(
                    "s3.request_timeout_ms and s3.connect_timeout_ms must be positive".into(),
                );
            }
        }
        Ok(Location::Local(_)) => {}
    }
    problems
}

/// An opened store and what it is.
pub struct Storage {
    pub store: Arc<dyn ObjectStore>,
    pub location: Location,
}

/// Opens the store `root` names. For a local folder it is created if missing;
/// `cleanup` also removes folders a delete leaves empty (the gateway deletes).
/// Opening an S3 store makes no request: reachability is [`probe`]'s job.
pub fn open(root: &str, s3: &S3Config, cleanup: bool) -> anyhow::Result<Storage> {
    let location = Location::parse(root).map_err(anyhow::Error::msg)?;
    let store: Arc<dyn ObjectStore> = match &location {
        Location::Local(path) => {
            std::fs::create_dir_all(path)
                .map_err(|e| anyhow::anyhow!("cannot create storage root {path}: {e}"))?;
            Arc::new(LocalFileSystem::new_with_prefix(path)?.with_automatic_cleanup(cleanup))
        }
        Location::S3 { bucket, prefix } => {
            // from_env: the AWS_* credentials (keys, session token, web identity).
            let mut builder = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_region(&s3.region)
                .with_virtual_hosted_style_request(!s3.path_style)
                .with_allow_http(s3.allow_http)
                // Set key by key: the client options taken from the
                // environment (a proxy, say) stay.
                .with_config(
                    AmazonS3ConfigKey::Client(ClientConfigKey::Timeout),
                    format!("{}ms", s3.request_timeout_ms),
                )
                .with_config(
                    AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
                    format!("{}ms", s3.connect_timeout_ms),
                )
                .with_retry(RetryConfig {
                    backoff: BackoffConfig {
                        init_backoff: Duration::from_millis(100),
                        max_backoff: Duration::from_secs(2),
                        base: 2.0,
                    },
                    max_retries: s3.max_retries,
                    retry_timeout: Duration::from_millis(s3.request_timeout_ms * 2),
                });
            if !s3.endpoint.is_empty() {
                builder = builder.with_endpoint(&s3.endpoint);
            }
            let bucket_store: Arc<dyn ObjectStore> = Arc::new(builder.build()?);
            if prefix.is_empty() {
                bucket_store
            } else {
                Arc::new(PrefixStore::new(bucket_store, prefix.as_str()))
            }
        }
    };
    Ok(Storage { store, location })
}

/// Whether the store answers: a HEAD of a key that never exists. "Not found"
/// means it answered; anything else (refused, timed out, access denied, no
/// such bucket) is the reason it is unusable, for health and logs.
pub async fn probe(storage: &Storage) -> Result<(), String> {
    if let Location::Local(path) = &storage.location {
        if !std::path::Path::new(path).is_dir() {
            return Err(format!("photo storage folder {path} is not reachable"));
        }
        return Ok(());
    }
    let key = ObjectPath::from(".facepass-probe");
    match tokio::time::timeout(Duration::from_secs(10), storage.store.head(&key)).await {
        Ok(Ok(_)) | Ok(Err(object_store::Error::NotFound { .. })) => Ok(()),
        // A role without s3:ListBucket gets 403 for a missing key: the store
        // answered, and reading real keys may well be allowed.
        Ok(Err(object_store::Error::PermissionDenied { .. })) => {
            tracing::info!(storage = %storage.location.describe(), "photo storage answers (403 for a missing key: no ListBucket permission)");
            Ok(())
        }
        Ok(Err(e)) => Err(format!(
            "photo storage {} is not reachable: {e}",
            storage.location.describe()
        )),
        Err(_) => Err(format!(
            "photo storage {} did not answer in 10 s",
            storage.location.describe()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths_and_buckets() {
        assert_eq!(
            Location::parse(".facepass/objects"),
            Ok(Location::Local(".facepass/objects".into()))
        );
        assert_eq!(
            Location::parse("s3://facepass-photos"),
            Ok(Location::S3 {
                bucket: "facepass-photos".into(),
                prefix: String::new()
            })
        );
        assert_eq!(
            Location::parse("s3://facepass-photos/prod/eu/"),
            Ok(Location::S3 {
                bucket: "facepass-photos".into(),
                prefix: "prod/eu".into()
            })
        );
        for bad in [
            "",
            "s3://",
            "s3://Upper",
            "s3://ab",
            "gs://bucket",
            "s3://-x-y",
        ] {
            assert!(Location::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn s3_settings_are_checked_only_for_s3() {
        let mut s3 = S3Config {
            endpoint: "http://127.0.0.1:9000".into(),
            ..S3Config::default()
        };
        assert!(problems(".facepass/objects", &s3).is_empty());
        let found = problems("s3://photos", &s3);
        assert!(found[0].contains("allow_http"), "{found:?}");
        s3.allow_http = true;
        assert!(problems("s3://photos", &s3).is_empty());
        s3.endpoint = "minio:9000".into();
        assert!(problems("s3://photos", &s3)[0].contains("not an http(s) URL"));
    }

    #[test]
    fn describes_without_secrets() {
        let l = Location::parse("s3://photos/prod").unwrap();
        assert_eq!(l.describe(), "s3://photos/prod");
    }
}
