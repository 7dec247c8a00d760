//! Schedule bodies (`/workspaces/:id/schedules*`): the original's shapes (A §1.3), with its
//! error strings where it had them.

use molecule_domain::{ScheduleHealthStatus, ScheduleRunStatus, ScheduleSource};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// A schedule as listed (oldest first).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Schedule {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub name: String,
    /// Five fields: minute, hour, day of month, month, day of week.
    pub cron_expr: String,
    /// An IANA name (`UTC`, `Europe/Berlin`).
    pub timezone: String,
    pub prompt: String,
    pub enabled: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_run_at: Option<OffsetDateTime>,
    /// The next slot, in UTC; null while disabled or when the pattern never matches again.
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_run_at: Option<OffsetDateTime>,
    pub run_count: i32,
    #[schema(value_type = Option<String>)]
    pub last_status: Option<ScheduleRunStatus>,
    pub last_error: Option<String>,
    /// `template` (an org import owns it) or `runtime` (the API's).
    #[schema(value_type = String)]
    pub source: ScheduleSource,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// `POST /workspaces/:id/schedules` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSchedule {
    /// Unique in the workspace; generated (`schedule-<8 hex>`) when absent or empty.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub cron_expr: String,
    /// Default `UTC`.
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub prompt: String,
    /// Default true.
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// `PATCH /workspaces/:id/schedules/:scheduleId` body: every field optional; null is absent.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSchedule {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub cron_expr: Option<String>,
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub prompt: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// `201` of a create.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScheduleCreated {
    pub id: Uuid,
    /// Always `created`.
    pub status: &'static str,
    /// The generated or given name.
    pub name: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_run_at: Option<OffsetDateTime>,
}

/// `200` of an update, a delete or a run: `{status: "updated" | "deleted" | "fired"}`, a run's
/// with what it sent.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScheduleStatus {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
}

impl ScheduleStatus {
    /// `{status}` alone (an update's or a delete's answer).
    pub fn just(status: &'static str) -> Self {
        Self {
            status,
            workspace_id: None,
            prompt: None,
        }
    }
}

/// One run of `GET …/schedules/:scheduleId/history` (at most 20, newest first).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScheduleRun {
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    /// From the send to the answer (the original never filled it).
    pub duration_ms: Option<i32>,
    /// `ok` or `error`; `request.schedule_status` says `stale` after the empty-answer streak.
    pub status: String,
    pub error_detail: Option<String>,
    /// What was sent: schedule id and name, cron expression, the prompt (at most 200 bytes),
    /// the messageId, `manual`, the slot (`due_at`, Unix seconds), `missed_slots`, `queued`.
    #[schema(value_type = Object)]
    pub request: Value,
}

/// One schedule of `GET /workspaces/:id/schedules/health` (no prompt, no expression).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScheduleHealth {
    pub id: Uuid,
    pub name: String,
    pub enabled: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_run_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_run_at: Option<OffsetDateTime>,
    pub run_count: i32,
    #[schema(value_type = Option<String>)]
    pub last_status: Option<ScheduleRunStatus>,
    pub last_error: Option<String>,
}

/// One schedule of `GET /admin/schedules/health` (every schedule of a live workspace, ordered
/// by workspace name, then schedule name).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AdminScheduleHealth {
    pub workspace_id: Uuid,
    pub workspace_name: String,
    pub schedule_id: Uuid,
    pub schedule_name: String,
    pub cron_expr: String,
    pub enabled: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_run_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expected_next_run: Option<OffsetDateTime>,
    /// `never_run`, `stale` (no run for over `stale_threshold_seconds`), `ok`, or `disabled`.
    #[schema(value_type = String)]
    pub status: ScheduleHealthStatus,
    /// Twice the gap between the schedule's next two slots (0 when it cannot tell).
    pub stale_threshold_seconds: i64,
}
