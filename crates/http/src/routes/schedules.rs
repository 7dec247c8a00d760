//! Schedule routes: list, create, update, delete, run now, history, the per-workspace health
//! view, and the admin's view over every live workspace. Every route takes the admin token or the workspace's own token (the original's
//! health view let a forged `X-Workspace-ID` through; here it is one more workspace route).
//!
//! Must not know: cron syntax, the table, how a fire is delivered.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, delete, get, patch, post, web};
use molecule_api::schedules::{
    AdminScheduleHealth, CreateSchedule, Schedule, ScheduleCreated, ScheduleHealth, ScheduleRun, ScheduleStatus,
    UpdateSchedule,
};
use molecule_schedules::store::{NewSchedule, ScheduleChange};
use uuid::Uuid;

use crate::auth::{AdminAuth, WorkspaceAuth};
use crate::errors::{ApiError, ErrorBody};
use crate::state::AppState;

/// The runs `history` answers, at most (the original's).
const HISTORY_LIMIT: i64 = 20;

/// A schedule id from the path: anything but a UUID names no schedule (404, as an unknown one).
fn schedule_id(raw: &str) -> Result<Uuid, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "schedule not found"))
}

/// The workspace's schedules, oldest first.
#[utoipa::path(
    tag = "schedules",
    params(("id" = Uuid, Path, description = "workspace id")),
    responses((status = 200, body = [Schedule]), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/workspaces/{id}/schedules")]
pub async fn list_schedules(auth: WorkspaceAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let list = state.services.scheduler().schedules().list(auth.workspace_id).await?;
    Ok(HttpResponse::Ok().json(list.into_iter().map(Schedule::from).collect::<Vec<_>>()))
}

/// Create a schedule: `cron_expr` (five fields) and `prompt` are required; `timezone` is an
/// IANA name (default `UTC`); an unnamed schedule gets a generated name. The first run is the
/// first slot after now.
#[utoipa::path(
    tag = "schedules",
    params(("id" = Uuid, Path, description = "workspace id")),
    request_body = CreateSchedule,
    responses((status = 201, body = ScheduleCreated), (status = 400, description = "a field is missing or wrong (`cron_expr`, `timezone`, `prompt`, `name`), named in the answer", body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "the name is taken in this workspace", body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/workspaces/{id}/schedules")]
pub async fn create_schedule(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    body: web::Json<CreateSchedule>,
) -> Result<HttpResponse, ApiError> {
    state.services.tree().require_live(auth.workspace_id).await?;
    let b = body.into_inner();
    let made = state
        .services
        .scheduler()
        .schedules()
        .create(
            auth.workspace_id,
            NewSchedule {
                name: b.name,
                cron_expr: b.cron_expr,
                timezone: b.timezone,
                prompt: b.prompt,
                enabled: b.enabled,
                source: None,
            },
        )
        .await?;
    Ok(HttpResponse::Created().json(ScheduleCreated {
        id: made.id,
        status: "created",
        name: made.name,
        next_run_at: made.next_run_at,
    }))
}

/// Change a schedule (absent fields stay). A new expression or timezone, or enabling it,
/// recomputes the next run from now.
#[utoipa::path(
    tag = "schedules",
    params(("id" = Uuid, Path, description = "workspace id"), ("schedule_id" = Uuid, Path, description = "schedule id")),
    request_body = UpdateSchedule,
    responses((status = 200, body = ScheduleStatus), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[patch("/workspaces/{id}/schedules/{schedule_id}")]
pub async fn update_schedule(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Json<UpdateSchedule>,
) -> Result<HttpResponse, ApiError> {
    let id = schedule_id(&path.1)?;
    let b = body.into_inner();
    state
        .services
        .scheduler()
        .schedules()
        .update(
            auth.workspace_id,
            id,
            ScheduleChange {
                name: b.name,
                cron_expr: b.cron_expr,
                timezone: b.timezone,
                prompt: b.prompt,
                enabled: b.enabled,
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(ScheduleStatus::just("updated")))
}

/// Delete a schedule.
#[utoipa::path(
    tag = "schedules",
    params(("id" = Uuid, Path, description = "workspace id"), ("schedule_id" = Uuid, Path, description = "schedule id")),
    responses((status = 200, body = ScheduleStatus), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[delete("/workspaces/{id}/schedules/{schedule_id}")]
pub async fn delete_schedule(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let id = schedule_id(&path.1)?;
    state
        .services
        .scheduler()
        .schedules()
        .delete(auth.workspace_id, id)
        .await?;
    Ok(HttpResponse::Ok().json(ScheduleStatus::just("deleted")))
}

/// Fire the schedule now, through the same path as a due slot: the prompt goes to the agent
/// (queued if it is busy), the run is counted and its history row written. The answer does not
/// wait for the agent; the history says how it went. The next slot is left as it is.
#[utoipa::path(
    tag = "schedules",
    params(("id" = Uuid, Path, description = "workspace id"), ("schedule_id" = Uuid, Path, description = "schedule id")),
    responses((status = 200, body = ScheduleStatus), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/workspaces/{id}/schedules/{schedule_id}/run")]
pub async fn run_schedule(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let id = schedule_id(&path.1)?;
    let s = state.services.scheduler().start_run_now(auth.workspace_id, id).await?;
    Ok(HttpResponse::Ok().json(ScheduleStatus {
        status: "fired",
        workspace_id: Some(s.workspace_id),
        prompt: Some(s.prompt),
    }))
}

/// The schedule's last 20 runs, newest first.
#[utoipa::path(
    tag = "schedules",
    params(("id" = Uuid, Path, description = "workspace id"), ("schedule_id" = Uuid, Path, description = "schedule id")),
    responses((status = 200, body = [ScheduleRun]), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/workspaces/{id}/schedules/{schedule_id}/history")]
pub async fn schedule_history(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let id = schedule_id(&path.1)?;
    // 404 for a schedule that is not this workspace's, as every per-schedule route.
    state
        .services
        .scheduler()
        .schedules()
        .get(auth.workspace_id, id)
        .await?;
    let rows = state
        .services
        .tree()
        .schedule_runs(auth.workspace_id, id, HISTORY_LIMIT)
        .await?;
    let runs: Vec<ScheduleRun> = rows
        .into_iter()
        .map(|r| ScheduleRun {
            timestamp: r.created_at,
            duration_ms: r.duration_ms,
            status: r.status.to_string(),
            error_detail: r.error_detail,
            request: r.request_body.unwrap_or_default(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(runs))
}

/// Each schedule's state without its prompt or expression.
#[utoipa::path(
    tag = "schedules",
    params(("id" = Uuid, Path, description = "workspace id")),
    responses((status = 200, body = [ScheduleHealth]), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/workspaces/{id}/schedules/health")]
pub async fn schedules_health(auth: WorkspaceAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let list = state.services.scheduler().schedules().list(auth.workspace_id).await?;
    Ok(HttpResponse::Ok().json(list.into_iter().map(ScheduleHealth::from).collect::<Vec<_>>()))
}

/// Every schedule of every live workspace, disabled ones included, judged: `never_run`,
/// `stale` (no run for over twice the gap between its next two slots), `ok`, or `disabled`.
#[utoipa::path(
    tag = "schedules",
    responses((status = 200, body = [AdminScheduleHealth]), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/admin/schedules/health")]
pub async fn admin_schedules_health(_: AdminAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let names: std::collections::HashMap<Uuid, String> = state
        .services
        .tree()
        .list_workspaces()
        .await?
        .into_iter()
        .map(|w| (w.id, w.name))
        .collect();
    let rows = state
        .services
        .scheduler()
        .schedules()
        .admin_health(&names, time::OffsetDateTime::now_utc())
        .await?;
    Ok(HttpResponse::Ok().json(rows))
}
