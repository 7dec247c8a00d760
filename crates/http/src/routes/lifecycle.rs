//! Lifecycle verb routes: restart, pause, resume, collapse.
//!
//! Must not know: backends (the service calls the dispatcher through its hooks).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, post, web};
use molecule_api::lifecycle::{BulkOutcome, Collapsed, Restarted};
use serde::Deserialize;

use crate::auth::WorkspaceAuth;
use crate::errors::{ApiError, ErrorBody};
use crate::server::AppState;

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
    let r = state.services.restart_workspace(auth.workspace_id, q.reset).await?;
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
    Ok(bulk(state.services.pause_workspace(auth.workspace_id).await?))
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
    Ok(bulk(state.services.resume_workspace(auth.workspace_id).await?))
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
    Ok(HttpResponse::Ok().json(state.services.collapse_workspace(auth.workspace_id).await?))
}
