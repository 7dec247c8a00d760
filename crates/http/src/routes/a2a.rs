//! Messaging routes: the A2A proxy, hibernation, a workspace's queue and budget, and the
//! operator's drop-stale.
//!
//! Who is calling the proxy: `X-Workspace-ID` names a calling workspace, which must present its
//! own token (or the admin token acting for it); without the header, the admin token means the
//! operator/canvas and the target's own token means the workspace messaging itself. Unlike the
//! original, whose proxy route was open, a message without any credential is refused (401).
//!
//! Must not know: SQL, the queue, or how a message is forwarded (the service does).

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use actix_web::{HttpRequest, HttpResponse, get, patch, post, web};
use molecule_a2a::jsonrpc::FORWARDED_HEADERS;
use molecule_api::a2a::{BadGateway, Budget, BudgetPatch, Dropped, ProxyOutcome, ProxyUnavailable, QueueView, Queued};
use molecule_api::lifecycle::Hibernated;
use molecule_messaging::proxy::{MAX_REQUEST_BYTES, ProxyRequest};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::auth::{AdminAuth, Caller, WorkspaceAuth, authorize, path_workspace_id};
use crate::errors::{ApiError, ErrorBody};
use crate::routes::discovery::{CALLER_HEADER, caller_of};
use crate::state::AppState;

/// Reads the body up to the proxy's limit: 413 past it, 400 when it is not JSON.
async fn json_body(payload: web::Payload) -> Result<serde_json::Value, ApiError> {
    super::limited_json(
        payload,
        MAX_REQUEST_BYTES,
        "a message",
        "JSON (a JSON-RPC 2.0 request, or {\"method\", \"params\"})",
    )
    .await
}

pub(crate) fn answer(outcome: ProxyOutcome) -> HttpResponse {
    let status = StatusCode::from_u16(outcome.status()).unwrap_or(StatusCode::BAD_GATEWAY);
    match outcome {
        ProxyOutcome::Answered { content_type, body, .. } => {
            let mut resp = HttpResponse::build(status);
            let ct = content_type
                .and_then(|c| HeaderValue::from_str(&c).ok())
                .unwrap_or(HeaderValue::from_static("application/json"));
            resp.insert_header((CONTENT_TYPE, ct));
            resp.body(body)
        }
        ProxyOutcome::Queued(q) => HttpResponse::build(status).json(q),
        ProxyOutcome::Unavailable(u) => HttpResponse::build(status)
            .insert_header((RETRY_AFTER, u.retry_after.to_string()))
            .json(u),
        ProxyOutcome::BadGateway(b) => HttpResponse::build(status).json(b),
        ProxyOutcome::BudgetExceeded => {
            HttpResponse::build(status).json(json!({ "error": "workspace budget limit exceeded" }))
        }
    }
}

/// Sends an A2A message to workspace `id` through the platform. The body is a JSON-RPC 2.0
/// request in either protocol version's names (`message/send` or `SendMessage`), or a bare
/// `{method, params}`/params object that is wrapped into one; a message without `messageId`
/// gets one. It is POSTed to the agent's URL as stored, with `A2A-Version` and
/// `A2A-Extensions` forwarded, and the agent's answer is passed through. A busy agent (timeout,
/// reset, 503 or 429) gets the message queued: 202 with the queue id. A hibernated workspace
/// is woken (503 `waking`); any other workspace without a URL is a 409 naming its status.
#[utoipa::path(
    tag = "a2a",
    params(
        ("id" = Uuid, Path, description = "target workspace id"),
        ("X-Workspace-ID" = Option<Uuid>, Header, description = "the calling workspace; absent: the operator/canvas (admin token) or the workspace itself (its token)")
    ),
    request_body(content = Object, description = "JSON-RPC 2.0 request, at most 1 MiB"),
    responses(
        (status = 200, description = "the agent's answer, passed through"),
        (status = 202, body = Queued), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 402, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 502, body = BadGateway), (status = 503, body = ProxyUnavailable)
    ),
    security(("bearer" = []))
)]
#[post("/workspaces/{id}/a2a")]
pub async fn proxy(
    req: HttpRequest,
    state: web::Data<AppState>,
    target: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let target = path_workspace_id(&target)?;
    let caller = if req.headers().contains_key(CALLER_HEADER) {
        let caller = caller_of(&req)?;
        // The original's rule: a caller must present its own token, else 401 (another
        // workspace's valid token included).
        authorize(&state, &req, caller).await.map_err(|e| {
            if e.status == StatusCode::FORBIDDEN {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "the bearer token is not a token of the workspace named by X-Workspace-ID",
                )
            } else {
                e
            }
        })?;
        Some(caller)
    } else {
        match authorize(&state, &req, target).await? {
            Caller::Admin => None,
            Caller::Workspace { .. } => Some(target),
        }
    };
    let body = json_body(payload).await?;
    let headers = FORWARDED_HEADERS
        .iter()
        .filter_map(|name| {
            let v = req.headers().get(*name)?.to_str().ok()?;
            Some(((*name).to_owned(), v.to_owned()))
        })
        .collect();
    let outcome = state
        .services
        .messaging()
        .proxy_a2a(ProxyRequest {
            target,
            caller,
            body,
            headers,
            via: None,
        })
        .await?;
    Ok(answer(outcome))
}

/// Stops an idle workspace's workload (volumes kept) and clears its URL; the next message wakes
/// it. Only from online or degraded with no active task; 409 otherwise, for an external
/// workspace, or without a provisioner.
#[utoipa::path(
    tag = "lifecycle",
    params(("id" = Uuid, Path, description = "workspace id")),
    responses(
        (status = 200, body = Hibernated), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
#[post("/workspaces/{id}/hibernate")]
pub async fn hibernate(auth: WorkspaceAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let reason = if auth.is_admin() {
        "requested by the operator"
    } else {
        "requested by the workspace"
    };
    Ok(HttpResponse::Ok().json(
        state
            .services
            .messaging()
            .hibernate_workspace(auth.workspace_id, reason)
            .await?,
    ))
}

/// The workspace's message queue: its depth, the live items in delivery order, then the most
/// recently finished (bodies are not shown).
#[utoipa::path(
    tag = "a2a",
    params(("id" = Uuid, Path, description = "workspace id")),
    responses(
        (status = 200, body = QueueView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "the workspace is removed"),
        (status = 503, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
#[get("/workspaces/{id}/a2a-queue")]
pub async fn queue(auth: WorkspaceAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.services.messaging().queue_view(auth.workspace_id).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DropStaleQuery {
    /// Drop live items enqueued longer ago than this (default 60).
    pub max_age_minutes: Option<i64>,
    /// Only this workspace's items (default: all).
    pub workspace_id: Option<Uuid>,
}

/// Drops queued messages older than `max_age_minutes`, keeping them as `dropped` with the reason.
#[utoipa::path(
    tag = "a2a",
    params(DropStaleQuery),
    responses(
        (status = 200, body = Dropped), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 503, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
#[post("/admin/a2a-queue/drop-stale")]
pub async fn drop_stale(
    _admin: AdminAuth,
    state: web::Data<AppState>,
    q: web::Query<DropStaleQuery>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(
        state
            .services
            .messaging()
            .drop_stale(q.max_age_minutes, q.workspace_id)
            .await?,
    ))
}

/// The workspace's monthly budget (cents), its spend as its agent reports it, and the tokens its
/// answers reported this month. Messages are refused with 402 while `exceeded`.
#[utoipa::path(
    tag = "a2a",
    params(("id" = Uuid, Path, description = "workspace id")),
    responses(
        (status = 200, body = Budget), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
#[get("/workspaces/{id}/budget")]
pub async fn get_budget(auth: WorkspaceAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.services.messaging().budget(auth.workspace_id).await?))
}

/// Sets the monthly budget in cents (`null` removes it). Admin only.
#[utoipa::path(
    tag = "a2a",
    params(("id" = Uuid, Path, description = "workspace id")),
    request_body = BudgetPatch,
    responses(
        (status = 200, body = Budget), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
#[patch("/workspaces/{id}/budget")]
pub async fn set_budget(
    _admin: AdminAuth,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<BudgetPatch>,
) -> Result<HttpResponse, ApiError> {
    let id = path_workspace_id(&id)?;
    Ok(HttpResponse::Ok().json(state.services.messaging().set_budget(id, body.into_inner()).await?))
}
