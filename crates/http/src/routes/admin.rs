use actix_web::{HttpResponse, get, web};

use crate::auth::AdminAuth;
use crate::errors::{ApiError, ErrorBody};
use crate::server::AppState;

/// Background loops: last tick, counts and last error per subsystem (admin).
#[utoipa::path(
    tag = "admin",
    responses((status = 200, description = "`{subsystems:{name:{last_tick_at,seconds_ago,…}}}`"), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)),
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
    Ok(HttpResponse::Ok().json(
        serde_json::json!({ "subsystems": subsystems, "event_listener_connected": state.services.bus.is_listening() }),
    ))
}
