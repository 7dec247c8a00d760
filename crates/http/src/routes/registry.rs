//! Registry routes: agent registration and heartbeats.
//!
//! Must not know: SQL.

use actix_web::{HttpRequest, HttpResponse, post, web};
use molecule_api::registry::{Heartbeat, HeartbeatAck, Register, Registered};

use crate::auth::{authorize, bearer};
use crate::errors::{ApiError, ErrorBody};
use crate::server::AppState;

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
    authorize(&state, bearer(&req), body.id).await?;
    Ok(HttpResponse::Ok().json(state.services.register(body.into_inner()).await?))
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
    authorize(&state, bearer(&req), body.workspace_id).await?;
    Ok(HttpResponse::Ok().json(state.services.heartbeat(body.into_inner()).await?))
}
