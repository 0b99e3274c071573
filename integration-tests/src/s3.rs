//! A real S3-protocol server for the tests: moto in server mode (PyPI
//! `moto[server]`, in the project's venv), on a free port, for one test.
//! Requests to it are plain path-style HTTP; moto does not check signatures,
//! so the tests' own requests (creating the bucket, listing what is left)
//! need none, while the services sign theirs as with any S3.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::{free_port, repo_root};

pub struct S3Server {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

fn venv() -> PathBuf {
    std::env::var_os("FACEPASS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv"))
}

impl S3Server {
    /// Starts moto and waits until it answers.
    pub async fn start(log_dir: &std::path::Path) -> anyhow::Result<S3Server> {
        let bin = venv().join("bin/moto_server");
        if !bin.exists() {
            bail!(
                "{} is missing: the S3 tests need moto[server] (bash scripts/lib/deps.sh venv)",
                bin.display()
            );
        }
        let port = free_port();
        let log = log_dir.join("moto.log");
        let file = std::fs::File::create(&log)?;
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut server = S3Server { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(response) = reqwest::get(server.url()).await {
                if response.status().is_success() {
                    return Ok(server);
                }
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                bail!("moto_server exited ({status}):\n{}", server.log_tail());
            }
            if Instant::now() > deadline {
                bail!("moto_server did not answer in 60 s:\n{}", server.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    pub async fn create_bucket(&self, bucket: &str) -> anyhow::Result<()> {
        let response = reqwest::Client::new()
            .put(format!("{}/{bucket}", self.url()))
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "create bucket: {}",
            response.status()
        );
        Ok(())
    }

    /// Puts an object directly (as Pixora would before registering it).
    pub async fn put(&self, bucket: &str, key: &str, bytes: Vec<u8>) -> anyhow::Result<()> {
        let response = reqwest::Client::new()
            .put(format!("{}/{bucket}/{key}", self.url()))
            // Not a form: moto's web framework would swallow a form body.
            .header("content-type", "application/octet-stream")
            .body(bytes)
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "put {key}: {}",
            response.status()
        );
        Ok(())
    }

    /// The keys under `prefix` (ListObjectsV2, up to 1000).
    pub async fn keys(&self, bucket: &str, prefix: &str) -> anyhow::Result<Vec<String>> {
        let response = reqwest::Client::new()
            .get(format!("{}/{bucket}", self.url()))
            .query(&[("list-type", "2"), ("prefix", prefix)])
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "list: {}",
            response.status()
        );
        let xml = response.text().await?;
        Ok(xml
            .split("<Key>")
            .skip(1)
            .filter_map(|part| part.split_once("</Key>").map(|(k, _)| k.to_string()))
            .collect())
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
