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
use crate::{Tree, events, validate};

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
pub struct ActivityRow<'a> {
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
    pub fn new(workspace_id: Uuid, activity_type: ActivityType, status: ActivityStatus) -> Self {
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
    pub async fn insert(&self, conn: &mut AsyncPgConnection) -> Result<Uuid> {
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
    pub async fn insert_notifying(&self, conn: &mut AsyncPgConnection, notifications: Vec<String>) -> Result<Uuid> {
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

/// How many platform rows one grouped statement writes at most.
const MAX_GROUP: usize = 256;
/// How many platform rows may wait for the writer before callers wait to hand theirs over.
const QUEUE_DEPTH: usize = 4096;
/// How long the writer waits for more rows after the first of a group: what an audit may lag
/// behind its call, for groups large enough that a busy replica's audits cost little.
const LINGER: std::time::Duration = std::time::Duration::from_millis(20);
/// How often a group the database refused (or could not be reached for) is tried again,
/// before its rows are tried one by one.
const GROUP_ATTEMPTS: usize = 3;

/// Platform rows (audits) written behind the caller, in groups. A caller hands its row over
/// and goes on: the audit is the platform's record of what an agent did, never a condition
/// of doing it (a failed audit never failed the call), so the agent does not wait for its
/// commit. Rows that arrive within [`LINGER`] of each other, or while one statement runs, go
/// together in one statement, so N audits cost one round trip, one parse and one commit (and
/// one turn of the global NOTIFY lock) instead of N.
///
/// Nothing is dropped silently: at most [`QUEUE_DEPTH`] rows wait, and past that callers
/// wait to hand theirs over; a group that fails is retried, then written row by row, and a
/// row that still fails is logged at `error` with its reason and counted in
/// `molecule_audit_rows_failed_total`. Shutdown calls [`AuditQueue::flush`] once the last
/// request has been answered. The writer runs on the runtime the queue was made on (the
/// server's main one, which outlives the HTTP workers), or on the first caller's.
#[derive(Clone)]
pub struct AuditQueue {
    sender: std::sync::Arc<std::sync::OnceLock<tokio::sync::mpsc::Sender<Job>>>,
    /// Cuts the writer's [`LINGER`] short when a flush is waiting.
    flush_now: std::sync::Arc<tokio::sync::Notify>,
    runtime: Option<tokio::runtime::Handle>,
}

impl Default for AuditQueue {
    fn default() -> Self {
        Self {
            sender: std::sync::Arc::default(),
            flush_now: std::sync::Arc::default(),
            runtime: tokio::runtime::Handle::try_current().ok(),
        }
    }
}

/// What the writer is handed: a row, or a request to answer once every row handed over
/// before it has been dealt with.
enum Job {
    Row(Box<Queued>),
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// A row waiting for the writer, owned, with its id chosen up front (a retried group cannot
/// write it twice) and its `ACTIVITY_LOGGED` payload.
struct Queued {
    id: Uuid,
    workspace_id: Uuid,
    activity_type: &'static str,
    source_id: Option<Uuid>,
    target_id: Option<Uuid>,
    method: Option<String>,
    summary: Option<String>,
    request_body: Option<Value>,
    response_body: Option<Value>,
    duration_ms: Option<i32>,
    status: &'static str,
    error_detail: Option<String>,
    tool_trace: Option<Value>,
    notification: String,
}

impl Queued {
    fn new(row: &ActivityRow<'_>, notification: String) -> Self {
        Self {
            id: Uuid::new_v4(),
            workspace_id: row.workspace_id,
            activity_type: row.activity_type.as_str(),
            source_id: row.source_id,
            target_id: row.target_id,
            method: row.method.map(str::to_owned),
            summary: row.summary.map(str::to_owned),
            request_body: row.request_body.cloned(),
            response_body: row.response_body.cloned(),
            duration_ms: row.duration_ms,
            status: row.status.as_str(),
            error_detail: row.error_detail.map(str::to_owned),
            tool_trace: row.tool_trace.cloned(),
            notification,
        }
    }
}

/// Writes `group` (and sends its notifications, packed into as few NOTIFYs as fit) in one
/// statement. Each row gets its own
/// `clock_timestamp()`, so rows of one group keep their order in listings; a row already
/// written (same id) is skipped.
async fn insert_group(conn: &mut AsyncPgConnection, group: &[Queued]) -> Result<()> {
    use diesel::sql_types::{Array, Integer, Jsonb, Nullable, Text, Uuid as SqlUuid};
    macro_rules! column {
        ($field:ident) => {
            group.iter().map(|q| q.$field.clone()).collect::<Vec<_>>()
        };
    }
    diesel::sql_query(
        "WITH rows AS ( \
           INSERT INTO activity_logs (id, workspace_id, activity_type, source_id, target_id, method, summary, \
             request_body, response_body, duration_ms, status, error_detail, tool_trace, created_at) \
           SELECT u.*, clock_timestamp() FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::uuid[], \
             $6::text[], $7::text[], $8::jsonb[], $9::jsonb[], $10::int4[], $11::text[], $12::text[], $13::jsonb[]) AS u \
           ON CONFLICT (id) DO NOTHING RETURNING 1), \
         sent AS (SELECT count(*) AS n FROM (SELECT pg_notify($14, n) FROM unnest($15::text[]) AS n) AS each_one) \
         SELECT (SELECT count(*) FROM rows) + (SELECT n FROM sent) AS total",
    )
    .bind::<Array<SqlUuid>, _>(column!(id))
    .bind::<Array<SqlUuid>, _>(column!(workspace_id))
    .bind::<Array<Text>, _>(column!(activity_type))
    .bind::<Array<Nullable<SqlUuid>>, _>(column!(source_id))
    .bind::<Array<Nullable<SqlUuid>>, _>(column!(target_id))
    .bind::<Array<Nullable<Text>>, _>(column!(method))
    .bind::<Array<Nullable<Text>>, _>(column!(summary))
    .bind::<Array<Nullable<Jsonb>>, _>(column!(request_body))
    .bind::<Array<Nullable<Jsonb>>, _>(column!(response_body))
    .bind::<Array<Nullable<Integer>>, _>(column!(duration_ms))
    .bind::<Array<Text>, _>(column!(status))
    .bind::<Array<Nullable<Text>>, _>(column!(error_detail))
    .bind::<Array<Nullable<Jsonb>>, _>(column!(tool_trace))
    .bind::<Text, _>(events::CHANNEL)
    .bind::<Array<Text>, _>(events::pack(group.iter().map(|q| q.notification.as_str())))
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes `group` once, on a pooled connection.
async fn write_once(pool: &molecule_db::Pool, group: &[Queued]) -> Result<()> {
    let mut conn = pool.get().await?;
    insert_group(&mut conn, group).await
}

/// The writer: takes what is waiting, and what comes within [`LINGER`] (up to [`MAX_GROUP`]
/// rows), writes the rows in one statement (retried with backoff while the database cannot
/// be reached, so a restart costs no rows), and then answers the flushes among them. When a
/// group still fails, its rows are written one by one, so one bad row fails alone, and a row
/// that fails is logged with its reason.
async fn write_groups(
    pool: molecule_db::Pool,
    mut rx: tokio::sync::mpsc::Receiver<Job>,
    flush_now: std::sync::Arc<tokio::sync::Notify>,
) {
    use backon::{ExponentialBuilder, Retryable};
    let backoff = ExponentialBuilder::default()
        .with_min_delay(std::time::Duration::from_millis(100))
        .with_max_times(GROUP_ATTEMPTS - 1);
    let mut jobs = Vec::with_capacity(MAX_GROUP);
    let mut group = Vec::with_capacity(MAX_GROUP);
    let mut flushes = Vec::new();
    while rx.recv_many(&mut jobs, MAX_GROUP).await > 0 {
        // The first rows open a group; the writer then sleeps for up to LINGER (a flush cuts
        // it short) and takes what came meanwhile. It sleeps rather than waits on the inbox,
        // so callers handing rows over do not wake it one row at a time.
        let mut flushing = false;
        let mut lingered = jobs.len() >= MAX_GROUP;
        loop {
            for job in jobs.drain(..) {
                match job {
                    Job::Row(row) => group.push(*row),
                    Job::Flush(done) => {
                        flushing = true;
                        flushes.push(done);
                    }
                }
            }
            if lingered || flushing {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep(LINGER) => {}
                () = flush_now.notified() => {}
            }
            lingered = true;
            while jobs.len() < MAX_GROUP.saturating_sub(group.len())
                && let Ok(job) = rx.try_recv()
            {
                jobs.push(job);
            }
        }
        if !group.is_empty() {
            let written = (|| write_once(&pool, &group))
                .retry(backoff)
                .when(|e| matches!(e, ServiceError::Unavailable(_)))
                .notify(|e, wait| {
                    tracing::warn!(rows = group.len(), error = %e.chain(), retry_in = ?wait, "a group of platform activity rows was not written; trying again");
                })
                .await;
            if let Err(e) = written {
                tracing::warn!(rows = group.len(), error = %e.chain(), "a group of platform activity rows failed; writing them one by one");
                for row in &group {
                    if let Err(e) = write_once(&pool, std::slice::from_ref(row)).await {
                        metrics::counter!("molecule_audit_rows_failed_total").increment(1);
                        tracing::error!(
                            activity_id = %row.id, workspace_id = %row.workspace_id, activity_type = row.activity_type,
                            target_id = ?row.target_id, error = %e.chain(),
                            "platform activity row not written"
                        );
                    }
                }
            }
            group.clear();
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

impl AuditQueue {
    /// The writer's inbox, starting the writer with the first row.
    fn sender(&self, pool: &molecule_db::Pool) -> &tokio::sync::mpsc::Sender<Job> {
        self.sender.get_or_init(|| {
            let (tx, rx) = tokio::sync::mpsc::channel(QUEUE_DEPTH);
            let writer = write_groups(pool.clone(), rx, self.flush_now.clone());
            match &self.runtime {
                Some(runtime) => drop(runtime.spawn(writer)),
                None => drop(tokio::spawn(writer)),
            }
            tx
        })
    }

    /// Hands `row` to the writer (waiting only while [`QUEUE_DEPTH`] rows already wait) and
    /// returns the id it will have. When the writer is gone (its runtime shut down), the
    /// caller writes the row itself.
    async fn write(&self, pool: &molecule_db::Pool, row: Queued) -> Result<Uuid> {
        let id = row.id;
        if let Err(tokio::sync::mpsc::error::SendError(job)) = self.sender(pool).send(Job::Row(Box::new(row))).await
            && let Job::Row(row) = job
        {
            write_once(pool, std::slice::from_ref(&row)).await?;
        }
        Ok(id)
    }

    /// Returns once every row handed over before the call has been written (or logged as
    /// failed); at once when nothing was ever handed over or the writer is gone.
    async fn flush(&self) {
        let Some(sender) = self.sender.get() else { return };
        let (done, answer) = tokio::sync::oneshot::channel();
        if sender.send(Job::Flush(done)).await.is_ok() {
            self.flush_now.notify_one();
            let _ = answer.await;
        }
    }
}

/// Keeps the caller's `delegate` activity row of `delegation_id` in step with the ledger.
/// Which of `ids` have an activity row newer than `since`.
pub async fn active_since(
    conn: &mut AsyncPgConnection,
    ids: &[Uuid],
    since: OffsetDateTime,
) -> Result<std::collections::HashSet<Uuid>> {
    let rows: Vec<Uuid> = a::table
        .filter(a::workspace_id.eq_any(ids))
        .filter(a::created_at.gt(since))
        .select(a::workspace_id)
        .distinct()
        .load(conn)
        .await?;
    Ok(rows.into_iter().collect())
}

pub async fn set_delegate_row_status(
    conn: &mut AsyncPgConnection,
    caller: Uuid,
    delegation_id: &str,
    status: ActivityStatus,
) -> Result<()> {
    diesel::sql_query(
        "UPDATE activity_logs SET status = $3 WHERE workspace_id = $1 AND method = 'delegate' AND request_body->>'delegation_id' = $2",
    )
    .bind::<diesel::sql_types::Uuid, _>(caller)
    .bind::<diesel::sql_types::Text, _>(delegation_id)
    .bind::<diesel::sql_types::Text, _>(status.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

impl Tree {
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

    /// A row the platform writes for itself (audits), with its `ACTIVITY_LOGGED`, written
    /// behind the caller in groups ([`AuditQueue`]); returns the row's id once it is handed
    /// over ([`Tree::flush_audits`] waits for it).
    pub async fn log_platform_activity(&self, row: ActivityRow<'_>) -> Result<Uuid> {
        let logged = events::live_notification(
            EventType::ActivityLogged,
            Some(row.workspace_id),
            json!({ "activity_type": row.activity_type.as_str(), "method": row.method, "summary": row.summary,
                    "status": row.status.as_str(), "source_id": row.source_id, "target_id": row.target_id }),
        )?;
        self.audits.write(&self.pool, Queued::new(&row, logged)).await
    }

    /// Returns once every audit row handed over so far is written (or logged as failed):
    /// shutdown calls it after the last request, so no audit is lost with the process.
    pub async fn flush_audits(&self) {
        self.audits.flush().await;
    }

    /// An agent's message to its user (the canvas): an `a2a_receive`/`notify` row with the
    /// text as its result, `ACTIVITY_LOGGED` and `AGENT_MESSAGE{message, workspace_id, name}`,
    /// in one statement.
    pub async fn notify_user(&self, ws: Uuid, message: &str) -> Result<Uuid> {
        self.notify_user_with(ws, message, &[]).await
    }

    /// [`Tree::notify_user`] with file attachments (`{uri, name, mimeType?, size?}`): they
    /// go into `AGENT_MESSAGE` and into the row's result as `parts: [{kind: "file", file}]`.
    pub async fn notify_user_with(
        &self,
        ws: Uuid,
        message: &str,
        attachments: &[molecule_api::activity::Attachment],
    ) -> Result<Uuid> {
        let message = message.trim();
        if message.is_empty() && attachments.is_empty() {
            return Err(ServiceError::invalid(
                "message",
                "must not be empty (or give attachments)",
            ));
        }
        for (i, a) in attachments.iter().enumerate() {
            if a.uri.trim().is_empty() || a.name.trim().is_empty() {
                return Err(ServiceError::invalid(
                    "attachments",
                    format!("[{i}]: uri and name must not be empty"),
                ));
            }
        }
        let name = self.get_workspace(ws).await?.name;
        let summary: String = message.chars().take(200).collect();
        let mut response = json!({ "result": message });
        let mut agent_message = json!({ "message": message, "workspace_id": ws, "name": name });
        if !attachments.is_empty() {
            let files =
                serde_json::to_value(attachments).map_err(|e| ServiceError::internal("encoding attachments", e))?;
            response["parts"] = Value::Array(
                attachments
                    .iter()
                    .map(|a| json!({ "kind": "file", "file": a }))
                    .collect(),
            );
            agent_message["attachments"] = files;
        }
        let notifications = vec![
            events::live_notification(
                EventType::ActivityLogged,
                Some(ws),
                json!({ "activity_type": ActivityType::A2aReceive.as_str(), "method": "notify", "summary": summary,
                        "status": "ok", "source_id": ws }),
            )?,
            events::live_notification(EventType::AgentMessage, Some(ws), agent_message)?,
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

    /// A schedule's runs: the workspace's `cron_run` rows for `schedule_id`, newest first, at
    /// most `limit`.
    pub async fn schedule_runs(&self, workspace_id: Uuid, schedule_id: Uuid, limit: i64) -> Result<Vec<Activity>> {
        let mut conn = self.pool.get().await?;
        let rows: Vec<Stored> = a::table
            .filter(a::workspace_id.eq(workspace_id))
            .filter(a::activity_type.eq(ActivityType::CronRun.as_str()))
            .filter(
                diesel::dsl::sql::<diesel::sql_types::Bool>("request_body->>'schedule_id' = ")
                    .bind::<diesel::sql_types::Text, _>(schedule_id.to_string()),
            )
            .order((a::created_at.desc(), a::id.desc()))
            .limit(limit)
            .select(Stored::as_select())
            .load(&mut conn)
            .await?;
        rows.into_iter().map(Activity::try_from).collect()
    }

    /// Every activity row about delegation `delegation_id` (the caller's `delegate` row and
    /// each party's updates), oldest first, at most 200.
    pub async fn delegation_activity(&self, delegation_id: &str) -> Result<Vec<Activity>> {
        let mut conn = self.pool.get().await?;
        let rows: Vec<Stored> = a::table
            .filter(
                diesel::dsl::sql::<diesel::sql_types::Bool>("request_body->>'delegation_id' = ")
                    .bind::<diesel::sql_types::Text, _>(delegation_id.to_owned()),
            )
            .order((a::created_at.asc(), a::id.asc()))
            .limit(200)
            .select(Stored::as_select())
            .load(&mut conn)
            .await?;
        rows.into_iter().map(Activity::try_from).collect()
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

    use diesel::sql_types::BigInt;
    use molecule_testkit::TestDb;

    use super::*;

    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        rows: i64,
        #[diesel(sql_type = BigInt)]
        transactions: i64,
        #[diesel(sql_type = BigInt)]
        times: i64,
    }

    async fn audit_many(s: &Tree, owners: &[Uuid]) -> Vec<Result<Uuid>> {
        let calls = owners.iter().enumerate().map(|(i, owner)| async move {
            let summary = format!("row {i}");
            let row = ActivityRow {
                summary: Some(&summary),
                ..ActivityRow::new(*owner, ActivityType::MemoryWrite, ActivityStatus::Ok)
            };
            s.log_platform_activity(row).await
        });
        futures_util::future::join_all(calls).await
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn audits_are_written_behind_in_shared_statements_and_a_bad_row_fails_alone() {
        let db = TestDb::new().await;
        let s = Tree::new(db.pool().clone(), Default::default());
        let ws = s
            .insert_workspace(crate::workspaces::NewWorkspace::root("audited"), None)
            .await
            .unwrap()
            .0
            .id;

        // 64 at once: every row handed over, and once flushed written, in far fewer
        // transactions than rows (rows of one statement share their xmin), each with its own
        // time.
        let written: Vec<Uuid> = audit_many(&s, &[ws; 64])
            .await
            .into_iter()
            .map(|r| r.unwrap())
            .collect();
        s.flush_audits().await;
        let written_rows = count(&db, &written).await;
        assert_eq!(written_rows.rows, 64);
        assert!(
            written_rows.transactions < 10,
            "{} transactions for 64 rows",
            written_rows.transactions
        );
        assert_eq!(written_rows.times, 64);

        // A row that cannot be written (no such workspace) is lost alone: the other seven
        // of its group are written one by one.
        let mut owners = [ws; 8];
        owners[5] = Uuid::new_v4();
        let handed: Vec<Uuid> = audit_many(&s, &owners).await.into_iter().map(|r| r.unwrap()).collect();
        s.flush_audits().await;
        assert_eq!(count(&db, &handed).await.rows, 7);
        assert_eq!(count(&db, &handed[5..6]).await.rows, 0);
    }

    async fn count(db: &TestDb, ids: &[Uuid]) -> Count {
        let mut conn = db.pool().get().await.unwrap();
        diesel::sql_query(
            "SELECT count(DISTINCT id) AS rows, count(DISTINCT xmin::text) AS transactions,
                    count(DISTINCT created_at) AS times
               FROM activity_logs WHERE id = ANY($1) AND summary LIKE 'row %'",
        )
        .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(ids)
        .get_result(&mut conn)
        .await
        .unwrap()
    }
}
