//! Channels to other FacePass services: lazy connections with connect and
//! request timeouts, so a service starts even while its peers are down and
//! its health reports that honestly.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tonic::transport::{Channel, Endpoint};

/// How to reach one peer service.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PeerConfig {
    /// `http://host:port`.
    pub url: String,
    pub connect_timeout_ms: u64,
    pub request_timeout_ms: u64,
}

impl PeerConfig {
    pub fn new(url: &str, request_timeout_ms: u64) -> Self {
        PeerConfig {
            url: url.to_string(),
            connect_timeout_ms: 2_000,
            request_timeout_ms,
        }
    }

    pub fn problems(&self, name: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if Endpoint::from_shared(self.url.clone()).is_err() || !self.url.starts_with("http") {
            problems.push(format!("{name}.url {:?} is not an http(s) URL", self.url));
        }
        if self.request_timeout_ms == 0 {
            problems.push(format!("{name}.request_timeout_ms must be positive"));
        }
        problems
    }

    /// A lazily connecting channel; fails only on a malformed URL.
    pub fn channel(&self) -> Result<Channel, tonic::transport::Error> {
        Ok(Endpoint::from_shared(self.url.clone())?
            .connect_timeout(Duration::from_millis(self.connect_timeout_ms))
            .timeout(Duration::from_millis(self.request_timeout_ms))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true)
            .connect_lazy())
    }
}

impl Default for PeerConfig {
    fn default() -> Self {
        PeerConfig::new("http://127.0.0.1:0", 30_000)
    }
}
