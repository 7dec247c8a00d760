//! Runtime image pin administration routes.
//!
//! Must not know: SQL.

use actix_web::{HttpResponse, delete, get, put, web};
use molecule_api::pins::{Pin, PinRequest};

use crate::auth::AdminAuth;
use crate::errors::{ApiError, ErrorBody};
use crate::state::AppState;

/// Every runtime image pin (admin).
#[utoipa::path(
    tag = "admin",
    responses((status = 200, body = Vec<Pin>), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/admin/runtime-image-pins")]
pub async fn list_pins(_: AdminAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.services.tree().list_pins().await?))
}

/// Pin a runtime template to an image digest (admin). New provisions of that runtime run
/// `<image>@<digest>`, which is never re-pulled.
#[utoipa::path(
    tag = "admin",
    params(("template" = String, Path, description = "runtime template name")),
    request_body = PinRequest,
    responses((status = 200, body = Pin), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[put("/admin/runtime-image-pins/{template}")]
pub async fn put_pin(
    _: AdminAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<PinRequest>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.services.tree().put_pin(&path, body.into_inner()).await?))
}

/// Remove a pin (admin).
#[utoipa::path(
    tag = "admin",
    params(("template" = String, Path, description = "runtime template name")),
    responses((status = 200, description = "`{status:\"deleted\"}`"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[delete("/admin/runtime-image-pins/{template}")]
pub async fn delete_pin(
    _: AdminAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.services.tree().delete_pin(&path).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "deleted", "template": path.as_str() })))
}
