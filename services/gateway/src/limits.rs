//! Per-client rate limits (issue 15, point 4): token buckets, one per API
//! key, per share link and per guest address. A request past its bucket is
//! OVERLOADED (REST 429, gRPC RESOURCE_EXHAUSTED), both with the time to
//! wait (`Retry-After`, `google.rpc.RetryInfo`). Each gateway counts on its
//! own: with N gateways a client may get up to N times the rate (the
//! defaults allow for that; docs/reliability.md).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use facepass_core::{Error, ErrorCode, Result};
use serde::{Deserialize, Serialize};

/// One limit: a sustained rate and the burst a quiet client may spend at
/// once. `per_second` 0 turns it off.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Rate {
    pub per_second: f64,
    pub burst: u32,
}

impl Default for Rate {
    fn default() -> Self {
        Rate {
            per_second: 0.0,
            burst: 1,
        }
    }
}

impl Rate {
    pub const fn new(per_second: f64, burst: u32) -> Self {
        Rate { per_second, burst }
    }

    pub fn problems(&self, name: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if !(self.per_second >= 0.0 && self.per_second.is_finite()) {
            problems.push(format!("{name}.per_second must be 0 (off) or positive"));
        }
        if self.burst == 0 {
            problems.push(format!("{name}.burst must be at least 1"));
        }
        problems
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets for one kind of client, keyed by the client.
pub struct Limiter {
    what: &'static str,
    rate: Rate,
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// Buckets kept before idle ones are dropped (a full bucket is the same as
/// none).
const PRUNE_AT: usize = 10_000;

impl Limiter {
    /// `what` names the limit in the error message ("API key", ...).
    pub fn new(what: &'static str, rate: Rate) -> Self {
        Limiter {
            what,
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `client`, or says how long until one is there.
    pub fn check(&self, client: &str) -> Result<()> {
        self.check_at(client, Instant::now())
    }

    fn check_at(&self, client: &str, now: Instant) -> Result<()> {
        if self.rate.per_second <= 0.0 {
            return Ok(());
        }
        let burst = f64::from(self.rate.burst);
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= PRUNE_AT {
            let full = Duration::from_secs_f64(burst / self.rate.per_second);
            buckets.retain(|_, b| now.duration_since(b.at) < full);
        }
        let bucket = buckets.entry(client.to_string()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let refill = now.duration_since(bucket.at).as_secs_f64() * self.rate.per_second;
        bucket.tokens = (bucket.tokens + refill).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = (1.0 - bucket.tokens) / self.rate.per_second;
        Err(Error::new(
            ErrorCode::Overloaded,
            format!(
                "too many requests for this {}: at most {} a second (bursts of {}); retry in {} ms",
                self.what,
                self.rate.per_second,
                self.rate.burst,
                (wait * 1000.0).ceil() as u64
            ),
        )
        .with_info(
            "retry_after_ms",
            ((wait * 1000.0).ceil() as u64).to_string(),
        ))
    }
}

/// The gateway's limiters.
pub struct RateLimiters {
    pub api_key: Limiter,
    pub guest_link: Limiter,
    pub guest_address: Limiter,
}

impl RateLimiters {
    pub fn new(limits: &crate::config::RateLimits) -> Self {
        RateLimiters {
            api_key: Limiter::new("API key", limits.api_key),
            guest_link: Limiter::new("share link", limits.guest_link),
            guest_address: Limiter::new("address", limits.guest_address),
        }
    }

    /// A guest's request on `token`'s link from `address` (when known).
    pub fn guest(&self, token: &str, address: Option<std::net::IpAddr>) -> Result<()> {
        if let Some(address) = address {
            self.guest_address.check(&address.to_string())?;
        }
        self.guest_link.check(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let limiter = Limiter::new("API key", Rate::new(2.0, 3));
        let t0 = Instant::now();
        for _ in 0..3 {
            limiter.check_at("k", t0).unwrap();
        }
        let err = limiter.check_at("k", t0).unwrap_err();
        assert_eq!(err.code, ErrorCode::Overloaded);
        assert_eq!(err.info["retry_after_ms"], "500");
        assert!(
            err.message.contains("at most 2 a second"),
            "{}",
            err.message
        );
        // Another client has its own bucket.
        limiter.check_at("other", t0).unwrap();
        // Half a second later one token is back, and only one.
        let t1 = t0 + Duration::from_millis(500);
        limiter.check_at("k", t1).unwrap();
        assert!(limiter.check_at("k", t1).is_err());
        // A long pause refills to the burst, not beyond.
        let t2 = t1 + Duration::from_secs(60);
        for _ in 0..3 {
            limiter.check_at("k", t2).unwrap();
        }
        assert!(limiter.check_at("k", t2).is_err());
    }

    #[test]
    fn a_zero_rate_is_no_limit() {
        let limiter = Limiter::new("share link", Rate::new(0.0, 1));
        for _ in 0..1000 {
            limiter.check("k").unwrap();
        }
    }
}
