//! Org import routes: `POST /org/import`, `GET /org/templates`.
//!
//! Must not know: SQL or template parsing.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use molecule_api::org::{ImportRequest, Imported, TemplateSummary};

use crate::auth::AdminAuth;
use crate::errors::{ApiError, ErrorBody};
use crate::state::AppState;

/// Import an org template (admin): its tree of workspaces is created depth-first and each one
/// provisioned through the dispatcher. Idempotent: a node whose name exists under the same
/// parent is skipped (or recreated with `replace_if_exists`). 201, or 207 with per-workspace
/// results when some failed; an invalid tree is a 400 naming the node. `required_env` the
/// global secrets and the org's `.env` do not provide → 412 `{error, missing_env,
/// required_env, template, suggestion}` unless `force`. The `.env`'s variables become each
/// created workspace's secrets.
#[utoipa::path(
    tag = "org",
    request_body = ImportRequest,
    responses(
        (status = 201, body = Imported), (status = 207, body = Imported), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 412, description = "required variables are missing", body = ErrorBody), (status = 503, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
#[post("/org/import")]
pub async fn import_org(
    _: AdminAuth,
    state: web::Data<AppState>,
    body: web::Json<ImportRequest>,
) -> Result<HttpResponse, ApiError> {
    let services = state.services.clone();
    let root = state.org_templates_dir.clone();
    // Detached: a client hanging up does not leave half a tree.
    let imported = tokio::spawn(async move { services.import_org(body.into_inner(), root.as_deref()).await })
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("import task failed: {e}")))??;
    let status = StatusCode::from_u16(imported.http_status()).unwrap_or(StatusCode::MULTI_STATUS);
    Ok(HttpResponse::build(status).json(imported))
}

/// The org templates available under `MOLECULE_ORG_TEMPLATES_DIR` (admin).
#[utoipa::path(
    tag = "org",
    responses((status = 200, body = Vec<TemplateSummary>), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/org/templates")]
pub async fn org_templates(_: AdminAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.services.org_templates(state.org_templates_dir.as_deref())?))
}
