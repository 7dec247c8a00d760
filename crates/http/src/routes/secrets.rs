//! Secret routes: a workspace's secrets (`/workspaces/:id/secrets`), the globals
//! (`/settings/secrets`, with the original's `/admin/secrets` aliases), and a workspace's model
//! (`/workspaces/:id/model`). Lists never carry a value; only the workspace's own token reads
//! `…/secrets/values`.
//!
//! Must not know: how values are sealed or stored, or how a workload receives them.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, delete, get, post, put, web};
use molecule_api::secrets::{ModelChanged, SecretChanged, SecretEntry, SetModel, SetSecret, WorkspaceModel};
use molecule_secrets::ExposeSecret;

use crate::auth::{AdminAuth, WorkspaceAuth};
use crate::errors::{ApiError, ErrorBody};
use crate::state::AppState;

/// The workspace's secrets and the globals it does not override, without values.
#[utoipa::path(
    tag = "secrets",
    params(("id" = Uuid, Path, description = "workspace id")),
    responses((status = 200, body = Vec<SecretEntry>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "the workspace is removed", body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/workspaces/{id}/secrets")]
pub async fn list_secrets(auth: WorkspaceAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.services.vault().list_secrets(auth.workspace_id).await?))
}

/// `{KEY: value}` as the workspace's agent sees them (globals, then its own on top). Only the
/// workspace's own token may read values; the admin token gets 403.
#[utoipa::path(
    tag = "secrets",
    params(("id" = Uuid, Path, description = "workspace id")),
    responses((status = 200, description = "`{KEY: value}`", body = Object), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, description = "not the workspace's own token", body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "the workspace is removed", body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/workspaces/{id}/secrets/values")]
pub async fn secret_values(auth: WorkspaceAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if auth.is_admin() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "secret values are shown only to the workspace's own token; operators list keys with GET /workspaces/:id/secrets",
        ));
    }
    let values = state.services.vault().secret_values(auth.workspace_id).await?;
    let body: serde_json::Map<String, serde_json::Value> = values
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v.expose_secret().to_owned())))
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(body))
}

async fn set_workspace(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    body: web::Json<SetSecret>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(
        state
            .services
            .vault()
            .set_secret(auth.workspace_id, body.into_inner())
            .await?,
    ))
}

/// Set a workspace secret (`{key, value}`); the workspace restarts if its workload runs.
#[utoipa::path(
    tag = "secrets",
    params(("id" = Uuid, Path, description = "workspace id")),
    request_body = SetSecret,
    responses((status = 200, body = SecretChanged), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "the workspace is removed", body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/workspaces/{id}/secrets")]
pub async fn post_secret(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    body: web::Json<SetSecret>,
) -> Result<HttpResponse, ApiError> {
    set_workspace(auth, state, body).await
}

/// Set a workspace secret (`{key, value}`), as POST.
#[utoipa::path(
    tag = "secrets",
    params(("id" = Uuid, Path, description = "workspace id")),
    request_body = SetSecret,
    responses((status = 200, body = SecretChanged), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "the workspace is removed", body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[put("/workspaces/{id}/secrets")]
pub async fn put_secret(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    body: web::Json<SetSecret>,
) -> Result<HttpResponse, ApiError> {
    set_workspace(auth, state, body).await
}

/// Delete a workspace secret (404 if it has none of that key); the workspace restarts if its
/// workload runs.
#[utoipa::path(
    tag = "secrets",
    params(("id" = Uuid, Path, description = "workspace id"), ("key" = String, Path, description = "secret key")),
    responses((status = 200, body = SecretChanged), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "the workspace is removed", body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[delete("/workspaces/{id}/secrets/{key}")]
pub async fn delete_secret(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.services.vault().delete_secret(auth.workspace_id, &path.1).await?))
}

/// Every global secret, without values (admin).
#[utoipa::path(
    tag = "secrets",
    responses((status = 200, body = Vec<SecretEntry>), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/settings/secrets")]
pub async fn list_global(_: AdminAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    globals(state).await
}

async fn globals(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.services.vault().list_global_secrets().await?))
}

/// Every global secret (alias of `GET /settings/secrets`).
#[utoipa::path(
    tag = "secrets",
    responses((status = 200, body = Vec<SecretEntry>), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/admin/secrets")]
pub async fn list_global_alias(_: AdminAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    globals(state).await
}

async fn set_global(state: web::Data<AppState>, body: web::Json<SetSecret>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.services.vault().set_global_secret(body.into_inner()).await?))
}

/// Set a global secret (admin); every running workspace without its own value of that key
/// restarts.
#[utoipa::path(
    tag = "secrets",
    request_body = SetSecret,
    responses((status = 200, body = SecretChanged), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/settings/secrets")]
pub async fn post_global(
    _: AdminAuth,
    state: web::Data<AppState>,
    body: web::Json<SetSecret>,
) -> Result<HttpResponse, ApiError> {
    set_global(state, body).await
}

/// Set a global secret (admin), as POST.
#[utoipa::path(
    tag = "secrets",
    request_body = SetSecret,
    responses((status = 200, body = SecretChanged), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[put("/settings/secrets")]
pub async fn put_global(
    _: AdminAuth,
    state: web::Data<AppState>,
    body: web::Json<SetSecret>,
) -> Result<HttpResponse, ApiError> {
    set_global(state, body).await
}

/// Set a global secret (alias of `POST /settings/secrets`).
#[utoipa::path(
    tag = "secrets",
    request_body = SetSecret,
    responses((status = 200, body = SecretChanged), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/admin/secrets")]
pub async fn post_global_alias(
    _: AdminAuth,
    state: web::Data<AppState>,
    body: web::Json<SetSecret>,
) -> Result<HttpResponse, ApiError> {
    set_global(state, body).await
}

async fn remove_global(state: web::Data<AppState>, key: &str) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.services.vault().delete_global_secret(key).await?))
}

/// Delete a global secret (admin; 404 if there is none); every running workspace without its
/// own value of that key restarts.
#[utoipa::path(
    tag = "secrets",
    params(("key" = String, Path, description = "secret key")),
    responses((status = 200, body = SecretChanged), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[delete("/settings/secrets/{key}")]
pub async fn delete_global(
    _: AdminAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    remove_global(state, &path).await
}

/// Delete a global secret (alias of `DELETE /settings/secrets/:key`).
#[utoipa::path(
    tag = "secrets",
    params(("key" = String, Path, description = "secret key")),
    responses((status = 200, body = SecretChanged), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[delete("/admin/secrets/{key}")]
pub async fn delete_global_alias(
    _: AdminAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    remove_global(state, &path).await
}

/// The workspace's model and provider, as its runtime gets them (`MODEL`, `MODEL_PROVIDER`,
/// `LLM_PROVIDER`).
#[utoipa::path(
    tag = "secrets",
    params(("id" = Uuid, Path, description = "workspace id")),
    responses((status = 200, body = WorkspaceModel), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/workspaces/{id}/model")]
pub async fn get_model(auth: WorkspaceAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.services.vault().get_model(auth.workspace_id).await?))
}

/// Set the model (`MODEL_PROVIDER` verbatim) and its provider (`llm_provider`, else derived
/// from the slug's prefix); the workspace restarts if its workload runs.
#[utoipa::path(
    tag = "secrets",
    params(("id" = Uuid, Path, description = "workspace id")),
    request_body = SetModel,
    responses((status = 200, body = ModelChanged), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "the workspace is removed", body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[put("/workspaces/{id}/model")]
pub async fn put_model(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    body: web::Json<SetModel>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(
        state
            .services
            .vault()
            .set_model(auth.workspace_id, body.into_inner())
            .await?,
    ))
}
