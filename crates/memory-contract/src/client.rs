//! The plugin client: every endpoint, a per-request timeout, a circuit breaker, capability
//! negotiation, and the plugin's JSON errors as typed errors.
//!
//! Breaker: 3 consecutive failures (transport errors, timeouts, 5xx) open it for 60 s, during
//! which calls fail fast with [`ClientError::BreakerOpen`]. A 4xx is the caller's mistake and
//! never counts. After the cooldown one call probes: success closes the breaker, failure opens
//! it for another cooldown.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::{
    ErrorBody, ErrorCode, ForgetRequest, HealthResponse, Invalid, MemoryCapability, MemoryWrite, MemoryWriteResponse,
    Namespace, NamespacePatch, NamespaceUpsert, SearchRequest, SearchResponse, validate_namespace_name,
};

/// The contract operation a request is, as the `op` label of
/// `molecule_memory_plugin_calls_total` (with `outcome`: ok, refused (4xx), failed (transport,
/// 5xx, bad body) or breaker_open).
fn operation(method: &Method, path: &str) -> &'static str {
    match (method.as_str(), path) {
        (_, "/v1/health") => "health",
        (_, "/v1/search") => "search",
        (_, p) if p.starts_with("/v1/memories/") => "forget",
        (_, p) if p.ends_with("/memories") => "commit",
        ("PUT", _) => "upsert_namespace",
        ("PATCH", _) => "patch_namespace",
        ("DELETE", _) => "delete_namespace",
        _ => "other",
    }
}

/// Where the plugin is and how patient to be with it.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `MEMORY_PLUGIN_URL` (a trailing `/` is ignored).
    pub base_url: String,
    /// `MEMORY_PLUGIN_TIMEOUT`: per request, connect included.
    pub timeout: Duration,
    /// Consecutive failures that open the breaker.
    pub failure_threshold: u32,
    /// How long an open breaker fails fast.
    pub cooldown: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            base_url: "http://localhost:9100".into(),
            timeout: Duration::from_secs(2),
            failure_threshold: 3,
            cooldown: Duration::from_secs(60),
        }
    }
}

/// Why a call did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The request broke the contract; nothing was sent.
    #[error("invalid memory plugin request: {0}")]
    Invalid(#[from] Invalid),
    /// The configured base URL cannot be one (the client is not made).
    #[error("memory plugin URL {url:?} cannot be used: {reason} (MEMORY_PLUGIN_URL)")]
    BadUrl { url: String, reason: String },
    /// The breaker is open after repeated failures; nothing was sent.
    #[error("memory plugin at {url} is failing; calls are refused for another {retry_in:?} (circuit breaker open)")]
    BreakerOpen { url: String, retry_in: Duration },
    /// No answer: connection refused, reset or timed out.
    #[error("memory plugin at {url} did not answer: {message}")]
    Transport { url: String, message: String },
    /// The plugin answered with an error. A JSON `Error` body is kept as sent; otherwise the
    /// code follows the status and the message quotes the start of the body.
    #[error("{body} (HTTP {status})")]
    Plugin { status: u16, body: ErrorBody },
    /// A 2xx whose body is not what the contract promises.
    #[error("memory plugin answered {status} with a body that breaks the contract: {message}")]
    Decode { status: u16, message: String },
}

impl ClientError {
    /// The contract error code, when the plugin sent one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Plugin { body, .. } => Some(body.code),
            _ => None,
        }
    }

    /// Whether this counts towards opening the breaker.
    fn is_failure(&self) -> bool {
        match self {
            Self::Transport { .. } | Self::Decode { .. } => true,
            Self::Plugin { status, .. } => *status >= 500,
            Self::Invalid(_) | Self::BadUrl { .. } | Self::BreakerOpen { .. } => false,
        }
    }
}

#[derive(Debug, Default)]
struct Breaker {
    consecutive_failures: u32,
    open_until: Option<Instant>,
    /// When the current probe started; a probe whose caller went away is given up after a
    /// timeout so the breaker cannot stay stuck.
    probing_since: Option<Instant>,
}

/// A client for one plugin. Cheap to share (`Arc`), safe to call concurrently.
#[derive(Debug)]
pub struct PluginClient {
    http: reqwest::Client,
    base: String,
    /// `base`, parsed once: each call only sets its path on a copy.
    base_url: reqwest::Url,
    config: ClientConfig,
    breaker: Mutex<Breaker>,
    capabilities: Mutex<Option<HashSet<MemoryCapability>>>,
}

/// Keeps the start of a body for an error message.
fn excerpt(body: &str) -> String {
    const MAX: usize = 256;
    if body.len() <= MAX {
        return body.to_owned();
    }
    let mut end = MAX;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &body[..end])
}

impl PluginClient {
    pub fn new(config: ClientConfig) -> Result<Self, ClientError> {
        let base = config.base_url.trim_end_matches('/').to_owned();
        let base_url = reqwest::Url::parse(&base)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host() && u.query().is_none())
            .ok_or_else(|| ClientError::BadUrl {
                url: base.clone(),
                reason: "give an http(s) URL without a query, like http://127.0.0.1:9100".into(),
            })?;
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            // The contract has no redirects: a 3xx is the plugin's answer, reported with its
            // status, and a memory is never sent on to wherever it points.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ClientError::Transport {
                url: base.clone(),
                message: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(Self {
            http,
            base,
            base_url,
            config,
            breaker: Mutex::new(Breaker::default()),
            capabilities: Mutex::new(None),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn admit(&self) -> Result<(), ClientError> {
        let Ok(mut b) = self.breaker.lock() else { return Ok(()) };
        let Some(until) = b.open_until else { return Ok(()) };
        let now = Instant::now();
        let probe_running = b
            .probing_since
            .is_some_and(|t| now.duration_since(t) < self.config.timeout * 2);
        if now < until || probe_running {
            return Err(ClientError::BreakerOpen {
                url: self.base.clone(),
                retry_in: until.saturating_duration_since(now),
            });
        }
        // Cooldown over: this call is the probe; others keep failing fast until it returns.
        b.probing_since = Some(now);
        Ok(())
    }

    fn settle(&self, failed: bool) {
        let Ok(mut b) = self.breaker.lock() else { return };
        let was_probe = b.probing_since.take().is_some();
        if !failed {
            if b.open_until.is_some() {
                tracing::info!(url = %self.base, "memory plugin answers again; circuit breaker closed");
            }
            *b = Breaker::default();
            return;
        }
        b.consecutive_failures += 1;
        if was_probe || b.consecutive_failures >= self.config.failure_threshold {
            tracing::warn!(
                url = %self.base,
                failures = b.consecutive_failures,
                cooldown_s = self.config.cooldown.as_secs(),
                "memory plugin failing; circuit breaker open"
            );
            b.open_until = Some(Instant::now() + self.config.cooldown);
        }
    }

    async fn call<B: Serialize + Sync, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<Option<T>, ClientError> {
        let op = operation(&method, path);
        if let Err(e) = self.admit() {
            metrics::counter!("molecule_memory_plugin_calls_total", "op" => op, "outcome" => "breaker_open")
                .increment(1);
            return Err(e);
        }
        let result = self.send(method, path, body).await;
        let failed = result.as_ref().err().is_some_and(ClientError::is_failure);
        let outcome = match (&result, failed) {
            (Ok(_), _) => "ok",
            (Err(_), false) => "refused",
            (Err(_), true) => "failed",
        };
        metrics::counter!("molecule_memory_plugin_calls_total", "op" => op, "outcome" => outcome).increment(1);
        self.settle(failed);
        result
    }

    async fn send<B: Serialize + Sync, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<Option<T>, ClientError> {
        let mut url = self.base_url.clone();
        url.set_path(&format!("{}{path}", self.base_url.path().trim_end_matches('/')));
        // A 408 says the server closed the connection without having read a request on it
        // (RFC 9110 §15.5.9). It happens when a pooled connection sat unused past the server's
        // request timeout (actix-web answers 408 at 5 s) and a request was written to it just as
        // that answer arrived. Nothing was applied, so sending once more, on a new connection,
        // is safe for any method.
        let mut attempts = 0;
        let resp = loop {
            attempts += 1;
            let mut req = self.http.request(method.clone(), url.clone());
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = req.send().await.map_err(|e| ClientError::Transport {
                url: url.to_string(),
                message: if e.is_timeout() {
                    format!("timed out after {:?} (MEMORY_PLUGIN_TIMEOUT)", self.config.timeout)
                } else {
                    e.to_string()
                },
            })?;
            if resp.status() != StatusCode::REQUEST_TIMEOUT || attempts > 1 {
                break resp;
            }
            tracing::debug!(url = %url, "memory plugin answered 408 on a pooled connection; sending again");
        };
        let status = resp.status();
        // The raw bytes, parsed as JSON straight away: JSON is UTF-8 (RFC 8259), and serde_json
        // checks each string as it reads it, where `text()` would first check (and copy) the
        // whole body once more (a tenth of a search's server-side cost with twenty memories).
        let body = resp.bytes().await.map_err(|e| ClientError::Transport {
            url: url.to_string(),
            message: format!("reading the answer: {e}"),
        })?;
        let blank = body.iter().all(u8::is_ascii_whitespace);
        if !status.is_success() {
            let body = serde_json::from_slice::<ErrorBody>(&body).unwrap_or_else(|_| {
                let what = if blank {
                    format!("status {} (empty body)", status.as_u16())
                } else {
                    format!(
                        "status {}: {}",
                        status.as_u16(),
                        excerpt(&String::from_utf8_lossy(&body))
                    )
                };
                ErrorBody::new(ErrorCode::for_status(status.as_u16()), what)
            });
            return Err(ClientError::Plugin {
                status: status.as_u16(),
                body,
            });
        }
        if status == StatusCode::NO_CONTENT || blank {
            return Ok(None);
        }
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| ClientError::Decode {
                status: status.as_u16(),
                message: format!("{e}; body: {}", excerpt(&String::from_utf8_lossy(&body))),
            })
    }

    fn required<T>(v: Option<T>, what: &str) -> Result<T, ClientError> {
        v.ok_or_else(|| ClientError::Decode {
            status: 200,
            message: format!("{what}: empty body"),
        })
    }

    /// `GET /v1/health`. A 503 is an error ([`ClientError::Plugin`] with its reason).
    pub async fn health(&self) -> Result<HealthResponse, ClientError> {
        let h = self.call::<(), HealthResponse>(Method::GET, "/v1/health", None).await?;
        Self::required(h, "health")
    }

    /// Reads the plugin's capabilities and remembers them for [`Self::supports`].
    pub async fn refresh(&self) -> Result<Vec<MemoryCapability>, ClientError> {
        let health = self.health().await?;
        if let Ok(mut caps) = self.capabilities.lock() {
            *caps = Some(health.capabilities.iter().copied().collect());
        }
        Ok(health.capabilities)
    }

    /// Whether calls are currently refused (the breaker is open and no probe is due).
    pub fn breaker_open(&self) -> bool {
        self.breaker
            .lock()
            .ok()
            .and_then(|b| b.open_until)
            .is_some_and(|until| Instant::now() < until)
    }

    /// The capabilities of the last successful [`Self::refresh`], if any.
    pub fn known_capabilities(&self) -> Option<Vec<MemoryCapability>> {
        let caps = self.capabilities.lock().ok()?.clone()?;
        let mut v: Vec<MemoryCapability> = caps.into_iter().collect();
        v.sort();
        Some(v)
    }

    /// Whether the last [`Self::refresh`] reported `cap` (false before any refresh).
    pub fn supports(&self, cap: MemoryCapability) -> bool {
        self.capabilities
            .lock()
            .ok()
            .and_then(|c| c.as_ref().map(|set| set.contains(&cap)))
            .unwrap_or(false)
    }

    pub async fn upsert_namespace(&self, name: &str, body: &NamespaceUpsert) -> Result<Namespace, ClientError> {
        validate_namespace_name("name", name)?;
        body.validate()?;
        let ns = self
            .call(Method::PUT, &format!("/v1/namespaces/{name}"), Some(body))
            .await?;
        Self::required(ns, "namespace")
    }

    pub async fn patch_namespace(&self, name: &str, body: &NamespacePatch) -> Result<Namespace, ClientError> {
        validate_namespace_name("name", name)?;
        body.validate()?;
        let ns = self
            .call(Method::PATCH, &format!("/v1/namespaces/{name}"), Some(body))
            .await?;
        Self::required(ns, "namespace")
    }

    pub async fn delete_namespace(&self, name: &str) -> Result<(), ClientError> {
        validate_namespace_name("name", name)?;
        self.call::<(), serde_json::Value>(Method::DELETE, &format!("/v1/namespaces/{name}"), None)
            .await
            .map(|_| ())
    }

    pub async fn commit(&self, namespace: &str, body: &MemoryWrite) -> Result<MemoryWriteResponse, ClientError> {
        validate_namespace_name("namespace", namespace)?;
        body.validate()?;
        let r = self
            .call(
                Method::POST,
                &format!("/v1/namespaces/{namespace}/memories"),
                Some(body),
            )
            .await?;
        Self::required(r, "commit")
    }

    pub async fn search(&self, body: &SearchRequest) -> Result<SearchResponse, ClientError> {
        body.validate()?;
        let r = self.call(Method::POST, "/v1/search", Some(body)).await?;
        Self::required(r, "search")
    }

    pub async fn forget(&self, id: Uuid, body: &ForgetRequest) -> Result<(), ClientError> {
        body.validate()?;
        self.call::<_, serde_json::Value>(Method::DELETE, &format!("/v1/memories/{id}"), Some(body))
            .await
            .map(|_| ())
    }
}
