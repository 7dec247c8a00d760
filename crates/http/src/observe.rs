//! Per-request Prometheus series, through the `metrics` facade (the binary installs the
//! exporter): the original's `molecule_http_requests_total{method,path,status}`, and
//! `molecule_http_request_duration_seconds` as a histogram with the same labels (its buckets are set where the exporter is built,
//! `molecule-telemetry`). `path` is the
//! route's pattern (`/workspaces/{id}`), or `unmatched`, so a scan of random paths cannot grow
//! the series without bound. Every answer is counted, refusals and 429s included (the
//! original's middleware order skipped them).
//!
//! Must not know: routes, auth.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

/// Counts and times every request.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let res = next.call(req).await?;
    let path = res.request().match_pattern().unwrap_or_else(|| "unmatched".to_owned());
    let status = res.status().as_u16().to_string();
    let labels = [("method", method), ("path", path), ("status", status)];
    metrics::counter!("molecule_http_requests_total", &labels).increment(1);
    metrics::histogram!("molecule_http_request_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
    Ok(res)
}
