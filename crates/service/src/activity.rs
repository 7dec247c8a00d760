//! Activity rows: what agents did, and the inbox poll-mode agents read.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use molecule_db::schema::activity_logs as a;
use molecule_domain::{ActivityStatus, ActivityType, EventType, Vocabulary};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{Result, ServiceError};
use crate::{Services, events, validate};

/// Largest page of `GET /activity`.
pub const MAX_LIMIT: i64 = 500;

/// `POST /workspaces/:id/activity` body.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct NewActivity {
    /// a2a_send, a2a_receive, task_update, agent_log, skill_promotion, memory_write or error.
    pub activity_type: String,
    /// Must be the workspace itself when given.
    pub source_id: Option<Uuid>,
    pub target_id: Option<Uuid>,
    pub method: Option<String>,
    pub summary: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub request_body: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub response_body: Option<Value>,
    pub duration_ms: Option<i32>,
    /// ok (default), error or timeout.
    pub status: Option<String>,
    pub error_detail: Option<String>,
    /// A repeated key returns the first row instead of adding one.
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Clone, Serialize, Queryable, Selectable, utoipa::ToSchema)]
#[diesel(table_name = a)]
pub struct Activity {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub activity_type: String,
    pub source_id: Option<Uuid>,
    pub target_id: Option<Uuid>,
    pub method: Option<String>,
    pub summary: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub request_body: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub response_body: Option<Value>,
    pub duration_ms: Option<i32>,
    pub status: String,
    pub error_detail: Option<String>,
    pub idempotency_key: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Appended {
    pub id: Uuid,
    /// True when an earlier row with the same idempotency key was returned.
    pub idempotent_hit: bool,
}

impl Services {
    pub async fn append_activity(&self, workspace_id: Uuid, input: NewActivity) -> Result<Appended> {
        let ty = ActivityType::parse(input.activity_type.trim())
            .map_err(|e| ServiceError::invalid("activity_type", e.to_string()))?;
        if !ActivityType::AGENT_WRITABLE.contains(&ty) {
            return Err(ServiceError::invalid(
                "activity_type",
                format!(
                    "{ty} is written by the platform only; allowed: {}",
                    ActivityType::AGENT_WRITABLE
                        .iter()
                        .map(|t| t.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        if input.source_id.is_some_and(|s| s != workspace_id) {
            return Err(ServiceError::Forbidden("source_id must be the workspace itself".into()));
        }
        let status = match input.status.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => ActivityStatus::Ok,
            Some(s) => ActivityStatus::parse(s).map_err(|e| ServiceError::invalid("status", e.to_string()))?,
        };
        if input.duration_ms.is_some_and(|d| d < 0) {
            return Err(ServiceError::invalid("duration_ms", "must be >= 0"));
        }
        let method = validate::optional_text("method", input.method.as_deref(), 200, false)?;
        let summary = input
            .summary
            .as_deref()
            .map(|s| s.chars().take(2000).collect::<String>());
        let key = validate::optional_text("idempotency_key", input.idempotency_key.as_deref(), 200, false)?;
        let mut conn = self.pool.get().await?;
        conn.transaction::<_, ServiceError, _>(async move |conn| {
                if let Some(k) = &key {
                    let existing: Option<Uuid> = a::table.filter(a::workspace_id.eq(workspace_id)).filter(a::idempotency_key.eq(k)).select(a::id).first(conn).await.optional()?;
                    if let Some(id) = existing {
                        return Ok(Appended { id, idempotent_hit: true });
                    }
                }
                let id: Uuid = diesel::insert_into(a::table)
                    .values((
                        a::workspace_id.eq(workspace_id),
                        a::activity_type.eq(ty.as_str()),
                        a::source_id.eq(input.source_id),
                        a::target_id.eq(input.target_id),
                        a::method.eq(&method),
                        a::summary.eq(&summary),
                        a::request_body.eq(&input.request_body),
                        a::response_body.eq(&input.response_body),
                        a::duration_ms.eq(input.duration_ms),
                        a::status.eq(status.as_str()),
                        a::error_detail.eq(&input.error_detail),
                        a::idempotency_key.eq(&key),
                    ))
                    .returning(a::id)
                    .get_result(conn)
                    .await?;
                events::record(conn, EventType::ActivityLogged, Some(workspace_id), json!({ "activity_type": ty.as_str(), "method": method, "summary": summary, "status": status.as_str(), "source_id": input.source_id, "target_id": input.target_id, "duration_ms": input.duration_ms })).await?;
                Ok(Appended { id, idempotent_hit: false })
            })
        .await
    }

    /// Newest first; `since` (exclusive) lets a poller read only what is new.
    pub async fn list_activity(
        &self,
        workspace_id: Uuid,
        ty: Option<&str>,
        limit: Option<i64>,
        since: Option<OffsetDateTime>,
    ) -> Result<Vec<Activity>> {
        let limit = match limit {
            None => 100,
            Some(l) if (1..=MAX_LIMIT).contains(&l) => l,
            Some(l) => {
                return Err(ServiceError::invalid(
                    "limit",
                    format!("must be 1..={MAX_LIMIT}, got {l}"),
                ));
            }
        };
        let mut q = a::table.filter(a::workspace_id.eq(workspace_id)).into_boxed();
        if let Some(t) = ty.map(str::trim).filter(|t| !t.is_empty()) {
            let t = ActivityType::parse(t).map_err(|e| ServiceError::invalid("type", e.to_string()))?;
            q = q.filter(a::activity_type.eq(t.as_str()));
        }
        if let Some(s) = since {
            q = q.filter(a::created_at.gt(s));
        }
        let mut conn = self.pool.get().await?;
        Ok(q.order((a::created_at.desc(), a::id.desc()))
            .limit(limit)
            .select(Activity::as_select())
            .load(&mut conn)
            .await?)
    }
}
