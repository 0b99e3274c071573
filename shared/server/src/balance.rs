//! Client-side load balancing over every replica of a peer service.
//!
//! HTTP/2 keeps one long-lived connection per channel, so behind a plain
//! Kubernetes Service every call of a gateway or an indexer would go to the
//! one pod its connection landed on, and extra embedder pods would get no
//! work. A [`PeerChannel`] instead resolves the peer's host name to all of its
//! addresses (a headless Service returns one A record per ready pod), keeps a
//! lazily connected channel per address, and for each request:
//!
//! - picks the less busy of two random healthy endpoints ("power of two
//!   choices" on requests in flight; with one endpoint, that one);
//! - when an endpoint cannot be connected to (refused, unreachable: a pod
//!   that is gone) ejects it for a while (1 s, doubling to 30 s while it
//!   keeps failing) and sends the same request to another endpoint, up to
//!   twice. Only a request that provably never reached a server is
//!   replayed: one cut mid-way (a pod killed while working on it) fails to
//!   the caller, who decides (the indexer retries the photo later);
//! - re-resolves the name every `resolve_interval_ms`: new pods join, gone
//!   ones leave once their requests end.
//!
//! Timeouts are not retried (a slow replica is not a dead one, and a retry
//! would double a slow request); they reach the caller as before.
//!
//! A host name that resolves to both IPv4 and IPv6 addresses (`localhost`)
//! is used over IPv4 only: services listen on one family, and half the
//! endpoints would be refused. Names are re-resolved by a task on the Tokio
//! runtime the channel was made in (every service makes its channels there).

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tonic::body::Body;
use tonic::transport::{Channel, Endpoint};
use tower::{Service, ServiceExt};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// Extra attempts on other endpoints after a connection failure.
const MAX_RETRIES: usize = 2;
const EJECT_BASE: Duration = Duration::from_secs(1);
const EJECT_MAX: Duration = Duration::from_secs(30);

/// How every endpoint's channel is built (timeouts, keep-alive).
pub type MakeEndpoint =
    Arc<dyn Fn(&str) -> Result<Endpoint, tonic::transport::Error> + Send + Sync>;

/// One replica.
struct Member {
    /// `ip:port`, or the URL for a channel given whole.
    addr: String,
    channel: Channel,
    in_flight: AtomicUsize,
    requests: AtomicU64,
    failures: AtomicU64,
    /// Consecutive connection failures; 0 = healthy.
    strikes: AtomicU32,
    ejected_until: Mutex<Option<Instant>>,
}

impl Member {
    fn new(addr: String, channel: Channel) -> Arc<Member> {
        Arc::new(Member {
            addr,
            channel,
            in_flight: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            strikes: AtomicU32::new(0),
            ejected_until: Mutex::new(None),
        })
    }

    fn ejected(&self, now: Instant) -> bool {
        matches!(*self.ejected_until.lock().unwrap(), Some(until) if until > now)
    }

    /// Ejects the endpoint; a burst of failures of requests that were in
    /// flight together counts as one strike, not one per request.
    fn eject(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut until = self.ejected_until.lock().unwrap();
        if matches!(*until, Some(t) if t > now) {
            return;
        }
        let strikes = self.strikes.fetch_add(1, Ordering::Relaxed).min(5);
        let wait = (EJECT_BASE * 2u32.pow(strikes)).min(EJECT_MAX);
        *until = Some(now + wait);
    }

    fn succeeded(&self) {
        if self.strikes.swap(0, Ordering::Relaxed) != 0 {
            *self.ejected_until.lock().unwrap() = None;
        }
    }
}

/// What one endpoint has done, for logs, metrics and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointStats {
    pub addr: String,
    pub requests: u64,
    pub failures: u64,
    pub in_flight: usize,
    pub ejected: bool,
}

struct Inner {
    /// The peer's name in logs (`detector`, `embedder`, `search`).
    peer: String,
    host: String,
    port: u16,
    scheme: String,
    make: MakeEndpoint,
    members: RwLock<Vec<Arc<Member>>>,
    /// Whether `host` is a name to re-resolve (not an IP literal, not a
    /// fixed channel).
    dynamic: bool,
    resolving: tokio::sync::Mutex<()>,
}

/// A channel to every replica of one peer; cheap to clone.
#[derive(Clone)]
pub struct PeerChannel {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PeerChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerChannel")
            .field("peer", &self.inner.peer)
            .field("host", &self.inner.host)
            .field("endpoints", &self.inner.members.read().unwrap().len())
            .finish()
    }
}

impl From<Channel> for PeerChannel {
    /// One fixed endpoint (tests and tools that built their own channel).
    fn from(channel: Channel) -> Self {
        PeerChannel {
            inner: Arc::new(Inner {
                peer: "peer".into(),
                host: String::new(),
                port: 0,
                scheme: String::new(),
                make: Arc::new(|url| Endpoint::from_shared(url.to_string())),
                members: RwLock::new(vec![Member::new("fixed".into(), channel)]),
                dynamic: false,
                resolving: tokio::sync::Mutex::new(()),
            }),
        }
    }
}

impl PeerChannel {
    /// A channel to `url`'s host: an IP literal is one endpoint; a name is
    /// resolved now (without blocking: inside a runtime the first resolution
    /// is started in the background and the first call waits for it) and
    /// every `resolve_every`.
    pub fn new(
        peer: &str,
        url: &str,
        make: MakeEndpoint,
        resolve_every: Duration,
    ) -> Result<PeerChannel, tonic::transport::Error> {
        // Validates the URL with tonic's own rules (and error type).
        let parsed = Endpoint::from_shared(url.to_string())?.uri().clone();
        let scheme = parsed.scheme_str().unwrap_or("http").to_string();
        let host = parsed
            .host()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = parsed
            .port_u16()
            .unwrap_or(if scheme == "https" { 443 } else { 80 });
        let literal = host.parse::<IpAddr>().ok();
        let inner = Arc::new(Inner {
            peer: peer.to_string(),
            host: host.clone(),
            port,
            scheme,
            make,
            members: RwLock::new(Vec::new()),
            dynamic: literal.is_none(),
            resolving: tokio::sync::Mutex::new(()),
        });
        let channel = PeerChannel { inner };
        if let Some(ip) = literal {
            let member = channel.member(SocketAddr::new(ip, port))?;
            channel.inner.members.write().unwrap().push(member);
        } else if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let weak = Arc::downgrade(&channel.inner);
            runtime.spawn(async move {
                let mut first = true;
                loop {
                    let Some(inner) = weak.upgrade() else { return };
                    let this = PeerChannel { inner };
                    if let Err(why) = this.resolve().await {
                        // First failure is normal while peers start (no pod
                        // ready yet: the headless name has no address).
                        if first {
                            tracing::info!(peer = %this.inner.peer, host = %this.inner.host, %why, "peer not resolvable yet");
                        } else {
                            tracing::warn!(peer = %this.inner.peer, host = %this.inner.host, %why, "peer re-resolution failed; keeping the known endpoints");
                        }
                    }
                    first = false;
                    drop(this);
                    tokio::time::sleep(resolve_every).await;
                }
            });
        }
        Ok(channel)
    }

    fn member(&self, addr: SocketAddr) -> Result<Arc<Member>, tonic::transport::Error> {
        let url = format!("{}://{}", self.inner.scheme, addr);
        let endpoint = (self.inner.make)(&url)?;
        Ok(Member::new(addr.to_string(), endpoint.connect_lazy()))
    }

    /// Looks the name up again and brings the endpoints in line with it.
    pub async fn resolve(&self) -> Result<(), String> {
        if !self.inner.dynamic {
            return Ok(());
        }
        let _one_at_a_time = self.inner.resolving.lock().await;
        let mut found: Vec<SocketAddr> =
            tokio::net::lookup_host((self.inner.host.as_str(), self.inner.port))
                .await
                .map_err(|e| e.to_string())?
                .collect();
        if found.iter().any(|a| a.is_ipv4()) {
            found.retain(|a| a.is_ipv4());
        }
        if found.is_empty() {
            return Err("no address".into());
        }
        let wanted: HashSet<String> = found.iter().map(|a| a.to_string()).collect();
        let mut members = self.inner.members.write().unwrap();
        let known: HashSet<String> = members.iter().map(|m| m.addr.clone()).collect();
        let before = members.len();
        members.retain(|m| wanted.contains(&m.addr));
        let mut added = Vec::new();
        for addr in found {
            let key = addr.to_string();
            if !known.contains(&key) && !added.contains(&key) {
                match self.member(addr) {
                    Ok(member) => members.push(member),
                    Err(e) => return Err(e.to_string()),
                }
                added.push(key);
            }
        }
        if !added.is_empty() || members.len() != before + added.len() {
            let now: Vec<&str> = members.iter().map(|m| m.addr.as_str()).collect();
            tracing::info!(peer = %self.inner.peer, host = %self.inner.host, endpoints = ?now, "peer endpoints changed");
        }
        Ok(())
    }

    /// Per-endpoint counts, in resolution order.
    pub fn stats(&self) -> Vec<EndpointStats> {
        let now = Instant::now();
        self.inner
            .members
            .read()
            .unwrap()
            .iter()
            .map(|m| EndpointStats {
                addr: m.addr.clone(),
                requests: m.requests.load(Ordering::Relaxed),
                failures: m.failures.load(Ordering::Relaxed),
                in_flight: m.in_flight.load(Ordering::Relaxed),
                ejected: m.ejected(now),
            })
            .collect()
    }

    /// Picks an endpoint not in `tried`: the less loaded of two random
    /// healthy ones; if every untried one is ejected, the one whose ejection
    /// ends first (a request is better tried than refused).
    fn pick(&self, tried: &[String]) -> Option<Arc<Member>> {
        let members = self.inner.members.read().unwrap();
        let now = Instant::now();
        let untried: Vec<&Arc<Member>> = members
            .iter()
            .filter(|m| !tried.contains(&m.addr))
            .collect();
        let healthy: Vec<&Arc<Member>> = untried
            .iter()
            .copied()
            .filter(|m| !m.ejected(now))
            .collect();
        let chosen = match healthy.len() {
            0 => untried
                .iter()
                .min_by_key(|m| *m.ejected_until.lock().unwrap())
                .copied(),
            1 => Some(healthy[0]),
            n => {
                let a = random_below(n);
                let mut b = random_below(n - 1);
                if b >= a {
                    b += 1;
                }
                let (x, y) = (healthy[a], healthy[b]);
                Some(
                    if y.in_flight.load(Ordering::Relaxed) < x.in_flight.load(Ordering::Relaxed) {
                        y
                    } else {
                        x
                    },
                )
            }
        };
        chosen.cloned()
    }
}

/// A cheap, well-spread random index below `n` (splitmix64 over a shared
/// counter): endpoint choice needs no cryptographic randomness.
fn random_below(n: usize) -> usize {
    use std::hash::{BuildHasher, Hasher};
    // Seeded per process, so that replicas do not all pick alike.
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    static STATE: AtomicU64 = AtomicU64::new(0);
    let seed = *SEED.get_or_init(|| {
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
    });
    let mut z = seed
        ^ STATE
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) % n as u64) as usize
}

/// Whether an error from a member's channel is a failure to connect: the
/// request never reached a server, so the endpoint is ejected and the
/// request may go to another one. Anything else (a timeout, a connection
/// cut while the request was being handled) reaches the caller unchanged.
fn never_reached_a_server(error: &BoxError) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error.as_ref());
    while let Some(e) = source {
        if e.is::<tonic::ConnectError>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// Counts a request in flight on an endpoint for as long as it lives, also
/// when the caller gives up and drops the call.
struct InFlight<'a>(&'a Member);

impl<'a> InFlight<'a> {
    fn start(member: &'a Member) -> Self {
        member.in_flight.fetch_add(1, Ordering::Relaxed);
        member.requests.fetch_add(1, Ordering::Relaxed);
        InFlight(member)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

fn unavailable(peer: &str, why: &str) -> http::Response<Body> {
    tonic::Status::unavailable(format!("{peer}: {why}")).into_http()
}

impl Service<http::Request<Body>> for PeerChannel {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Each endpoint's channel is readied inside `call` (oneshot).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            if this.inner.members.read().unwrap().is_empty() {
                if let Err(why) = this.resolve().await {
                    let msg = format!("no endpoint for {}: {why}", this.inner.host);
                    return Ok(unavailable(&this.inner.peer, &msg));
                }
            }
            // Unary requests: keep the bytes so the request can be replayed.
            let (parts, body) = request.into_parts();
            let bytes: Bytes = body.collect().await?.to_bytes();
            let mut tried: Vec<String> = Vec::new();
            loop {
                let Some(member) = this.pick(&tried) else {
                    let msg = format!("no endpoint left to try ({} tried)", tried.len());
                    return Ok(unavailable(&this.inner.peer, &msg));
                };
                let attempt =
                    http::Request::from_parts(parts.clone(), Body::new(Full::new(bytes.clone())));
                let counted = InFlight::start(&member);
                let result = member.channel.clone().oneshot(attempt).await;
                drop(counted);
                match result {
                    Ok(response) => {
                        member.succeeded();
                        return Ok(response);
                    }
                    Err(e) => {
                        let e: BoxError = e.into();
                        if !never_reached_a_server(&e) {
                            return Err(e);
                        }
                        member.eject();
                        tried.push(member.addr.clone());
                        let more = tried.len() <= MAX_RETRIES
                            && this.inner.members.read().unwrap().len() > tried.len();
                        tracing::warn!(peer = %this.inner.peer, endpoint = %member.addr, error = %e, retrying = more, "peer endpoint failed; ejected");
                        if !more {
                            return Err(e);
                        }
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make() -> MakeEndpoint {
        Arc::new(|url| Endpoint::from_shared(url.to_string()))
    }

    #[tokio::test]
    async fn an_ip_literal_is_one_fixed_endpoint() {
        let ch = PeerChannel::new(
            "detector",
            "http://127.0.0.1:50052",
            make(),
            Duration::from_secs(5),
        )
        .unwrap();
        let stats = ch.stats();
        assert_eq!(stats.len(), 1);
        assert_eq!(stats[0].addr, "127.0.0.1:50052");
        ch.resolve().await.unwrap();
        assert_eq!(ch.stats().len(), 1);
    }

    #[tokio::test]
    async fn a_name_resolves_to_its_addresses() {
        let ch = PeerChannel::new(
            "search",
            "http://localhost:50054",
            make(),
            Duration::from_secs(60),
        )
        .unwrap();
        ch.resolve().await.unwrap();
        let addrs: Vec<String> = ch.stats().into_iter().map(|s| s.addr).collect();
        assert!(addrs.iter().any(|a| a == "127.0.0.1:50054"), "{addrs:?}");
        // Resolving again changes nothing.
        ch.resolve().await.unwrap();
        assert_eq!(ch.stats().len(), addrs.len());
    }

    #[tokio::test]
    async fn picks_spread_and_skip_ejected_endpoints() {
        let ch = PeerChannel::from(Endpoint::from_static("http://127.0.0.1:1").connect_lazy());
        {
            let mut members = ch.inner.members.write().unwrap();
            members.clear();
            for port in [1, 2, 3] {
                let url = format!("http://127.0.0.1:{port}");
                let channel = Endpoint::from_shared(url).unwrap().connect_lazy();
                members.push(Member::new(format!("127.0.0.1:{port}"), channel));
            }
        }
        let mut seen = HashSet::new();
        for _ in 0..200 {
            seen.insert(ch.pick(&[]).unwrap().addr.clone());
        }
        assert_eq!(seen.len(), 3, "p2c must reach every endpoint: {seen:?}");

        // The busier of two is avoided.
        let members = ch.inner.members.read().unwrap().clone();
        members[0].in_flight.store(10, Ordering::Relaxed);
        members[1].eject();
        for _ in 0..50 {
            assert_eq!(ch.pick(&[]).unwrap().addr, "127.0.0.1:3");
        }
        // With everything else tried, an ejected endpoint is still tried.
        let tried = vec!["127.0.0.1:1".to_string(), "127.0.0.1:3".to_string()];
        assert_eq!(ch.pick(&tried).unwrap().addr, "127.0.0.1:2");
        let all: Vec<String> = members.iter().map(|m| m.addr.clone()).collect();
        assert!(ch.pick(&all).is_none());
        // Success clears the ejection.
        members[1].succeeded();
        assert!(!ch.stats()[1].ejected);
    }

    #[tokio::test]
    async fn failures_in_one_burst_are_one_strike() {
        let member = Member::new(
            "127.0.0.1:1".into(),
            Endpoint::from_static("http://127.0.0.1:1").connect_lazy(),
        );
        for _ in 0..5 {
            member.eject();
        }
        assert_eq!(member.strikes.load(Ordering::Relaxed), 1);
        assert_eq!(member.failures.load(Ordering::Relaxed), 5);
        let until = member.ejected_until.lock().unwrap().unwrap();
        assert!(
            until <= Instant::now() + EJECT_BASE * 2,
            "one strike ejects for 1 s"
        );
    }

    #[tokio::test]
    async fn a_refused_connection_is_retried_on_another_endpoint_then_reported() {
        // Nothing listens on these ports: every attempt is refused, the
        // request is tried on three endpoints, then the error comes back.
        let ch = PeerChannel::from(Endpoint::from_static("http://127.0.0.1:1").connect_lazy());
        {
            let mut members = ch.inner.members.write().unwrap();
            members.clear();
            for port in [9, 19, 29, 39] {
                let url = format!("http://127.0.0.1:{port}");
                let channel = Endpoint::from_shared(url).unwrap().connect_lazy();
                members.push(Member::new(format!("127.0.0.1:{port}"), channel));
            }
        }
        let request = http::Request::builder()
            .uri("http://x/facepass.Test/Call")
            .body(Body::new(Full::new(Bytes::from_static(b"abc"))))
            .unwrap();
        let result = ch.clone().oneshot(request).await;
        assert!(result.is_err());
        let stats = ch.stats();
        let attempted: u64 = stats.iter().map(|s| s.requests).sum();
        assert_eq!(attempted, 1 + MAX_RETRIES as u64, "{stats:?}");
        assert_eq!(stats.iter().filter(|s| s.ejected).count(), 1 + MAX_RETRIES);
    }
}
