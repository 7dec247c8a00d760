//! `/workspaces/:id/memories`: the original's HTTP memory endpoints (LOCAL/TEAM/GLOBAL scopes)
//! over the same memory use-cases as the MCP tools, so the same ACLs, redaction and audit apply.
//!
//! Also the operator's `/admin/memories/export` (streamed) and `/admin/memories/import`.
//!
//! Must not know: the plugin or the resolver (they call `Services`).

use actix_web::{HttpResponse, delete, get, patch, post, web};
use futures_util::StreamExt;
use molecule_api::memories::{
    EditMemory, EditedMemory, ExportedMemory, ImportQuery, ImportReport, MemoryDeleted, MemoryItem, NewMemory,
    StoredMemory,
};
use molecule_memory::memory_admin::OnConflict;
use serde::Deserialize;

use crate::auth::{AdminAuth, WorkspaceAuth};
use crate::errors::{ApiError, ErrorBody};
use crate::state::AppState;

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
    let stored = state
        .services
        .memory()
        .remember(auth.workspace_id, body.into_inner())
        .await?;
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
        .memory()
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
    state
        .services
        .memory()
        .forget_anywhere(auth.workspace_id, memory_id)
        .await?;
    Ok(HttpResponse::Ok().json(MemoryDeleted {
        status: "deleted".into(),
    }))
}

/// New content for a memory the workspace may write, redacted again (kind, pin, expiry kept).
#[utoipa::path(
    tag = "memory",
    params(("id" = Uuid, Path, description = "workspace id"), ("memory_id" = Uuid, Path, description = "memory id")),
    request_body = EditMemory,
    responses(
        (status = 200, body = EditedMemory, description = "`changed: false` when the redacted content is what is stored"),
        (status = 400, body = ErrorBody, description = "empty content"), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody, description = "memory not found"),
        (status = 503, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
#[patch("/workspaces/{id}/memories/{memory_id}")]
pub async fn edit(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    path: web::Path<(String, uuid::Uuid)>,
    body: web::Json<EditMemory>,
) -> Result<HttpResponse, ApiError> {
    let (_, memory_id) = path.into_inner();
    let edited = state
        .services
        .memory()
        .edit_memory(auth.workspace_id, memory_id, body.into_inner().content)
        .await?;
    Ok(HttpResponse::Ok().json(edited))
}

/// Largest import body.
const MAX_IMPORT_BYTES: usize = 256 << 20;

/// Every memory of every workspace's namespaces, as one JSON array streamed page by page (no
/// cap; one plugin search per 100 memories per namespace). If the plugin fails mid-way the
/// array is cut short and left unterminated, so a client never takes a partial export for a
/// whole one; the log has the reason under the request id.
#[utoipa::path(
    tag = "admin",
    responses(
        (status = 200, body = Vec<ExportedMemory>), (status = 401, body = ErrorBody),
        (status = 503, body = ErrorBody, description = "memory not configured (MEMORY_PLUGIN_URL)")
    ),
    security(("bearer" = []))
)]
#[get("/admin/memories/export")]
pub async fn export(_: AdminAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let entries = state.services.memory().export_memories().await?;
    let request_id = crate::errors::current_request_id();
    let mut count = 0usize;
    let items = entries.map(move |entry| match entry {
        Ok(e) => {
            let sep = if count == 0 { "\n" } else { ",\n" };
            count += 1;
            let json = serde_json::to_string(&e).map_err(actix_web::error::ErrorInternalServerError)?;
            Ok::<_, actix_web::Error>(web::Bytes::from(format!("{sep}{json}")))
        }
        Err(e) => {
            tracing::error!(?request_id, exported = count, error = %e, "memory export cut short");
            Err(actix_web::error::ErrorServiceUnavailable(e.to_string()))
        }
    });
    let open = futures_util::stream::once(async { Ok(web::Bytes::from_static(b"[")) });
    let close = futures_util::stream::once(async { Ok(web::Bytes::from_static(b"\n]\n")) });
    // An error ends the stream before the closing bracket (actix stops at the first error).
    let body = open.chain(items).chain(close);
    Ok(HttpResponse::Ok().content_type("application/json").streaming(body))
}

/// Memories from an export (or the original's entries: `content`, `scope`, `namespace` label,
/// `workspace_name`), idempotent by id, redacted, namespaces created when missing.
#[utoipa::path(
    tag = "admin",
    params(ImportQuery),
    request_body = Vec<ExportedMemory>,
    responses(
        (status = 200, body = ImportReport, description = "counts; each refused entry with its index"),
        (status = 400, body = ErrorBody, description = "not a JSON array, or a bad query"),
        (status = 401, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 503, body = ErrorBody, description = "memory not configured (MEMORY_PLUGIN_URL)")
    ),
    security(("bearer" = []))
)]
#[post("/admin/memories/import")]
pub async fn import(
    _: AdminAuth,
    state: web::Data<AppState>,
    query: web::Query<ImportQuery>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let on_conflict = OnConflict::parse(q.on_conflict.as_deref())?;
    let entries: Vec<serde_json::Value> = super::limited_json(
        payload,
        MAX_IMPORT_BYTES,
        "an import (split the file)",
        "a JSON array of memories (as GET /admin/memories/export writes)",
    )
    .await?;
    let report = state
        .services
        .memory()
        .import_memories(entries, q.dry_run.unwrap_or(false), on_conflict)
        .await?;
    Ok(HttpResponse::Ok().json(report))
}

/// A namespace's label for people: its kind and the workspace it is named after.
fn v2_namespace(n: &molecule_namespace::ResolvedNamespace) -> molecule_api::memories::V2Namespace {
    use molecule_domain::{NamespaceKind, Vocabulary};
    let name = n.name.to_string();
    let id = name.split_once(':').map_or(name.as_str(), |(_, id)| id);
    let short: String = id.chars().take(8).collect();
    let label = match (n.kind, n.display_name.as_deref()) {
        (NamespaceKind::Workspace, Some(d)) => format!("Workspace ({d})"),
        (NamespaceKind::Workspace, None) => format!("Workspace ({short})"),
        (NamespaceKind::Team, Some(d)) => format!("Team ({d})"),
        (NamespaceKind::Team, None) => format!("Team ({short})"),
        (NamespaceKind::Org, Some(d)) => format!("Org ({d})"),
        (NamespaceKind::Org, None) => format!("Org ({id})"),
        (NamespaceKind::Custom, _) => name.clone(),
    };
    molecule_api::memories::V2Namespace {
        kind: n.kind.as_str().to_owned(),
        name,
        label,
    }
}

/// The namespaces the workspace may read and write, as the MCP tools resolve them.
#[utoipa::path(
    tag = "memory",
    params(("id" = Uuid, Path, description = "workspace id")),
    responses(
        (status = 200, body = molecule_api::memories::V2Namespaces), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody, description = "no such workspace"), (status = 503, body = ErrorBody, description = "memory not configured (MEMORY_PLUGIN_URL)")
    ),
    security(("bearer" = []))
)]
#[get("/workspaces/{id}/v2/namespaces")]
pub async fn v2_namespaces(auth: WorkspaceAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let all = state
        .services
        .memory()
        .memory_namespaces(auth.workspace_id, false)
        .await
        .map_err(molecule_memory::memory::into_service)?;
    Ok(HttpResponse::Ok().json(molecule_api::memories::V2Namespaces {
        readable: all.iter().map(v2_namespace).collect(),
        writable: all.iter().filter(|n| n.writable).map(v2_namespace).collect(),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct V2MemoryQuery {
    /// Only this namespace (one the workspace may read; 403 otherwise).
    pub namespace: Option<String>,
    /// Full-text query.
    pub q: Option<String>,
    /// `fact`, `summary` or `checkpoint`.
    pub kind: Option<String>,
    /// 1..=100, default 50.
    pub limit: Option<u32>,
}

/// The memories the workspace may read, as the MCP tool `search_memory` finds them (same
/// ACL, org content wrapped the same way).
#[utoipa::path(
    tag = "memory",
    params(("id" = Uuid, Path, description = "workspace id"), V2MemoryQuery),
    responses(
        (status = 200, body = molecule_api::memories::V2Memories), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "a namespace the workspace may not read"),
        (status = 404, body = ErrorBody, description = "no such workspace"),
        (status = 503, body = ErrorBody, description = "memory not configured (MEMORY_PLUGIN_URL) or the plugin failing")
    ),
    security(("bearer" = []))
)]
#[get("/workspaces/{id}/v2/memories")]
pub async fn v2_memories(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    query: web::Query<V2MemoryQuery>,
) -> Result<HttpResponse, ApiError> {
    use molecule_domain::Vocabulary;
    let q = query.into_inner();
    let kinds = match q.kind.as_deref() {
        None | Some("") => Vec::new(),
        Some(k) => vec![molecule_domain::MemoryKind::parse(k).map_err(|_| {
            ApiError::new(
                actix_web::http::StatusCode::BAD_REQUEST,
                format!("kind: must be fact, summary or checkpoint, got {k:?}"),
            )
        })?],
    };
    if let Some(l) = q.limit
        && !(1..=100).contains(&l)
    {
        return Err(ApiError::new(
            actix_web::http::StatusCode::BAD_REQUEST,
            format!("limit: must be 1..=100, got {l}"),
        ));
    }
    let found = state
        .services
        .memory()
        .search_memory(
            auth.workspace_id,
            molecule_memory::memory::Search {
                query: q.q,
                namespaces: q.namespace.into_iter().collect(),
                kinds,
                limit: Some(q.limit.unwrap_or(50)),
            },
        )
        .await
        .map_err(molecule_memory::memory::into_service)?;
    let memories = found
        .into_iter()
        .map(|m| molecule_api::memories::V2Memory {
            source_workspace_id: m
                .propagation
                .as_ref()
                .and_then(|p| p.get("source_workspace_id"))
                .and_then(|v| v.as_str())
                .map(str::to_owned),
            id: m.id,
            namespace: m.namespace,
            content: m.content,
            kind: m.kind.as_str().to_owned(),
            source: m.source.as_str().to_owned(),
            pin: m.pin,
            expires_at: m.expires_at,
            created_at: m.created_at,
            score: m.score,
        })
        .collect();
    Ok(HttpResponse::Ok().json(molecule_api::memories::V2Memories { memories }))
}

/// Forget a memory of the workspace's own namespace (`workspace:<id>`), as the MCP tool
/// `forget_memory` does; 404 `memory not found`.
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
#[delete("/workspaces/{id}/v2/memories/{memory_id}")]
pub async fn v2_forget(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    path: web::Path<(String, uuid::Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (_, memory_id) = path.into_inner();
    state
        .services
        .memory()
        .forget_memory(auth.workspace_id, memory_id, None)
        .await
        .map_err(molecule_memory::memory::into_service)?;
    Ok(HttpResponse::Ok().json(MemoryDeleted {
        status: "deleted".into(),
    }))
}
