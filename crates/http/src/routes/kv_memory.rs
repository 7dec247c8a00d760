//! Key/value memory routes (`/workspaces/:id/memory*`): the admin token or the workspace's own.
//!
//! Must not know: the table, versions, expiry.

use actix_web::{HttpResponse, delete, get, post, web};
use molecule_api::kv_memory::{KvDeleted, KvEntry, KvWritten, PutKv};
use molecule_kv_memory::Put;

use crate::auth::WorkspaceAuth;
use crate::errors::{ApiError, ErrorBody};
use crate::state::AppState;

fn wire(e: molecule_kv_memory::Entry) -> KvEntry {
    KvEntry {
        key: e.key,
        value: e.value,
        version: e.version,
        expires_at: e.expires_at,
        updated_at: e.updated_at,
    }
}

/// The workspace's live entries, by key (expired ones are never shown).
#[utoipa::path(
    tag = "memory",
    params(("id" = Uuid, Path, description = "workspace id")),
    responses((status = 200, body = [KvEntry]), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/workspaces/{id}/memory")]
pub async fn list_kv(auth: WorkspaceAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let list = state.services.kv_memory().list(auth.workspace_id).await?;
    Ok(HttpResponse::Ok().json(list.into_iter().map(wire).collect::<Vec<_>>()))
}

/// One entry; 404 `key not found` when it is missing or expired.
#[utoipa::path(
    tag = "memory",
    params(("id" = Uuid, Path, description = "workspace id"), ("key" = String, Path, description = "the key")),
    responses((status = 200, body = KvEntry), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/workspaces/{id}/memory/{key}")]
pub async fn get_kv(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let entry = state.services.kv_memory().get(auth.workspace_id, &path.1).await?;
    Ok(HttpResponse::Ok().json(wire(entry)))
}

/// Write an entry: a plain write creates or overwrites (version + 1); `if_match_version: N`
/// writes only over version N, `0` only if the key does not exist (409 with
/// `expected_version` and `current_version` otherwise). `ttl_seconds` sets an expiry; a
/// write without it clears one.
#[utoipa::path(
    tag = "memory",
    params(("id" = Uuid, Path, description = "workspace id")),
    request_body = PutKv,
    responses((status = 200, body = KvWritten), (status = 400, description = "`key` or `value` missing or wrong, named in the answer", body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "if_match_version mismatch, or the workspace is removed", body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/workspaces/{id}/memory")]
pub async fn put_kv(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    body: web::Json<PutKv>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let written = state
        .services
        .kv_memory()
        .put(
            auth.workspace_id,
            Put {
                key: b.key,
                value: b.value,
                ttl_seconds: b.ttl_seconds,
                if_match_version: b.if_match_version,
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(KvWritten {
        status: "ok",
        key: written.key,
        version: written.version,
    }))
}

/// Delete an entry (200 whether or not it existed, as the original).
#[utoipa::path(
    tag = "memory",
    params(("id" = Uuid, Path, description = "workspace id"), ("key" = String, Path, description = "the key")),
    responses((status = 200, body = KvDeleted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[delete("/workspaces/{id}/memory/{key}")]
pub async fn delete_kv(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    state.services.kv_memory().delete(auth.workspace_id, &path.1).await?;
    Ok(HttpResponse::Ok().json(KvDeleted { status: "deleted" }))
}
