//! Files API routes: a workload's files under `/configs` (the default), `/workspace`, `/home`
//! and `/plugins`, chosen with `?root=`.
//!
//! Must not know: how a backend reaches the files, or the path rules (the use-cases apply
//! them).

use actix_web::{HttpResponse, delete, get, put, web};
use molecule_api::files::{FileChanged, FileContent, FileEntry, WriteFile, WriteFiles};
use serde::Deserialize;

use crate::auth::WorkspaceAuth;
use crate::errors::{ApiError, ErrorBody};
use crate::state::AppState;

/// The largest body a write takes: a file at the limit, base64-encoded, with room to spare.
const MAX_WRITE_BODY: usize = molecule_domain::MAX_FILE_BYTES * 2;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `/configs` (default), `/workspace`, `/home` or `/plugins`.
    pub root: Option<String>,
    /// A directory relative to the root (default: the root).
    pub path: Option<String>,
    /// 1..=5 (default 1).
    pub depth: Option<u8>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RootQuery {
    /// `/configs` (default), `/workspace`, `/home` or `/plugins`.
    pub root: Option<String>,
}

/// The entries under a directory of the workload (workspace token or admin). Absolute or
/// `..` paths and symlinks are 400; a missing directory is 404; a backend that cannot reach
/// files (EC2) is 501 with the reason.
#[utoipa::path(
    tag = "files",
    params(("id" = Uuid, Path, description = "workspace id"), ListQuery),
    responses((status = 200, body = Vec<FileEntry>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "no provisioner is configured", body = ErrorBody), (status = 413, body = ErrorBody), (status = 501, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/workspaces/{id}/files")]
pub async fn list_files(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = q.into_inner();
    Ok(HttpResponse::Ok().json(
        state
            .services
            .tree()
            .list_files(auth.workspace_id, q.root.as_deref(), q.path.as_deref(), q.depth)
            .await?,
    ))
}

/// Writes several text files at once (`{files: {path: content}}`); every path is checked
/// before any is written.
#[utoipa::path(
    tag = "files",
    params(("id" = Uuid, Path, description = "workspace id"), RootQuery),
    request_body = WriteFiles,
    responses((status = 200, body = Vec<FileChanged>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "no provisioner is configured", body = ErrorBody), (status = 413, body = ErrorBody), (status = 501, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[put("/workspaces/{id}/files")]
pub async fn write_files(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    q: web::Query<RootQuery>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body: WriteFiles =
        super::limited_json(payload, MAX_WRITE_BODY, "a files write", "{files: {path: content}}").await?;
    Ok(HttpResponse::Ok().json(
        state
            .services
            .tree()
            .write_files(auth.workspace_id, q.root.as_deref(), body.files)
            .await?,
    ))
}

/// One file's content: UTF-8 as is, anything else base64 with `encoding: "base64"`.
#[utoipa::path(
    tag = "files",
    params(("id" = Uuid, Path, description = "workspace id"), ("path" = String, Path, description = "relative to the root"), RootQuery),
    responses((status = 200, body = FileContent), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "no provisioner is configured", body = ErrorBody), (status = 413, body = ErrorBody), (status = 501, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/workspaces/{id}/files/{path:.*}")]
pub async fn read_file(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    q: web::Query<RootQuery>,
) -> Result<HttpResponse, ApiError> {
    let (_, file) = path.into_inner();
    Ok(HttpResponse::Ok().json(
        state
            .services
            .tree()
            .read_file(auth.workspace_id, q.root.as_deref(), &file)
            .await?,
    ))
}

/// Writes one file (`{content, encoding?: "base64"}`), creating its directories.
#[utoipa::path(
    tag = "files",
    params(("id" = Uuid, Path, description = "workspace id"), ("path" = String, Path, description = "relative to the root"), RootQuery),
    request_body = WriteFile,
    responses((status = 200, body = FileChanged), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "no provisioner is configured", body = ErrorBody), (status = 413, body = ErrorBody), (status = 501, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[put("/workspaces/{id}/files/{path:.*}")]
pub async fn write_file(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    q: web::Query<RootQuery>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (_, file) = path.into_inner();
    let body: WriteFile = super::limited_json(
        payload,
        MAX_WRITE_BODY,
        "a file write",
        "{content, encoding?: \"base64\"}",
    )
    .await?;
    Ok(HttpResponse::Ok().json(
        state
            .services
            .tree()
            .write_file(
                auth.workspace_id,
                q.root.as_deref(),
                &file,
                body.content,
                body.encoding.as_deref(),
            )
            .await?,
    ))
}

/// Deletes a file, or a directory with its contents.
#[utoipa::path(
    tag = "files",
    params(("id" = Uuid, Path, description = "workspace id"), ("path" = String, Path, description = "relative to the root"), RootQuery),
    responses((status = 200, body = FileChanged), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "no provisioner is configured", body = ErrorBody), (status = 501, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[delete("/workspaces/{id}/files/{path:.*}")]
pub async fn delete_file(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    q: web::Query<RootQuery>,
) -> Result<HttpResponse, ApiError> {
    let (_, file) = path.into_inner();
    Ok(HttpResponse::Ok().json(
        state
            .services
            .tree()
            .delete_file(auth.workspace_id, q.root.as_deref(), &file)
            .await?,
    ))
}
