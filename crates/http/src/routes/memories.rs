//! `/workspaces/:id/memories`: the original's HTTP memory endpoints (LOCAL/TEAM/GLOBAL scopes)
//! over the same memory use-cases as the MCP tools, so the same ACLs, redaction and audit apply.
//!
//! Must not know: the plugin or the resolver (they call `Services`).

use actix_web::{HttpResponse, delete, get, post, web};
use molecule_api::memories::{MemoryDeleted, MemoryItem, NewMemory, StoredMemory};
use serde::Deserialize;

use crate::auth::WorkspaceAuth;
use crate::errors::{ApiError, ErrorBody};
use crate::server::AppState;

/// Store a memory in the scope's namespace (GLOBAL: root workspaces only).
#[utoipa::path(
    tag = "memory",
    params(("id" = Uuid, Path, description = "workspace id")),
    request_body = NewMemory,
    responses(
        (status = 201, body = StoredMemory), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "GLOBAL from a non-root, or another workspace's token"),
        (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody, description = "memory not configured (MEMORY_PLUGIN_URL) or the plugin failing")
    ),
    security(("bearer" = []))
)]
#[post("/workspaces/{id}/memories")]
pub async fn commit(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    body: web::Json<NewMemory>,
) -> Result<HttpResponse, ApiError> {
    let stored = state.services.remember(auth.workspace_id, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(stored))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct MemoryQuery {
    /// Full-text query (1 character: a substring).
    pub q: Option<String>,
    /// LOCAL, TEAM or GLOBAL; absent: everything the workspace may read.
    pub scope: Option<String>,
    /// 1..=100, default 50.
    pub limit: Option<u32>,
}

/// The memories the workspace may read, as stored (org content unwrapped).
#[utoipa::path(
    tag = "memory",
    params(("id" = Uuid, Path, description = "workspace id"), MemoryQuery),
    responses(
        (status = 200, body = Vec<MemoryItem>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
#[get("/workspaces/{id}/memories")]
pub async fn list(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    query: web::Query<MemoryQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let items = state
        .services
        .list_memories(auth.workspace_id, q.q, q.scope.as_deref(), q.limit)
        .await?;
    Ok(HttpResponse::Ok().json(items))
}

/// Delete one memory from a namespace the workspace may write.
#[utoipa::path(
    tag = "memory",
    params(("id" = Uuid, Path, description = "workspace id"), ("memory_id" = Uuid, Path, description = "memory id")),
    responses(
        (status = 200, body = MemoryDeleted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody, description = "memory not found"),
        (status = 503, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
#[delete("/workspaces/{id}/memories/{memory_id}")]
pub async fn forget(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    path: web::Path<(String, uuid::Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (_, memory_id) = path.into_inner();
    state.services.forget_anywhere(auth.workspace_id, memory_id).await?;
    Ok(HttpResponse::Ok().json(MemoryDeleted {
        status: "deleted".into(),
    }))
}
