//! Config blob and agent assignment routes (`/workspaces/:id/config`, `/workspaces/:id/agent*`):
//! the admin token or the workspace's own. Moving an agent also needs the target to be a
//! workspace this one may reach (the hierarchy rule); the operator may move anywhere.
//!
//! Must not know: the tables, the merge.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, delete, get, patch, post, web};
use molecule_api::workspace_config::{
    ActiveAgent, AgentAssigned, AgentModel, AgentMoved, AgentRemoved, AgentReplaced, ConfigData, ConfigUpdated,
    MoveAgent,
};
use serde_json::Value;
use uuid::Uuid;

use crate::auth::WorkspaceAuth;
use crate::errors::{ApiError, ErrorBody};
use crate::state::AppState;

/// The most a config patch may take, as JSON (the original's).
const MAX_PATCH_BYTES: usize = 256 * 1024;

/// The workspace's config blob (`{data: {}}` when nothing was written).
#[utoipa::path(
    tag = "config",
    params(("id" = Uuid, Path, description = "workspace id")),
    responses((status = 200, body = ConfigData), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/workspaces/{id}/config")]
pub async fn get_config(auth: WorkspaceAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let data = state.services.config_blob().get(auth.workspace_id).await?;
    Ok(HttpResponse::Ok().json(ConfigData { data }))
}

/// Merge the body (a JSON object, at most 256 KiB) into the blob: its top-level keys replace
/// the stored ones, and a `null` value deletes its key.
#[utoipa::path(
    tag = "config",
    params(("id" = Uuid, Path, description = "workspace id")),
    request_body(content = Object, description = "the keys to set (null deletes a key)"),
    responses((status = 200, body = ConfigUpdated), (status = 400, description = "the body is not a JSON object", body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "the workspace is removed", body = ErrorBody), (status = 413, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[patch("/workspaces/{id}/config")]
pub async fn patch_config(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let size = body.to_string().len();
    if size > MAX_PATCH_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body: {size} bytes; a config patch may take at most {MAX_PATCH_BYTES}"),
        ));
    }
    state.services.config_blob().merge(auth.workspace_id, body).await?;
    Ok(HttpResponse::Ok().json(ConfigUpdated { status: "updated" }))
}

/// The workspace's active agent; 404 `no active agent`.
#[utoipa::path(
    tag = "config",
    params(("id" = Uuid, Path, description = "workspace id")),
    responses((status = 200, body = ActiveAgent), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/workspaces/{id}/agent")]
pub async fn get_agent(auth: WorkspaceAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let a = state.services.agents().active(auth.workspace_id).await?;
    Ok(HttpResponse::Ok().json(ActiveAgent {
        agent_id: a.id,
        model: a.model,
        assigned_at: a.created_at,
    }))
}

/// Assign a model (`AGENT_ASSIGNED`); 409 when the workspace already has an active agent.
#[utoipa::path(
    tag = "config",
    params(("id" = Uuid, Path, description = "workspace id")),
    request_body = AgentModel,
    responses((status = 201, body = AgentAssigned), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/workspaces/{id}/agent")]
pub async fn assign_agent(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    body: web::Json<AgentModel>,
) -> Result<HttpResponse, ApiError> {
    let made = state.services.agents().assign(auth.workspace_id, &body.model).await?;
    Ok(HttpResponse::Created().json(AgentAssigned {
        agent_id: made.id,
        model: made.model,
    }))
}

/// Replace the active agent's model (`AGENT_REPLACED`); 404 when there is none.
#[utoipa::path(
    tag = "config",
    params(("id" = Uuid, Path, description = "workspace id")),
    request_body = AgentModel,
    responses((status = 200, body = AgentReplaced), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[patch("/workspaces/{id}/agent")]
pub async fn replace_agent(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    body: web::Json<AgentModel>,
) -> Result<HttpResponse, ApiError> {
    let (made, old_model) = state.services.agents().replace(auth.workspace_id, &body.model).await?;
    Ok(HttpResponse::Ok().json(AgentReplaced {
        agent_id: made.id,
        model: made.model,
        old_model,
    }))
}

/// Remove the active agent (`AGENT_REMOVED`); 404 when there is none.
#[utoipa::path(
    tag = "config",
    params(("id" = Uuid, Path, description = "workspace id")),
    responses((status = 200, body = AgentRemoved), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[delete("/workspaces/{id}/agent")]
pub async fn remove_agent(auth: WorkspaceAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let old = state.services.agents().remove(auth.workspace_id).await?;
    Ok(HttpResponse::Ok().json(AgentRemoved {
        status: "removed",
        agent_id: old.id,
    }))
}

/// Move the active agent to another workspace (`AGENT_MOVED` on both). A workspace token may
/// move it only to a workspace it may reach (parent, child, sibling); 403 otherwise.
#[utoipa::path(
    tag = "config",
    params(("id" = Uuid, Path, description = "workspace id")),
    request_body = MoveAgent,
    responses((status = 200, body = AgentMoved), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/workspaces/{id}/agent/move")]
pub async fn move_agent(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    body: web::Json<MoveAgent>,
) -> Result<HttpResponse, ApiError> {
    let raw = body.target_workspace_id.trim();
    let target: Uuid = raw.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("target_workspace_id: must be a workspace id (a UUID), got {raw:?}"),
        )
    })?;
    if !auth.is_admin()
        && target != auth.workspace_id
        && !state
            .services
            .messaging()
            .check_access(auth.workspace_id, target)
            .await?
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "target_workspace_id: this workspace may not reach that one (only its parent, children and siblings)",
        ));
    }
    let moved = state.services.agents().move_to(auth.workspace_id, target).await?;
    Ok(HttpResponse::Ok().json(AgentMoved {
        agent_id: moved.id,
        model: moved.model,
        from_workspace: auth.workspace_id,
        to_workspace: target,
    }))
}
