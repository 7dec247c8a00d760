//! Registry routes: agent registration and heartbeats, and the one-time bootstrap exchange of
//! workloads whose launch parameters the provider shows (EC2).
//!
//! Must not know: SQL.

use actix_web::{HttpRequest, HttpResponse, post, web};
use molecule_api::registry::{Heartbeat, HeartbeatAck, Register, Registered};

use crate::auth::authorize;
use crate::errors::{ApiError, ErrorBody};
use crate::state::AppState;

/// An agent announces its URL, card and delivery mode. Needs a token of that workspace.
/// Never revives a removed, paused or hibernated workspace (409).
#[utoipa::path(
    tag = "registry",
    request_body = Register,
    responses(
        (status = 200, body = Registered), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 503, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
#[post("/registry/register")]
pub async fn register(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<Register>,
) -> Result<HttpResponse, ApiError> {
    authorize(&state, &req, body.id).await?;
    Ok(HttpResponse::Ok().json(state.services.messaging().register(body.into_inner()).await?))
}

/// Periodic liveness and load report; moves the workspace between online and degraded.
#[utoipa::path(
    tag = "registry",
    request_body = Heartbeat,
    responses(
        (status = 200, body = HeartbeatAck), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 503, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
#[post("/registry/heartbeat")]
pub async fn heartbeat(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<Heartbeat>,
) -> Result<HttpResponse, ApiError> {
    authorize(&state, &req, body.workspace_id).await?;
    Ok(HttpResponse::Ok().json(state.services.messaging().heartbeat(body.into_inner()).await?))
}

/// `POST /registry/bootstrap` body.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BootstrapRequest {
    pub workspace_id: uuid::Uuid,
    /// `MOLECULE_BOOTSTRAP_CODE` from the workload's launch parameters.
    pub code: String,
}

/// An EC2 workload redeems its one-time code for its secret environment (its token
/// included): `{env: {KEY: value}}`. The code is the credential; unknown, used, expired or
/// another workspace's → 401.
#[utoipa::path(
    tag = "registry",
    request_body = BootstrapRequest,
    responses(
        (status = 200, description = "`{env: {KEY: value}, files: {path: base64}}`: the secret environment and, on the first provision, the files of `/configs`", body = Object), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)
    )
)]
#[post("/registry/bootstrap")]
pub async fn bootstrap(
    state: web::Data<AppState>,
    body: web::Json<BootstrapRequest>,
) -> Result<HttpResponse, ApiError> {
    use base64::Engine as _;
    use molecule_secrets::ExposeSecret;
    let redeemed = state
        .services
        .vault()
        .redeem_bootstrap(body.workspace_id, &body.code)
        .await?;
    let env: serde_json::Map<String, serde_json::Value> = redeemed
        .env
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v.expose_secret().to_owned())))
        .collect();
    let files: serde_json::Map<String, serde_json::Value> = redeemed
        .files
        .into_iter()
        .map(|(k, v)| {
            (
                k,
                serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(v)),
            )
        })
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(serde_json::json!({ "env": env, "files": files })))
}
