//! The per-client rate limit (`RATE_LIMIT` requests a minute, default 600), with `governor`.
//!
//! A client is its credential when it sends one (the SHA-256 of a bearer token, or a console
//! session), else its address: the TCP peer, or, when the peer is one of `TRUSTED_PROXIES`, the
//! nearest address in `X-Forwarded-For` that is not. Every answer carries
//! `X-RateLimit-Limit`, `-Remaining` and `-Reset` (seconds until the client's allowance is full
//! again); past the limit, 429 `{"error":"rate limit exceeded","retry_after":N}` with
//! `Retry-After`. Probes (`/health`, `/readyz`, `/metrics`) are not limited, and nothing is in
//! dev mode (`MOLECULE_ENV` `dev`/`development`, where the header says `unlimited`).
//!
//! The allowance is kept per replica, in memory: a client spread over N replicas by a load
//! balancer gets up to N times the limit. Sharing it through Postgres would put a write on
//! every request's path, for a limit whose job is to stop floods, which one replica's share
//! already does.
//!
//! Must not know: routes, what a credential may do.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

type Limiter = RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// The original's default, per client per minute.
pub const DEFAULT_PER_MINUTE: u32 = 600;

/// Keys kept before the idle ones are dropped.
const PRUNE_ABOVE: usize = 50_000;

/// A `TRUSTED_PROXIES` entry: an address, or a network in CIDR notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

/// A `TRUSTED_PROXIES` entry that is not an address or a network.
#[derive(Debug, thiserror::Error)]
#[error("TRUSTED_PROXIES: {0:?} is not an IP address or a CIDR network (e.g. 10.0.0.0/8)")]
pub struct BadProxy(String);

impl Network {
    fn parse(s: &str) -> Result<Self, BadProxy> {
        let bad = || BadProxy(s.to_owned());
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (
                a.parse::<IpAddr>().map_err(|_| bad())?,
                Some(p.parse::<u8>().map_err(|_| bad())?),
            ),
            None => (s.parse::<IpAddr>().map_err(|_| bad())?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        Ok(Self { addr, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Parses `TRUSTED_PROXIES`: comma-separated addresses or CIDR networks.
pub fn parse_proxies(raw: &str) -> Result<Vec<Network>, BadProxy> {
    raw.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(Network::parse)
        .collect()
}

/// The rate limit of this replica.
#[derive(Clone)]
pub struct RequestLimits {
    limiter: Option<Arc<Limiter>>,
    per_minute: u32,
    trusted: Arc<Vec<Network>>,
}

impl std::fmt::Debug for RequestLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestLimits")
            .field("per_minute", &self.limiter.as_ref().map(|_| self.per_minute))
            .finish_non_exhaustive()
    }
}

impl Default for RequestLimits {
    /// No limit (in-process tests; the binary configures it from `RATE_LIMIT`).
    fn default() -> Self {
        Self::off()
    }
}

impl RequestLimits {
    /// `per_minute` requests a minute per client (at least one).
    pub fn per_minute(per_minute: u32, trusted: Vec<Network>) -> Self {
        let n = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: Some(Arc::new(
                RateLimiter::keyed(Quota::per_minute(n)).with_middleware::<StateInformationMiddleware>(),
            )),
            per_minute: n.get(),
            trusted: Arc::new(trusted),
        }
    }

    /// No limit (dev mode).
    pub fn off() -> Self {
        Self {
            limiter: None,
            per_minute: 0,
            trusted: Arc::new(Vec::new()),
        }
    }

    /// The client's address: the peer, or past trusted proxies, the nearest untrusted
    /// `X-Forwarded-For` entry.
    fn client_ip(&self, req: &ServiceRequest) -> Option<IpAddr> {
        let peer = req.peer_addr()?.ip();
        if !self.trusted.iter().any(|n| n.contains(peer)) {
            return Some(peer);
        }
        let forwarded = req
            .headers()
            .get_all(HeaderName::from_static("x-forwarded-for"))
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse::<IpAddr>().ok())
            .collect::<Vec<_>>();
        Some(
            forwarded
                .into_iter()
                .rev()
                .find(|ip| !self.trusted.iter().any(|n| n.contains(*ip)))
                .unwrap_or(peer),
        )
    }

    fn key(&self, req: &ServiceRequest, credential: CredentialKey) -> String {
        if let Some(named) = credential(req.request()) {
            return named;
        }
        self.client_ip(req)
            .map_or_else(|| "ip:unknown".to_owned(), |ip| format!("ip:{ip}"))
    }
}

fn exempt(path: &str) -> bool {
    matches!(path, "/health" | "/readyz" | "/metrics")
}

fn value(n: impl std::fmt::Display) -> HeaderValue {
    HeaderValue::from_str(&n.to_string()).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

/// Names the credential a request presents (not the secret itself), if any: the client a
/// request counts against before its address.
pub type CredentialKey = fn(&HttpRequest) -> Option<String>;

/// The middleware: counts the request against its client, refuses past the limit.
pub async fn limit(
    limits: RequestLimits,
    credential: CredentialKey,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(limiter) = limits.limiter.clone().filter(|_| !exempt(req.path())) else {
        let mut res = next.call(req).await?.map_into_left_body();
        if limits.limiter.is_none() {
            res.headers_mut().insert(
                HeaderName::from_static("x-ratelimit-limit"),
                HeaderValue::from_static("unlimited"),
            );
        }
        return Ok(res);
    };
    let key = limits.key(&req, credential);
    let per_minute = limits.per_minute;
    let per_token = Duration::from_secs(60) / per_minute;
    let outcome = limiter.check_key(&key);
    if limiter.len() > PRUNE_ABOVE {
        limiter.retain_recent();
    }
    match outcome {
        Ok(snapshot) => {
            let remaining = snapshot.remaining_burst_capacity();
            let mut res = next.call(req).await?.map_into_left_body();
            let reset = per_token * (per_minute.saturating_sub(remaining));
            let h = res.headers_mut();
            h.insert(HeaderName::from_static("x-ratelimit-limit"), value(per_minute));
            h.insert(HeaderName::from_static("x-ratelimit-remaining"), value(remaining));
            h.insert(
                HeaderName::from_static("x-ratelimit-reset"),
                value(reset.as_secs().max(1)),
            );
            Ok(res)
        }
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let retry_after = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let retry_after = retry_after.max(1);
            tracing::info!(client = %key.split(':').next().unwrap_or(""), retry_after, "rate limit exceeded");
            metrics::counter!("molecule_http_rate_limited_total").increment(1);
            let resp = HttpResponse::build(StatusCode::TOO_MANY_REQUESTS)
                .insert_header((header::RETRY_AFTER, retry_after.to_string()))
                .insert_header(("x-ratelimit-limit", per_minute.to_string()))
                .insert_header(("x-ratelimit-remaining", "0"))
                .insert_header(("x-ratelimit-reset", retry_after.to_string()))
                .json(serde_json::json!({ "error": "rate limit exceeded", "retry_after": retry_after }));
            Ok(req.into_response(resp).map_into_right_body())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxies_parse_as_addresses_and_networks() {
        let nets = parse_proxies("10.0.0.0/8, 192.168.1.7 ,::1").unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(nets[0].contains(ip("10.20.30.40")));
        assert!(!nets[0].contains(ip("11.0.0.1")));
        assert!(nets[1].contains(ip("192.168.1.7")) && !nets[1].contains(ip("192.168.1.8")));
        assert!(nets[2].contains(ip("::1")));
        assert!(nets[0].contains(ip("::ffff:10.1.2.3")), "IPv4-mapped addresses count");
        for bad in ["10.0.0.0/33", "proxy.local", "10.0.0.1/x"] {
            assert!(
                parse_proxies(bad).unwrap_err().to_string().contains("TRUSTED_PROXIES"),
                "{bad}"
            );
        }
    }
}
