//! Delegation routes: delegate, record, update, heartbeat, list, and the admin ledger views.
//!
//! Must not know: SQL or the ledger's statements.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use molecule_api::delegations::{DelegateRequest, Delegated, DelegationView, RecordRequest, UpdateRequest, Updated};
use molecule_ledger::{Delegation, StatusFilter};
use serde::Deserialize;

use crate::auth::{AdminAuth, WorkspaceAuth};
use crate::errors::{ApiError, ErrorBody};
use crate::state::AppState;

/// Delegate a task to another workspace. Runs in the background (A2A `message/send` to the
/// callee); the result lands in this workspace's inbox. 202, or 200 for an idempotent repeat;
/// 404 for an unknown target and 403 when the hierarchy forbids the pair.
#[utoipa::path(
    tag = "delegations",
    params(("id" = Uuid, Path, description = "caller workspace id")),
    request_body = DelegateRequest,
    responses(
        (status = 202, body = Delegated), (status = 200, body = Delegated, description = "idempotent hit"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "the hierarchy forbids this pair"),
        (status = 404, body = ErrorBody, description = "no such target"), (status = 503, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
#[post("/workspaces/{id}/delegate")]
pub async fn delegate(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    body: web::Json<DelegateRequest>,
) -> Result<HttpResponse, ApiError> {
    let d = state
        .services
        .messaging()
        .delegate(auth.workspace_id, body.into_inner())
        .await?;
    Ok(if d.idempotent_hit {
        HttpResponse::Ok()
    } else {
        HttpResponse::Accepted()
    }
    .json(d))
}

/// Record a delegation the agent made itself (it becomes `dispatched`).
#[utoipa::path(
    tag = "delegations",
    params(("id" = Uuid, Path, description = "caller workspace id")),
    request_body = RecordRequest,
    responses(
        (status = 202, body = Delegated), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
#[post("/workspaces/{id}/delegations/record")]
pub async fn record_delegation(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    body: web::Json<RecordRequest>,
) -> Result<HttpResponse, ApiError> {
    let d = state
        .services
        .messaging()
        .record_delegation(auth.workspace_id, body.into_inner())
        .await?;
    Ok(HttpResponse::Accepted().json(d))
}

/// Report a delegation's outcome (`completed` or `failed`). `applied` says whether this call
/// made the transition.
#[utoipa::path(
    tag = "delegations",
    params(("id" = Uuid, Path, description = "workspace id (caller or callee)"), ("delegation_id" = String, Path, description = "delegation id")),
    request_body = UpdateRequest,
    responses(
        (status = 200, body = Updated), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 503, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
#[post("/workspaces/{id}/delegations/{delegation_id}/update")]
pub async fn update_delegation(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Json<UpdateRequest>,
) -> Result<HttpResponse, ApiError> {
    let u = state
        .services
        .messaging()
        .update_delegation(auth.workspace_id, &path.1, body.into_inner())
        .await?;
    Ok(HttpResponse::Ok().json(u))
}

/// Keep a delegation alive (a `stuck` one returns to `in_progress`).
#[utoipa::path(
    tag = "delegations",
    params(("id" = Uuid, Path, description = "workspace id (caller or callee)"), ("delegation_id" = String, Path, description = "delegation id")),
    responses(
        (status = 200, description = "`{status:\"ok\", touched}`"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
#[post("/workspaces/{id}/delegations/{delegation_id}/heartbeat")]
pub async fn heartbeat_delegation(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let touched = state
        .services
        .messaging()
        .heartbeat_delegation(auth.workspace_id, &path.1)
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "ok", "touched": touched })))
}

/// Delegations sent and received by the workspace, newest first (at most 50).
#[utoipa::path(
    tag = "delegations",
    params(("id" = Uuid, Path, description = "workspace id")),
    responses((status = 200, body = Vec<DelegationView>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/workspaces/{id}/delegations")]
pub async fn list_delegations(auth: WorkspaceAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.services.messaging().list_delegations(auth.workspace_id).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AdminQuery {
    /// in_flight (default), stuck, failed or completed.
    pub status: Option<String>,
    /// 1..=1000, default 100.
    pub limit: Option<String>,
}

/// The admin listing page.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct AdminList {
    #[schema(value_type = Vec<Object>)]
    pub delegations: Vec<Delegation>,
    pub count: usize,
    pub status: String,
    pub limit: i64,
}

/// Delegations by status across the platform (admin).
#[utoipa::path(
    tag = "delegations",
    params(AdminQuery),
    responses((status = 200, body = AdminList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/admin/delegations")]
pub async fn admin_delegations(
    _: AdminAuth,
    state: web::Data<AppState>,
    q: web::Query<AdminQuery>,
) -> Result<HttpResponse, ApiError> {
    let requested = q.status.as_deref().unwrap_or("in_flight");
    let filter = StatusFilter::parse(requested).ok_or_else(|| {
        ApiError::new(StatusCode::BAD_REQUEST, "unknown status filter")
            .with_details(serde_json::json!({ "allowed": StatusFilter::ALLOWED, "requested_status": requested }))
    })?;
    let limit = match q.limit.as_deref() {
        None => 100,
        Some(raw) => match raw.trim().parse::<i64>() {
            Ok(n @ 1..=1000) => n,
            _ => {
                return Err(ApiError::new(StatusCode::BAD_REQUEST, "limit must be 1..1000")
                    .with_details(serde_json::json!({ "requested": raw })));
            }
        },
    };
    let rows = state.services.messaging().admin_delegations(filter, limit).await?;
    Ok(HttpResponse::Ok().json(AdminList {
        count: rows.len(),
        delegations: rows,
        status: filter.as_str().to_owned(),
        limit,
    }))
}

/// One delegation's timeline (admin).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct TimelineBody {
    /// The ledger row: status, last heartbeat, deadline, retries.
    #[schema(value_type = Object)]
    pub delegation: Delegation,
    /// `DELEGATION_*` events about it, oldest first, each with its actor.
    pub events: Vec<molecule_api::events::Event>,
    /// Its activity rows on either party, oldest first.
    pub activity: Vec<molecule_api::activity::Activity>,
}

/// One delegation as it went: its ledger row, the events recorded about it and its activity
/// rows (admin).
#[utoipa::path(
    tag = "delegations",
    params(("delegation_id" = String, Path, description = "delegation id")),
    responses((status = 200, body = TimelineBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/admin/delegations/{delegation_id}/timeline")]
pub async fn admin_delegation_timeline(
    _: AdminAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let t = state.services.messaging().delegation_timeline(path.trim()).await?;
    Ok(HttpResponse::Ok().json(TimelineBody {
        delegation: t.delegation,
        events: t.events,
        activity: t.activity,
    }))
}

/// Counts per status (zero-filled) and p50/p95/p99 durations of the last 24 h's completions (admin).
#[utoipa::path(
    tag = "delegations",
    responses((status = 200, description = "counts and duration percentiles"), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/admin/delegations/stats")]
pub async fn admin_delegation_stats(_: AdminAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let stats = state.services.messaging().delegation_stats().await?;
    let mut body = serde_json::to_value(&stats.counts).unwrap_or_default();
    if let Some(obj) = body.as_object_mut() {
        obj.insert("completed_last_24h".into(), serde_json::json!(stats.completed_last_24h));
        obj.insert("duration_seconds".into(), serde_json::json!({ "p50": stats.duration_p50_seconds, "p95": stats.duration_p95_seconds, "p99": stats.duration_p99_seconds }));
    }
    Ok(HttpResponse::Ok().json(body))
}
