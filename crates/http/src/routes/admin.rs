//! Admin routes: liveness of the background loops, metrics, the memory plugin's state.
//!
//! Must not know: SQL.

use actix_web::{HttpResponse, get, web};

use crate::auth::AdminAuth;
use crate::errors::{ApiError, ErrorBody};
use crate::state::AppState;

/// Background loops: last tick, counts and last error per subsystem (admin).
#[utoipa::path(
    tag = "admin",
    responses((status = 200, description = "`{subsystems:{name:{last_tick_at,seconds_ago,…}}, event_listener_connected, memory_plugin:{url,breaker_open,capabilities}|null}`"), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/admin/liveness")]
pub async fn liveness(_: AdminAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let now = time::OffsetDateTime::now_utc();
    let mut subsystems = serde_json::Map::new();
    for task in &state.tasks {
        let stats = task.stats();
        let mut v = serde_json::to_value(&stats).unwrap_or_default();
        if let (Some(obj), Some(at)) = (v.as_object_mut(), stats.last_tick_at) {
            obj.insert("seconds_ago".into(), serde_json::json!((now - at).whole_seconds()));
        }
        subsystems.insert(stats.name.to_owned(), v);
    }
    let memory_plugin = state.memory_plugin.as_ref().map_or(serde_json::Value::Null, |c| {
        serde_json::json!({
            "url": c.base_url(),
            "breaker_open": c.breaker_open(),
            "capabilities": c.known_capabilities(),
        })
    });
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "subsystems": subsystems,
        "event_listener_connected": state.services.bus().is_listening(),
        "memory_plugin": memory_plugin,
    })))
}

/// Prometheus text exposition of the process's metrics: per-request series
/// (`molecule_http_requests_total`, `molecule_http_request_duration_seconds` by route
/// pattern), open WebSockets and terminals, the database pool, and the background loops
/// (`molecule_task_*`). Scrape with the admin bearer, or openly with `METRICS_PUBLIC=true`.
#[utoipa::path(
    tag = "admin",
    responses(
        (status = 200, description = "Prometheus text format (`molecule_task_*` for the background loops)", content_type = "text/plain", body = String),
        (status = 401, body = ErrorBody),
        (status = 503, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
#[get("/metrics")]
pub async fn metrics(req: actix_web::HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if !state.metrics_public {
        use actix_web::FromRequest as _;
        AdminAuth::extract(&req).await?;
    }
    let pool = state.pool.status();
    let in_use = pool.size.saturating_sub(pool.available);
    for (kind, n) in [
        ("in_use", in_use),
        ("idle", pool.available),
        ("waiting", pool.waiting),
        ("max", pool.max_size),
    ] {
        ::metrics::gauge!("molecule_db_pool_connections", "state" => kind).set(n as f64);
    }
    let Some(render) = &state.metrics else {
        return Err(ApiError::new(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "no metrics recorder is installed in this process",
        ));
    };
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(render()))
}
