//! Workspace routes: create, list, get, state, patch, delete.
//!
//! Must not know: SQL.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use molecule_api::workspaces::{CreateWorkspace, Created, Deleted, PatchWorkspace, Patched, Removal, State, Workspace};
use molecule_tree::workspaces::{Actor, Children};
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::{AdminAuth, WorkspaceAuth};
use crate::errors::{ApiError, ErrorBody};
use crate::state::AppState;

/// Create a workspace (admin). An external workspace's first token is shown once in
/// `auth_token`; a provisioned workspace gets none here (each provision hands its workload a
/// fresh token and revokes the rest; `auth_token_note` says where to mint one).
#[utoipa::path(
    tag = "workspaces",
    request_body = CreateWorkspace,
    responses(
        (status = 201, body = Created),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 503, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
#[post("/workspaces")]
pub async fn create_workspace(
    _: AdminAuth,
    state: web::Data<AppState>,
    body: web::Json<CreateWorkspace>,
) -> Result<HttpResponse, ApiError> {
    let created = state.services.create_workspace(body.into_inner()).await?;
    Ok(HttpResponse::Created().json(created))
}

/// Every workspace that is not removed, oldest first (admin).
#[utoipa::path(
    tag = "workspaces",
    responses((status = 200, body = Vec<Workspace>), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/workspaces")]
pub async fn list_workspaces(_: AdminAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.services.tree().list_workspaces().await?))
}

/// One workspace (removed ones included).
#[utoipa::path(
    tag = "workspaces",
    params(("id" = Uuid, Path, description = "workspace id")),
    responses(
        (status = 200, body = Workspace), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
#[get("/workspaces/{id}")]
pub async fn get_workspace(auth: WorkspaceAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.services.tree().get_workspace(auth.workspace_id).await?))
}

/// Update fields; `tier`, `parent_id` and `runtime` need the admin token. Re-parenting that
/// would create a cycle, or points at a missing or removed workspace, is refused.
#[utoipa::path(
    tag = "workspaces",
    params(("id" = Uuid, Path, description = "workspace id")),
    request_body = PatchWorkspace,
    responses(
        (status = 200, body = Patched), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 503, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
#[patch("/workspaces/{id}")]
pub async fn patch_workspace(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    body: web::Json<PatchWorkspace>,
) -> Result<HttpResponse, ApiError> {
    let patched = state
        .services
        .patch_workspace(
            auth.workspace_id,
            body.into_inner(),
            if auth.is_admin() {
                Actor::Admin
            } else {
                Actor::Workspace
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(patched))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct DeleteQuery {
    /// Also delete non-removed children.
    #[serde(default)]
    pub confirm: bool,
    /// Hard-delete the rows (and run cleanup hooks).
    #[serde(default)]
    pub purge: bool,
}

/// Delete a workspace and its subtree (admin). Children need `?confirm=true`.
#[utoipa::path(
    tag = "workspaces",
    params(("id" = Uuid, Path, description = "workspace id"), DeleteQuery),
    responses(
        (status = 200, body = Deleted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
#[delete("/workspaces/{id}")]
pub async fn delete_workspace(
    _: AdminAuth,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    q: web::Query<DeleteQuery>,
) -> Result<HttpResponse, ApiError> {
    let deleted = state
        .services
        .delete_workspace(
            id.into_inner(),
            if q.confirm { Children::Cascade } else { Children::Refuse },
            if q.purge { Removal::Purged } else { Removal::Removed },
        )
        .await?;
    Ok(HttpResponse::Ok().json(deleted))
}

/// What a remote agent polls: status, paused, deleted.
#[utoipa::path(
    tag = "workspaces",
    params(("id" = Uuid, Path, description = "workspace id")),
    responses(
        (status = 200, body = State), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
#[get("/workspaces/{id}/state")]
pub async fn workspace_state(auth: WorkspaceAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.services.tree().workspace_state(auth.workspace_id).await?))
}
