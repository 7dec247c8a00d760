//! Chat routes: file uploads into the workload (`/workspace/.molecule/chat-uploads/`),
//! downloads from its roots, and an agent's message to its user (`/notify`).
//!
//! Must not know: how files reach the workload, or the delivery-mode rules (use-cases).

use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use futures_util::StreamExt;
use molecule_api::activity::Notify;
use molecule_api::files::Uploaded;
use molecule_tree::files::{CHAT_MAX_FILE_BYTES, CHAT_MAX_TOTAL_BYTES};
use serde::Deserialize;

use crate::auth::WorkspaceAuth;
use crate::errors::{ApiError, ErrorBody};
use crate::state::AppState;

fn too_large(what: String) -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, what)
}

/// Upload files for the chat (multipart field `files`; 25 MiB per file, 50 MiB in all, else
/// 413; names sanitised to `[A-Za-z0-9._-]`, at most 100 characters). A workspace with no
/// callback URL in poll (or unset) delivery mode answers 422; a push one whose agent has not
/// registered its URL yet answers 503.
#[utoipa::path(
    tag = "chat",
    params(("id" = Uuid, Path, description = "workspace id")),
    request_body(content_type = "multipart/form-data", description = "one or more `files` parts"),
    responses((status = 201, body = Uploaded), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "no provisioner is configured", body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody), (status = 501, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/workspaces/{id}/chat/uploads")]
pub async fn upload(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    state.services.tree().check_chat_upload(auth.workspace_id).await?;
    let mut form = Multipart::new(req.headers(), payload.into_inner());
    let mut parts: Vec<(String, String, Vec<u8>)> = Vec::new();
    let mut total = 0usize;
    while let Some(field) = form.next().await {
        let mut field =
            field.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("body: not multipart/form-data: {e}")))?;
        if field.name() != Some("files") {
            let name = field.name().unwrap_or_default().to_owned();
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("body: unknown form field {name:?}; files go in `files` parts"),
            ));
        }
        let file_name = field
            .content_disposition()
            .and_then(|cd| cd.get_filename())
            .unwrap_or("upload")
            .to_owned();
        let mime = field
            .content_type()
            .map_or_else(|| "application/octet-stream".to_owned(), ToString::to_string);
        let mut bytes = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("body: {e}")))?;
            if bytes.len() + chunk.len() > CHAT_MAX_FILE_BYTES {
                return Err(too_large(format!(
                    "files: {file_name:?} is over {} MiB",
                    CHAT_MAX_FILE_BYTES >> 20
                )));
            }
            total += chunk.len();
            if total > CHAT_MAX_TOTAL_BYTES {
                return Err(too_large(format!(
                    "files: over {} MiB in all",
                    CHAT_MAX_TOTAL_BYTES >> 20
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        parts.push((file_name, mime, bytes));
    }
    if parts.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "files: give at least one `files` part",
        ));
    }
    let mut files = Vec::with_capacity(parts.len());
    for (name, mime, bytes) in parts {
        files.push(
            state
                .services
                .tree()
                .store_chat_upload(auth.workspace_id, &name, &mime, bytes)
                .await?,
        );
    }
    Ok(HttpResponse::Created().json(Uploaded { files }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DownloadQuery {
    /// An absolute path under `/configs`, `/workspace`, `/home` or `/plugins` (required).
    pub path: Option<String>,
}

/// Download a file of the workload (an absolute path under one of the roots; anything else
/// is 400).
#[utoipa::path(
    tag = "chat",
    params(("id" = Uuid, Path, description = "workspace id"), DownloadQuery),
    responses((status = 200, description = "the file's bytes", content_type = "application/octet-stream"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "no provisioner is configured", body = ErrorBody), (status = 413, body = ErrorBody), (status = 501, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/workspaces/{id}/chat/download")]
pub async fn download(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    q: web::Query<DownloadQuery>,
) -> Result<HttpResponse, ApiError> {
    let (name, bytes) = state
        .services
        .tree()
        .chat_download(auth.workspace_id, q.path.as_deref().unwrap_or_default())
        .await?;
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header(("Content-Disposition", format!("attachment; filename=\"{name}\"")))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(bytes))
}

/// An agent's message to its user, with optional attachments: `AGENT_MESSAGE` and an
/// `a2a_receive`/`notify` activity row.
#[utoipa::path(
    tag = "chat",
    params(("id" = Uuid, Path, description = "workspace id")),
    request_body = Notify,
    responses((status = 200, description = "`{status:\"sent\", activity_id}`"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/workspaces/{id}/notify")]
pub async fn notify(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    body: web::Json<Notify>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let activity_id = state
        .services
        .tree()
        .notify_user_with(auth.workspace_id, &body.message, &body.attachments)
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "sent", "activity_id": activity_id })))
}
