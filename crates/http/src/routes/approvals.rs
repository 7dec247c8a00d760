//! Approval routes: an agent asks (`POST /workspaces/:id/approvals`), lists its requests,
//! withdraws one; the operator sees every pending one (`GET /approvals/pending`); the
//! operator or an **ancestor** workspace decides (`…/decide`). The requester's own token
//! cannot decide (the original let it).
//!
//! Must not know: the table, the events, how an agent waits.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use molecule_api::approvals::{Approval, ApprovalCreated, ApprovalOutcome, CreateApproval, Decide, PendingApproval};
use molecule_approvals::{Decider, NewApproval};
use molecule_tree::tokens::TokenDigest;
use uuid::Uuid;

use crate::auth::{AdminAuth, WorkspaceAuth, bearer, path_workspace_id};
use crate::errors::{ApiError, ErrorBody};
use crate::state::AppState;

/// An approval id from the path: anything but a UUID names no request (404, as an unknown one).
fn approval_id(raw: &str) -> Result<Uuid, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "approval not found"))
}

fn wire(a: molecule_approvals::Approval) -> Approval {
    Approval {
        id: a.id,
        workspace_id: a.workspace_id,
        task_id: a.task_id,
        action: a.action,
        reason: a.reason,
        context: a.context,
        status: a.status,
        decided_by: a.decided_by,
        decided_at: a.decided_at,
        expires_at: a.expires_at,
        created_at: a.created_at,
    }
}

/// Ask for a decision. `APPROVAL_REQUESTED` goes out on the workspace and
/// `APPROVAL_ESCALATED` on its parent; the request expires undecided after `timeout_seconds`
/// (default and most: `APPROVAL_TIMEOUT_MINUTES`).
#[utoipa::path(
    tag = "approvals",
    params(("id" = Uuid, Path, description = "the requesting workspace")),
    request_body = CreateApproval,
    responses((status = 201, body = ApprovalCreated), (status = 400, description = "a field is missing or wrong (`action`, `task_id`, `reason`, `context`, `timeout_seconds`), named in the answer", body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "the workspace is removed", body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/workspaces/{id}/approvals")]
pub async fn create_approval(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    body: web::Json<CreateApproval>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let made = state
        .services
        .approvals()
        .request(
            auth.workspace_id,
            NewApproval {
                action: b.action,
                task_id: b.task_id,
                reason: b.reason,
                context: b.context,
                timeout_seconds: b.timeout_seconds,
            },
        )
        .await?;
    Ok(HttpResponse::Created().json(ApprovalCreated {
        approval_id: made.id,
        status: made.status,
        expires_at: made.expires_at,
    }))
}

/// The workspace's requests, newest first (at most 50), with their context and outcome.
#[utoipa::path(
    tag = "approvals",
    params(("id" = Uuid, Path, description = "workspace id")),
    responses((status = 200, body = [Approval]), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/workspaces/{id}/approvals")]
pub async fn list_approvals(auth: WorkspaceAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let list = state.services.approvals().list(auth.workspace_id).await?;
    Ok(HttpResponse::Ok().json(list.into_iter().map(wire).collect::<Vec<_>>()))
}

/// Every pending request of every workspace, newest first (at most 50): the canvas's banner.
/// Reading expires nothing; the expiry loop does, with an event.
#[utoipa::path(
    tag = "approvals",
    responses((status = 200, body = [PendingApproval]), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/approvals/pending")]
pub async fn pending_approvals(_: AdminAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let list = state.services.approvals().pending().await?;
    let body: Vec<PendingApproval> = list
        .into_iter()
        .map(|(a, workspace_name)| PendingApproval {
            id: a.id,
            workspace_id: a.workspace_id,
            workspace_name,
            task_id: a.task_id,
            action: a.action,
            reason: a.reason,
            context: a.context,
            status: a.status,
            expires_at: a.expires_at,
            created_at: a.created_at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(body))
}

/// Who is deciding: the admin token, or a live workspace token (whose workspace must be an
/// ancestor of the requester; the store judges that).
async fn decider(req: &HttpRequest, state: &AppState, named: Option<String>) -> Result<Decider, ApiError> {
    if let Some(console) = crate::auth::console_caller(req) {
        molecule_actor::identify(format!("console:{}", console.actor));
        return Ok(Decider::Operator {
            name: named.or(Some(format!("console:{}", console.actor))),
        });
    }
    let token = bearer(req).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing auth token: send Authorization: Bearer <ADMIN_TOKEN or an ancestor workspace's token>",
        )
    })?;
    let digest = TokenDigest::of(token);
    if state
        .auth
        .admin_token
        .as_ref()
        .is_some_and(|admin| admin.matches(&digest))
    {
        molecule_actor::identify("admin");
        return Ok(Decider::Operator { name: named });
    }
    let owner = state.services.tree().token_owner(&digest).await?;
    molecule_actor::identify(format!("workspace:{}", owner.workspace_id));
    if let Some(named) = named.filter(|n| n.trim() != owner.workspace_id.to_string()) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "decided_by: a workspace decides as itself ({}); leave decided_by out, got {named:?}",
                owner.workspace_id
            ),
        ));
    }
    Ok(Decider::Workspace(owner.workspace_id))
}

/// Decide a pending request: `approved` or `denied`. Only the operator (admin token; it may
/// name itself in `decided_by`, default `human`) or an ancestor workspace of the requester
/// (its own token; recorded by its id) decides. Sends the original canvas's
/// `APPROVAL_APPROVED`/`APPROVAL_DENIED`, and `APPROVAL_DECIDED` `{approval_id, status,
/// decided_by}` on the requester, which its waiting agent hears on `/ws`.
#[utoipa::path(
    tag = "approvals",
    params(("id" = Uuid, Path, description = "the requesting workspace"), ("approval_id" = Uuid, Path, description = "approval id")),
    request_body = Decide,
    responses((status = 200, body = ApprovalOutcome), (status = 400, description = "`decision` is not `approved` or `denied`, or `decided_by` is wrong", body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, description = "the requester itself, or a workspace that is not its ancestor", body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "already decided, expired or withdrawn", body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/workspaces/{id}/approvals/{approval_id}/decide")]
pub async fn decide_approval(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Json<Decide>,
) -> Result<HttpResponse, ApiError> {
    let workspace_id = path_workspace_id(&path.0)?;
    let b = body.into_inner();
    let decider = decider(&req, &state, b.decided_by).await?;
    // Who may decide is judged before whether the request exists: a non-UUID id names no
    // request (the nil id never does), and is a 404 only for a caller who may decide.
    let id = path.1.parse().unwrap_or(Uuid::nil());
    let done = state
        .services
        .approvals()
        .decide(workspace_id, id, &b.decision, decider)
        .await?;
    Ok(HttpResponse::Ok().json(ApprovalOutcome {
        status: done.status,
        approval_id: done.id,
        decided_by: done.decided_by.unwrap_or_default(),
    }))
}

/// The requester takes back its pending request (`APPROVAL_WITHDRAWN`, and `APPROVAL_DECIDED`
/// with `withdrawn`). Only the requester's own token: the operator denies instead.
#[utoipa::path(
    tag = "approvals",
    params(("id" = Uuid, Path, description = "the requesting workspace"), ("approval_id" = Uuid, Path, description = "approval id")),
    responses((status = 200, body = ApprovalOutcome), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, description = "not the requester", body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "no longer pending", body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/workspaces/{id}/approvals/{approval_id}/withdraw")]
pub async fn withdraw_approval(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    if auth.is_admin() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not the requester: only the requesting workspace withdraws; the operator decides (deny) instead",
        ));
    }
    let id = approval_id(&path.1)?;
    let done = state.services.approvals().withdraw(auth.workspace_id, id).await?;
    Ok(HttpResponse::Ok().json(ApprovalOutcome {
        status: done.status,
        approval_id: done.id,
        decided_by: done.decided_by.unwrap_or_default(),
    }))
}
