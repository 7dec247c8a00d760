//! Activity rows: what agents did, and the inbox poll-mode agents read.
//!
//! Owns: the `activity_logs` table (every insert goes through [`ActivityRow`]). Must not
//! know: HTTP, or what the delegation rows mean to the ledger.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use molecule_api::activity::{Activity, Appended, NewActivity};
use molecule_db::schema::activity_logs as a;
use molecule_domain::{ActivityStatus, ActivityType, EventType, Vocabulary};
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{Result, ServiceError};
use crate::{Services, events, validate};

/// Largest page of `GET /activity`.
pub const MAX_LIMIT: i64 = 500;

/// An `activity_logs` row as read.
#[derive(Queryable, Selectable)]
#[diesel(table_name = a)]
struct Stored {
    id: Uuid,
    workspace_id: Uuid,
    activity_type: String,
    source_id: Option<Uuid>,
    target_id: Option<Uuid>,
    method: Option<String>,
    summary: Option<String>,
    request_body: Option<Value>,
    response_body: Option<Value>,
    duration_ms: Option<i32>,
    status: String,
    error_detail: Option<String>,
    tool_trace: Option<Value>,
    idempotency_key: Option<String>,
    created_at: OffsetDateTime,
}

impl TryFrom<Stored> for Activity {
    type Error = ServiceError;

    /// Every writer goes through [`ActivityRow`], so an unknown value means a row written by
    /// something else: a 500 naming the row, not a silently relabelled one.
    fn try_from(r: Stored) -> Result<Self> {
        const DOING: &str = "reading an activity row";
        Ok(Self {
            activity_type: ActivityType::parse(&r.activity_type).map_err(|e| ServiceError::internal(DOING, e))?,
            status: ActivityStatus::parse(&r.status).map_err(|e| ServiceError::internal(DOING, e))?,
            id: r.id,
            workspace_id: r.workspace_id,
            source_id: r.source_id,
            target_id: r.target_id,
            method: r.method,
            summary: r.summary,
            request_body: r.request_body,
            response_body: r.response_body,
            duration_ms: r.duration_ms,
            error_detail: r.error_detail,
            tool_trace: r.tool_trace,
            idempotency_key: r.idempotency_key,
            created_at: r.created_at,
        })
    }
}

/// One `activity_logs` row: every writer (agents' posts, delegation bookkeeping) inserts
/// through this, so the columns and vocabularies are written one way.
#[derive(Debug, Clone)]
pub(crate) struct ActivityRow<'a> {
    pub workspace_id: Uuid,
    pub activity_type: ActivityType,
    pub method: Option<&'a str>,
    pub source_id: Option<Uuid>,
    pub target_id: Option<Uuid>,
    pub summary: Option<&'a str>,
    pub request_body: Option<&'a Value>,
    pub response_body: Option<&'a Value>,
    pub duration_ms: Option<i32>,
    pub status: ActivityStatus,
    pub error_detail: Option<&'a str>,
    pub tool_trace: Option<&'a Value>,
    pub idempotency_key: Option<&'a str>,
}

impl<'a> ActivityRow<'a> {
    /// A row with only its owner, type and status; set the rest with struct update syntax.
    pub(crate) fn new(workspace_id: Uuid, activity_type: ActivityType, status: ActivityStatus) -> Self {
        Self {
            workspace_id,
            activity_type,
            method: None,
            source_id: None,
            target_id: None,
            summary: None,
            request_body: None,
            response_body: None,
            duration_ms: None,
            status,
            error_detail: None,
            tool_trace: None,
            idempotency_key: None,
        }
    }

    /// Inserts the row on the caller's connection (inside its transaction) and returns its id.
    pub(crate) async fn insert(&self, conn: &mut AsyncPgConnection) -> Result<Uuid> {
        Ok(diesel::insert_into(a::table)
            .values((
                a::workspace_id.eq(self.workspace_id),
                a::activity_type.eq(self.activity_type.as_str()),
                a::source_id.eq(self.source_id),
                a::target_id.eq(self.target_id),
                a::method.eq(self.method),
                a::summary.eq(self.summary),
                a::request_body.eq(self.request_body),
                a::response_body.eq(self.response_body),
                a::duration_ms.eq(self.duration_ms),
                a::status.eq(self.status.as_str()),
                a::error_detail.eq(self.error_detail),
                a::tool_trace.eq(self.tool_trace),
                a::idempotency_key.eq(self.idempotency_key),
            ))
            .returning(a::id)
            .get_result(conn)
            .await?)
    }

    /// Inserts the row and sends `notifications` (payloads from
    /// [`events::live_notification`]) in one statement, so a hot path pays one round trip
    /// and one commit, and listeners hear of the row only once it is committed.
    pub(crate) async fn insert_notifying(
        &self,
        conn: &mut AsyncPgConnection,
        notifications: Vec<String>,
    ) -> Result<Uuid> {
        use diesel::sql_types::{Array, Integer, Jsonb, Nullable, Text, Uuid as SqlUuid};
        #[derive(QueryableByName)]
        struct Inserted {
            #[diesel(sql_type = SqlUuid)]
            id: Uuid,
        }
        let row: Inserted = diesel::sql_query(
            "WITH row AS ( \
               INSERT INTO activity_logs (workspace_id, activity_type, source_id, target_id, method, summary, \
                 request_body, response_body, duration_ms, status, error_detail, tool_trace, idempotency_key) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id), \
             sent AS (SELECT count(*) FROM (SELECT pg_notify($14, n) FROM unnest($15::text[]) AS n) AS each_one) \
             SELECT row.id FROM row, sent",
        )
        .bind::<SqlUuid, _>(self.workspace_id)
        .bind::<Text, _>(self.activity_type.as_str())
        .bind::<Nullable<SqlUuid>, _>(self.source_id)
        .bind::<Nullable<SqlUuid>, _>(self.target_id)
        .bind::<Nullable<Text>, _>(self.method)
        .bind::<Nullable<Text>, _>(self.summary)
        .bind::<Nullable<Jsonb>, _>(self.request_body)
        .bind::<Nullable<Jsonb>, _>(self.response_body)
        .bind::<Nullable<Integer>, _>(self.duration_ms)
        .bind::<Text, _>(self.status.as_str())
        .bind::<Nullable<Text>, _>(self.error_detail)
        .bind::<Nullable<Jsonb>, _>(self.tool_trace)
        .bind::<Nullable<Text>, _>(self.idempotency_key)
        .bind::<Text, _>(events::CHANNEL)
        .bind::<Array<Text>, _>(notifications)
        .get_result(conn)
        .await?;
        Ok(row.id)
    }
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
            Some(s) => match ActivityStatus::parse(s) {
                Ok(st) if ActivityStatus::AGENT_WRITABLE.contains(&st) => st,
                _ => {
                    return Err(ServiceError::invalid(
                        "status",
                        format!(
                            "status must be one of: {} (got {s:?})",
                            ActivityStatus::AGENT_WRITABLE
                                .iter()
                                .map(|v| v.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
            },
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
                let id = ActivityRow {
                    workspace_id,
                    activity_type: ty,
                    method: method.as_deref(),
                    source_id: input.source_id,
                    target_id: input.target_id,
                    summary: summary.as_deref(),
                    request_body: input.request_body.as_ref(),
                    response_body: input.response_body.as_ref(),
                    duration_ms: input.duration_ms,
                    status,
                    error_detail: input.error_detail.as_deref(),
                    tool_trace: None,
                    idempotency_key: key.as_deref(),
                }
                .insert(conn)
                .await?;
                events::record(conn, EventType::ActivityLogged, Some(workspace_id), json!({ "activity_type": ty.as_str(), "method": method, "summary": summary, "status": status.as_str(), "source_id": input.source_id, "target_id": input.target_id, "duration_ms": input.duration_ms })).await?;
                Ok(Appended { id, idempotent_hit: false })
            })
        .await
    }

    /// A row the platform writes for itself (audits), with its `ACTIVITY_LOGGED`, in one
    /// statement.
    pub(crate) async fn log_platform_activity(&self, row: ActivityRow<'_>) -> Result<Uuid> {
        let logged = events::live_notification(
            EventType::ActivityLogged,
            Some(row.workspace_id),
            json!({ "activity_type": row.activity_type.as_str(), "method": row.method, "summary": row.summary,
                    "status": row.status.as_str(), "source_id": row.source_id, "target_id": row.target_id }),
        )?;
        let mut conn = self.pool.get().await?;
        row.insert_notifying(&mut conn, vec![logged]).await
    }

    /// An agent's message to its user (the canvas): an `a2a_receive`/`notify` row with the
    /// text as its result, `ACTIVITY_LOGGED` and `AGENT_MESSAGE{message, workspace_id, name}`,
    /// in one statement.
    pub async fn notify_user(&self, ws: Uuid, message: &str) -> Result<Uuid> {
        let message = message.trim();
        if message.is_empty() {
            return Err(ServiceError::invalid("message", "must not be empty"));
        }
        let name = self.get_workspace(ws).await?.name;
        let summary: String = message.chars().take(200).collect();
        let response = json!({ "result": message });
        let notifications = vec![
            events::live_notification(
                EventType::ActivityLogged,
                Some(ws),
                json!({ "activity_type": ActivityType::A2aReceive.as_str(), "method": "notify", "summary": summary,
                        "status": "ok", "source_id": ws }),
            )?,
            events::live_notification(
                EventType::AgentMessage,
                Some(ws),
                json!({ "message": message, "workspace_id": ws, "name": name }),
            )?,
        ];
        let mut conn = self.pool.get().await?;
        ActivityRow {
            method: Some("notify"),
            source_id: Some(ws),
            summary: Some(&summary),
            response_body: Some(&response),
            ..ActivityRow::new(ws, ActivityType::A2aReceive, ActivityStatus::Ok)
        }
        .insert_notifying(&mut conn, notifications)
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
        let rows: Vec<Stored> = q
            .order((a::created_at.desc(), a::id.desc()))
            .limit(limit)
            .select(Stored::as_select())
            .load(&mut conn)
            .await?;
        rows.into_iter().map(Activity::try_from).collect()
    }
}
