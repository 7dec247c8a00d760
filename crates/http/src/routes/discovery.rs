//! Discovery routes: card updates, discovering a peer's URL, the peers list, and the access
//! check.
//!
//! Must not know: SQL or the hierarchy rule (the service applies it).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use molecule_api::discovery::{Access, CardUpdated, CheckAccess, Discovered, Peer, UpdateCard};
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::{WorkspaceAuth, authorize, path_workspace_id};
use crate::errors::{ApiError, ErrorBody};
use crate::state::AppState;

/// The header that names the calling workspace on agent-to-agent routes.
pub const CALLER_HEADER: &str = "X-Workspace-ID";

/// The calling workspace named by `X-Workspace-ID`: 400 when it is missing or not a UUID, 403
/// for a reserved caller prefix.
pub(crate) fn caller_of(req: &HttpRequest) -> Result<Uuid, ApiError> {
    let raw = req
        .headers()
        .get(CALLER_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "X-Workspace-ID: name the calling workspace in this header",
            )
        })?;
    if molecule_a2a::is_reserved_caller(raw) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "invalid caller ID"));
    }
    raw.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("X-Workspace-ID: must be a workspace UUID, got {raw:?}"),
        )
    })
}

/// An agent replaces its card (`AGENT_CARD_UPDATED`). Needs a token of that workspace.
#[utoipa::path(
    tag = "registry",
    request_body = UpdateCard,
    responses(
        (status = 200, body = CardUpdated), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
#[post("/registry/update-card")]
pub async fn update_card(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<UpdateCard>,
) -> Result<HttpResponse, ApiError> {
    authorize(&state, &req, body.workspace_id).await?;
    Ok(HttpResponse::Ok().json(state.services.messaging().update_card(body.into_inner()).await?))
}

/// Where the caller (`X-Workspace-ID`, authenticated by its own token or the admin token)
/// reaches workspace `id`. 403 when the hierarchy forbids the pair; 503 (`Retry-After`) unless
/// the target is online or degraded and has a URL.
#[utoipa::path(
    tag = "registry",
    params(
        ("id" = Uuid, Path, description = "target workspace id"),
        ("X-Workspace-ID" = Uuid, Header, description = "the calling workspace")
    ),
    responses(
        (status = 200, body = Discovered), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
#[get("/registry/discover/{id}")]
pub async fn discover(
    req: HttpRequest,
    state: web::Data<AppState>,
    target: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let target = path_workspace_id(&target)?;
    let caller = caller_of(&req)?;
    authorize(&state, &req, caller).await?;
    Ok(HttpResponse::Ok().json(state.services.messaging().discover(caller, target).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PeersQuery {
    /// Keep peers whose name or role contains this (case-insensitive).
    pub q: Option<String>,
}

/// The workspace's parent, siblings (other roots, for a root) and children, with status and
/// card: everyone it may talk to directly.
#[utoipa::path(
    tag = "registry",
    params(("id" = Uuid, Path, description = "workspace id"), PeersQuery),
    responses(
        (status = 200, body = Vec<Peer>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
#[get("/registry/{id}/peers")]
pub async fn peers(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    query: web::Query<PeersQuery>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(
        state
            .services
            .messaging()
            .peers(auth.workspace_id, query.q.as_deref())
            .await?,
    ))
}

/// Whether `caller_id` may communicate with `target_id` (`allowed` is false when either does
/// not exist). Unlike the original, which left this route open, it needs the admin token or a
/// token of `caller_id`: the answer maps the tree.
#[utoipa::path(
    tag = "registry",
    request_body = CheckAccess,
    responses(
        (status = 200, body = Access), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 503, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
#[post("/registry/check-access")]
pub async fn check_access(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<CheckAccess>,
) -> Result<HttpResponse, ApiError> {
    authorize(&state, &req, body.caller_id).await?;
    let allowed = state
        .services
        .messaging()
        .check_access(body.caller_id, body.target_id)
        .await?;
    Ok(HttpResponse::Ok().json(Access { allowed }))
}
