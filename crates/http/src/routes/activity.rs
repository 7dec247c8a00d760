//! Routes for activity rows and the inbox poll.
//!
//! Must not know: SQL (they call `Services`).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use molecule_api::activity::{Activity, Appended, NewActivity};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::auth::WorkspaceAuth;
use crate::errors::{ApiError, ErrorBody};
use crate::state::AppState;

/// Record an activity row for the workspace (`source_id`, when given, must be the workspace).
#[utoipa::path(
    tag = "activity",
    params(("id" = Uuid, Path, description = "workspace id")),
    request_body = NewActivity,
    responses(
        (status = 201, body = Appended), (status = 200, body = Appended, description = "idempotent hit"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 503, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
#[post("/workspaces/{id}/activity")]
pub async fn append_activity(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    body: web::Json<NewActivity>,
) -> Result<HttpResponse, ApiError> {
    let appended = state
        .services
        .tree()
        .append_activity(auth.workspace_id, body.into_inner())
        .await?;
    Ok(if appended.idempotent_hit {
        HttpResponse::Ok()
    } else {
        HttpResponse::Created()
    }
    .json(appended))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ActivityQuery {
    /// Only rows of this activity type.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub kind: Option<String>,
    /// 1..=500, default 100.
    pub limit: Option<i64>,
    /// RFC 3339 timestamp: only rows created after it.
    pub since: Option<String>,
}

/// The workspace's activity, newest first: the inbox poll-mode agents read.
#[utoipa::path(
    tag = "activity",
    params(("id" = Uuid, Path, description = "workspace id"), ActivityQuery),
    responses(
        (status = 200, body = Vec<Activity>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)
    ),
    security(("bearer" = []))
)]
#[get("/workspaces/{id}/activity")]
pub async fn list_activity(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    q: web::Query<ActivityQuery>,
) -> Result<HttpResponse, ApiError> {
    let since = q
        .since
        .as_deref()
        .map(|s| OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339))
        .transpose()
        .map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("since: must be an RFC 3339 timestamp: {e}"),
            )
        })?;
    let rows = state
        .services
        .tree()
        .list_activity(auth.workspace_id, q.kind.as_deref(), q.limit, since)
        .await?;
    Ok(HttpResponse::Ok().json(rows))
}
