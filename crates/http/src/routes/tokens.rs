//! Workspace token routes: mint, list, revoke, rotate; and an external agent's credentials
//! (rotate with its connection payload, or the payload alone).
//!
//! Must not know: how tokens are hashed or stored.

use actix_web::{HttpResponse, delete, get, post, web};
use molecule_api::tokens::{MintedToken, TokenSummary};
use molecule_api::workspaces::ExternalConnection;
use uuid::Uuid;

use crate::auth::{AdminAuth, WorkspaceAuth};
use crate::errors::{ApiError, ErrorBody};
use crate::state::AppState;

/// `GET /workspaces/:id/tokens` answer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct TokenList {
    pub count: usize,
    pub tokens: Vec<TokenSummary>,
}

/// Live tokens of the workspace (prefixes only).
#[utoipa::path(
    tag = "tokens",
    params(("id" = Uuid, Path, description = "workspace id")),
    responses((status = 200, body = TokenList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/workspaces/{id}/tokens")]
pub async fn list_tokens(auth: WorkspaceAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let tokens = state.services.tree().list_tokens(auth.workspace_id).await?;
    Ok(HttpResponse::Ok().json(TokenList {
        count: tokens.len(),
        tokens,
    }))
}

/// Mint another token (shown once). At most 50 live tokens per workspace.
#[utoipa::path(
    tag = "tokens",
    params(("id" = Uuid, Path, description = "workspace id")),
    responses((status = 201, body = MintedToken), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, description = "no such workspace", body = ErrorBody), (status = 409, description = "the workspace is removed", body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/workspaces/{id}/tokens")]
pub async fn mint_token(auth: WorkspaceAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Created().json(state.services.tree().mint_token(auth.workspace_id).await?))
}

/// Revoke every live token and mint one new one (rotate external credentials).
#[utoipa::path(
    tag = "tokens",
    params(("id" = Uuid, Path, description = "workspace id")),
    responses((status = 201, body = MintedToken), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, description = "no such workspace", body = ErrorBody), (status = 409, description = "the workspace is removed", body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/workspaces/{id}/tokens/rotate")]
pub async fn rotate_tokens(auth: WorkspaceAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Created().json(state.services.tree().rotate_tokens(auth.workspace_id).await?))
}

/// Revoke one token.
#[utoipa::path(
    tag = "tokens",
    params(("id" = Uuid, Path, description = "workspace id"), ("token_id" = Uuid, Path, description = "token id")),
    responses((status = 200, description = "revoked"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[delete("/workspaces/{id}/tokens/{token_id}")]
pub async fn revoke_token(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let raw = &path.1;
    let token_id = raw.parse::<Uuid>().map_err(|_| {
        ApiError::new(
            actix_web::http::StatusCode::BAD_REQUEST,
            format!("token_id: must be a UUID, got {raw:?}"),
        )
    })?;
    state.services.tree().revoke_token(auth.workspace_id, token_id).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "revoked", "token_id": token_id })))
}

/// An external workspace's new credentials: every live token revoked, one minted, and the full
/// connection payload with it (`EXTERNAL_CREDENTIALS_ROTATED`). The old token stops working at
/// once. A workspace that is not external → 400 pointing at `/restart`.
#[utoipa::path(
    tag = "tokens",
    params(("id" = Uuid, Path, description = "workspace id")),
    responses((status = 200, body = ExternalConnection), (status = 400, description = "bad id, or not an external workspace", body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, description = "no such workspace", body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/workspaces/{id}/external/rotate")]
pub async fn rotate_external(auth: WorkspaceAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let connection = state.services.tree().rotate_external(auth.workspace_id).await?;
    Ok(HttpResponse::Ok().json(ExternalConnection { connection }))
}

/// An external workspace's connection payload again, with an empty `auth_token` (nothing is
/// revoked). A workspace that is not external → 400 pointing at `/restart`.
#[utoipa::path(
    tag = "tokens",
    params(("id" = Uuid, Path, description = "workspace id")),
    responses((status = 200, body = ExternalConnection), (status = 400, description = "bad id, or not an external workspace", body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, description = "no such workspace", body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/workspaces/{id}/external/connection")]
pub async fn external_connection(auth: WorkspaceAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let connection = state.services.tree().external_connection(auth.workspace_id).await?;
    Ok(HttpResponse::Ok().json(ExternalConnection { connection }))
}

/// A fresh token for a workspace, for tests and smoke checks (admin): `{auth_token,
/// workspace_id}`. 404 in production unless `MOLECULE_ENABLE_TEST_TOKENS=1`. A provisioned
/// workspace's next provision revokes it like any other.
#[utoipa::path(
    tag = "admin",
    params(("id" = Uuid, Path, description = "workspace id")),
    responses((status = 200, description = "`{auth_token, workspace_id}`"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, description = "no such workspace, or disabled in production", body = ErrorBody), (status = 409, description = "the workspace is removed", body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/admin/workspaces/{id}/test-token")]
pub async fn test_token(
    _: AdminAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    if !state.auth.test_tokens {
        return Err(ApiError::new(
            actix_web::http::StatusCode::NOT_FOUND,
            "test tokens are disabled in production: set MOLECULE_ENABLE_TEST_TOKENS=1 on the server to enable them",
        ));
    }
    let id = crate::routes::parse_id(&path)?;
    let minted = state.services.tree().mint_token(id).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "auth_token": minted.auth_token, "workspace_id": id })))
}
