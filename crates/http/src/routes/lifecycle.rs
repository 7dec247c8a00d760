//! Lifecycle verb routes: restart, pause, resume, collapse, and the bootstrap watcher's
//! report of a workload that died before registering.
//!
//! Must not know: backends (the service calls the dispatcher through its hooks).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, post, web};
use molecule_api::lifecycle::{BootstrapFailed, BootstrapFailedOutcome, BulkOutcome, Collapsed, Restarted};
use serde::Deserialize;

use crate::auth::{AdminAuth, WorkspaceAuth};
use crate::errors::{ApiError, ErrorBody};
use crate::state::AppState;

#[derive(Debug, Default, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
pub struct RestartOptions {
    /// Start from a fresh session.
    #[serde(default)]
    pub reset: bool,
}

/// Stop and provision again (in the background). 409 under a paused ancestor or without a
/// provisioner. Concurrent restarts coalesce into at most one pending re-run.
#[utoipa::path(
    tag = "lifecycle",
    params(("id" = Uuid, Path, description = "workspace id"), RestartOptions),
    responses(
        (status = 200, body = Restarted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
#[post("/workspaces/{id}/restart")]
pub async fn restart_workspace(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    q: web::Query<RestartOptions>,
) -> Result<HttpResponse, ApiError> {
    let r = state
        .services
        .tree()
        .restart_workspace(auth.workspace_id, q.reset)
        .await?;
    Ok(HttpResponse::Ok().json(r))
}

fn bulk(outcome: BulkOutcome) -> HttpResponse {
    let status = StatusCode::from_u16(outcome.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status).json(outcome)
}

/// Stop the workspace and its live descendants and mark them paused. 200, 207 when only some
/// were paused, 500 when none was (each failure says which stage and why).
#[utoipa::path(
    tag = "lifecycle",
    params(("id" = Uuid, Path, description = "workspace id")),
    responses(
        (status = 200, body = BulkOutcome), (status = 207, body = BulkOutcome), (status = 500, body = BulkOutcome),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
#[post("/workspaces/{id}/pause")]
pub async fn pause_workspace(auth: WorkspaceAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(bulk(state.services.tree().pause_workspace(auth.workspace_id).await?))
}

/// Provision the paused workspace and its paused descendants again.
#[utoipa::path(
    tag = "lifecycle",
    params(("id" = Uuid, Path, description = "workspace id")),
    responses(
        (status = 200, body = BulkOutcome), (status = 207, body = BulkOutcome), (status = 500, body = BulkOutcome),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
#[post("/workspaces/{id}/resume")]
pub async fn resume_workspace(auth: WorkspaceAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(bulk(state.services.tree().resume_workspace(auth.workspace_id).await?))
}

/// Stop and remove the direct children (and their subtrees).
#[utoipa::path(
    tag = "lifecycle",
    params(("id" = Uuid, Path, description = "workspace id")),
    responses(
        (status = 200, body = Collapsed), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
#[post("/workspaces/{id}/collapse")]
pub async fn collapse_workspace(auth: WorkspaceAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.services.tree().collapse_workspace(auth.workspace_id).await?))
}

/// The bootstrap watcher reports a workload that died before registering (admin): a
/// workspace still `provisioning` becomes `failed` with `error` (redacted, at most 8 KiB) and
/// `WORKSPACE_PROVISION_FAILED {error, log_tail, source: "bootstrap_watcher"}`; otherwise
/// `{ok: true, no_change: true}`.
#[utoipa::path(
    tag = "admin",
    params(("id" = Uuid, Path, description = "workspace id")),
    request_body = BootstrapFailed,
    responses((status = 200, body = BootstrapFailedOutcome), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "the workspace is removed", body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/admin/workspaces/{id}/bootstrap-failed")]
pub async fn bootstrap_failed(
    _: AdminAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<BootstrapFailed>,
) -> Result<HttpResponse, ApiError> {
    let id = crate::routes::parse_id(&path)?;
    Ok(HttpResponse::Ok().json(state.services.tree().bootstrap_failed(id, body.into_inner()).await?))
}
