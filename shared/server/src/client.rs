//! Channels to other FacePass services: lazy connections with connect and
//! request timeouts, so a service starts even while its peers are down and
//! its health reports that honestly; balanced over every address the peer's
//! name resolves to (balance.rs).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use std::sync::Arc;

use tonic::transport::Endpoint;

use crate::balance::PeerChannel;
use crate::tls::ClientTls;

/// How to reach one peer service.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PeerConfig {
    /// `http://host:port`, or `https://host:port` with `tls`.
    pub url: String,
    pub connect_timeout_ms: u64,
    pub request_timeout_ms: u64,
    /// How often the host name is looked up again, so that replicas that
    /// came or went (a Kubernetes headless Service's pods) are used or
    /// dropped. IP addresses are not looked up.
    pub resolve_interval_ms: u64,
    /// For an `https://` URL: the CA to trust, and this service's own
    /// certificate when the peer requires one.
    pub tls: ClientTls,
}

impl PeerConfig {
    pub fn new(url: &str, request_timeout_ms: u64) -> Self {
        PeerConfig {
            url: url.to_string(),
            connect_timeout_ms: 2_000,
            request_timeout_ms,
            resolve_interval_ms: 5_000,
            tls: ClientTls::default(),
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
        if self.resolve_interval_ms < 100 {
            problems.push(format!("{name}.resolve_interval_ms must be at least 100"));
        }
        problems.extend(self.tls.problems(name, &self.url));
        problems
    }

    /// A lazily connecting channel to every replica of the peer `name`;
    /// fails only on a malformed URL.
    pub fn channel_named(&self, name: &str) -> anyhow::Result<PeerChannel> {
        let connect = Duration::from_millis(self.connect_timeout_ms);
        let request = Duration::from_millis(self.request_timeout_ms);
        // Over TLS the peer's certificate must name the host of the URL,
        // although each replica is dialled by its address.
        let tls = if self.url.starts_with("https://") {
            let host = Endpoint::from_shared(self.url.clone())?
                .uri()
                .host()
                .unwrap_or_default()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            Some(self.tls.tonic(&host)?)
        } else {
            None
        };
        let make = Arc::new(move |url: &str| {
            let mut endpoint = Endpoint::from_shared(url.to_string())?
                .connect_timeout(connect)
                .timeout(request)
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(30))
                .keep_alive_while_idle(true);
            if let Some(tls) = &tls {
                endpoint = endpoint.tls_config(tls.clone())?;
            }
            Ok(endpoint)
        });
        Ok(PeerChannel::new(
            name,
            &self.url,
            make,
            Duration::from_millis(self.resolve_interval_ms),
        )?)
    }

    /// [`PeerConfig::channel_named`] for a peer named by its URL.
    pub fn channel(&self) -> anyhow::Result<PeerChannel> {
        self.channel_named(&self.url)
    }
}

impl Default for PeerConfig {
    fn default() -> Self {
        PeerConfig::new("http://127.0.0.1:0", 30_000)
    }
}
