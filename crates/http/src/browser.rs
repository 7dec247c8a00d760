//! What browsers need from every answer: CORS for the original canvas and other allowed
//! origins (`CORS_ORIGINS`, through `actix-cors`), and the security headers.
//!
//! CORS follows the original's: its default origins (the canvas on `localhost:3000` and
//! `:3001`), methods and headers, credentials allowed, a request from this server's own origin
//! always allowed, and a request from an origin not listed refused. Unlike the original it
//! exposes `X-RateLimit-*`, `Retry-After` and `X-Request-Id` to the page, answers a preflight
//! 204 and a refusal 403 with a JSON error that names the origin and the knob, and refuses a
//! malformed `CORS_ORIGINS` entry at boot. Every answer, refusals and errors included, then
//! gets the security headers unless its handler set its own (the console sets a stricter
//! CSP and its own referrer policy).
//!
//! Must not know: routes, auth, what a handler does.

use actix_cors::Cors;
use actix_web::ResponseError;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{RequestHead, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;

use crate::errors::ApiError;

/// The original's default `CORS_ORIGINS`: its canvas app in development.
pub const DEFAULT_ORIGINS: &str = "http://localhost:3000,http://localhost:3001";

/// The JSON API's CSP: it serves no page, so nothing may load from it or frame it.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// Which cross-origin pages may call the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    /// `*`: any origin.
    Any,
    /// These exact origins (`scheme://host[:port]`, lower case).
    Listed(Vec<String>),
}

impl Default for CorsOrigins {
    fn default() -> Self {
        Self::parse(DEFAULT_ORIGINS).unwrap_or(Self::Listed(Vec::new()))
    }
}

/// A `CORS_ORIGINS` entry that is not an origin.
#[derive(Debug, thiserror::Error)]
#[error("CORS_ORIGINS: {entry:?} is not an origin: {why} (write scheme://host[:port], comma-separated, or *)")]
pub struct BadOrigin {
    pub entry: String,
    pub why: &'static str,
}

impl CorsOrigins {
    /// Parses `CORS_ORIGINS`: comma-separated origins (each trimmed), or `*`.
    pub fn parse(raw: &str) -> Result<Self, BadOrigin> {
        let entries: Vec<&str> = raw.split(',').map(str::trim).filter(|e| !e.is_empty()).collect();
        if entries.contains(&"*") {
            return Ok(Self::Any);
        }
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            let bad = |why| BadOrigin {
                entry: entry.to_owned(),
                why,
            };
            let (scheme, rest) = entry.split_once("://").ok_or_else(|| bad("no scheme"))?;
            if !matches!(scheme, "http" | "https") {
                return Err(bad("the scheme must be http or https"));
            }
            if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
                return Err(bad("an origin has a host and maybe a port, and nothing else"));
            }
            if let Some((_, port)) = rest.rsplit_once(':')
                && !rest.ends_with(']')
                && port.parse::<u16>().is_err()
            {
                return Err(bad("the port must be a number up to 65535"));
            }
            out.push(entry.to_ascii_lowercase());
        }
        Ok(Self::Listed(out))
    }

    fn allows(&self, origin: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Listed(list) => list.iter().any(|o| o.eq_ignore_ascii_case(origin)),
        }
    }
}

/// `origin` (`scheme://host[:port]`) names `host` (a `Host` header's value): a page of this
/// very server. The one same-origin rule of CORS, the console's forms and the terminal.
pub(crate) fn origin_is_host(origin: &str, host: &str) -> bool {
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(host))
}

/// The request comes from a page of this very server (`Origin` is `http(s)://<Host>`).
fn same_origin(origin: &str, head: &RequestHead) -> bool {
    head.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|host| origin_is_host(origin, host))
}

/// The CORS middleware for `origins`.
pub fn cors(origins: CorsOrigins) -> Cors {
    Cors::default()
        .allowed_origin_fn(move |origin, head| origin.to_str().is_ok_and(|o| origins.allows(o) || same_origin(o, head)))
        .allowed_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allowed_headers([
            header::ORIGIN,
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            HeaderName::from_static("x-workspace-id"),
            HeaderName::from_static("x-molecule-org-id"),
            HeaderName::from_static("x-molecule-org-slug"),
            HeaderName::from_static("x-confirm-name"),
            HeaderName::from_static("x-csrf-token"),
        ])
        .expose_headers([
            HeaderName::from_static("x-ratelimit-limit"),
            HeaderName::from_static("x-ratelimit-remaining"),
            HeaderName::from_static("x-ratelimit-reset"),
            header::RETRY_AFTER,
            HeaderName::from_static("x-request-id"),
        ])
        .supports_credentials()
        .block_on_origin_mismatch(true)
}

/// Outside CORS: a preflight it accepted answers 204; a refusal (its plain-text 400) becomes a
/// 403 with a JSON error; then every answer gets the security headers it lacks.
pub async fn finish(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(str::to_owned);
    let preflight =
        req.method() == Method::OPTIONS && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let res = next.call(req).await?;
    let plain_refusal = origin.is_some()
        && res.status() == StatusCode::BAD_REQUEST
        && res
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|t| t.starts_with("text/plain"));
    let mut res = if plain_refusal {
        let origin = origin.unwrap_or_default();
        let refused = ApiError::new(
            StatusCode::FORBIDDEN,
            format!("CORS: origin {origin:?} may not call this API (add it to CORS_ORIGINS on the server)"),
        )
        .error_response();
        let (req, _) = res.into_parts();
        ServiceResponse::new(req, refused).map_into_right_body()
    } else {
        let mut res = res.map_into_left_body();
        if preflight && res.status() == StatusCode::OK {
            *res.response_mut().status_mut() = StatusCode::NO_CONTENT;
        }
        res
    };
    let h = res.headers_mut();
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::STRICT_TRANSPORT_SECURITY, "max-age=31536000; includeSubDomains"),
        (header::REFERRER_POLICY, "strict-origin-when-cross-origin"),
        (
            HeaderName::from_static("permissions-policy"),
            "camera=(), microphone=(), geolocation=()",
        ),
        (header::CONTENT_SECURITY_POLICY, API_CSP),
    ] {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_parse_trimmed_and_refuse_what_is_not_an_origin() {
        assert_eq!(
            CorsOrigins::parse(" http://localhost:3000 ,https://Canvas.example.com").unwrap(),
            CorsOrigins::Listed(vec![
                "http://localhost:3000".into(),
                "https://canvas.example.com".into()
            ])
        );
        assert_eq!(CorsOrigins::parse("http://a.example,*").unwrap(), CorsOrigins::Any);
        for (bad, says) in [
            ("localhost:3000", "no scheme"),
            ("ftp://x.example", "http or https"),
            ("https://x.example/app", "nothing else"),
            ("http://x.example:99999", "port"),
        ] {
            let err = CorsOrigins::parse(bad).unwrap_err().to_string();
            assert!(err.contains(says) && err.contains("CORS_ORIGINS"), "{bad}: {err}");
        }
        assert!(CorsOrigins::default().allows("http://localhost:3000"));
        assert!(!CorsOrigins::default().allows("https://evil.example"));
    }
}
