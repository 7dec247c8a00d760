//! The ledger's statements: insert, get, the compare-and-set transition, heartbeats, listings
//! and stats, on a pool (`Ledger`) or on a connection the caller holds (`LedgerConn`).
//!
//! Must not know: workspaces or HTTP.

use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use molecule_domain::{DelegationStatus, InvalidTransition, Vocabulary};
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::schema::PREVIEW_LIMIT;
use crate::{DEFAULT_DEADLINE, LedgerError, Pool, Result};

/// Advisory lock key serialising [`Ledger::install`] across processes.
const INSTALL_LOCK: i64 = 0x6c65_6467_6572_0001;

/// Bytes kept of `task_preview` and `result_preview`.
pub const PREVIEW_MAX_BYTES: usize = PREVIEW_LIMIT;

/// `s` cut to at most [`PREVIEW_MAX_BYTES`] on a character boundary (no marker).
pub fn truncate_preview(s: &str) -> &str {
    if s.len() <= PREVIEW_MAX_BYTES {
        return s;
    }
    let mut end = PREVIEW_MAX_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// One row of the ledger.
#[derive(Debug, Clone, PartialEq, Serialize, diesel::QueryableByName)]
pub struct Delegation {
    #[diesel(sql_type = Text)]
    pub delegation_id: String,
    #[diesel(sql_type = SqlUuid)]
    pub caller_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub callee_id: Uuid,
    #[diesel(sql_type = Text)]
    pub task_preview: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub result_preview: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub error_detail: Option<String>,
    #[diesel(sql_type = Text, deserialize_as = StatusText)]
    pub status: DelegationStatus,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_heartbeat: Option<OffsetDateTime>,
    #[diesel(sql_type = Timestamptz)]
    #[serde(with = "time::serde::rfc3339")]
    pub deadline: OffsetDateTime,
    #[diesel(sql_type = Integer)]
    pub retry_count: i32,
    #[diesel(sql_type = Nullable<Text>)]
    pub idempotency_key: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[diesel(sql_type = Timestamptz)]
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
}

impl Delegation {
    /// The status (kept for callers of the 0.1 API, which returned it parsed).
    pub fn status(&self) -> Option<DelegationStatus> {
        Some(self.status)
    }
}

/// The `status` column read as [`DelegationStatus`]; the table's CHECK keeps it in the
/// vocabulary, and a value outside it is a deserialization error, never a silent default.
struct StatusText(DelegationStatus);

impl diesel::deserialize::FromSql<Text, diesel::pg::Pg> for StatusText {
    fn from_sql(bytes: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
        let raw = <String as diesel::deserialize::FromSql<Text, diesel::pg::Pg>>::from_sql(bytes)?;
        Ok(Self(DelegationStatus::parse(&raw)?))
    }
}

impl From<StatusText> for DelegationStatus {
    fn from(s: StatusText) -> Self {
        s.0
    }
}

pub(crate) const COLUMNS: &str = "delegation_id, caller_id, callee_id, task_preview, result_preview, error_detail, status, \
                       last_heartbeat, deadline, retry_count, idempotency_key, created_at, updated_at, finished_at";

/// The one heartbeat rule, as a DSL statement over the in-flight rows that `$filter` (an
/// expression on `crate::schema::delegations`) picks: `last_heartbeat` and `updated_at` become
/// now, and a `stuck` row returns to `in_progress` with its error cleared. A macro rather than a
/// function so each caller keeps a statically typed statement, whose prepared statement diesel
/// caches (every registry heartbeat runs one).
macro_rules! heartbeat_where {
    ($filter:expr) => {{
        use diesel::dsl::case_when;
        use diesel::{ExpressionMethods, IntoSql, QueryDsl};

        use crate::schema::delegations as d;
        let in_flight: Vec<&str> = DelegationStatus::IN_FLIGHT.iter().map(|s| s.as_str()).collect();
        let stuck = DelegationStatus::Stuck.as_str();
        diesel::update(d::table.filter($filter).filter(d::status.eq_any(in_flight))).set((
            d::last_heartbeat.eq(diesel::dsl::now),
            d::updated_at.eq(diesel::dsl::now),
            d::status.eq(case_when(
                d::status.eq(stuck),
                DelegationStatus::InProgress.as_str().into_sql::<Text>(),
            )
            .otherwise(d::status)),
            d::error_detail.eq(
                case_when(d::status.eq(stuck), None::<String>.into_sql::<Nullable<Text>>()).otherwise(d::error_detail),
            ),
        ))
    }};
}

/// A delegation to record.
#[derive(Debug, Clone)]
pub struct NewDelegation {
    pub delegation_id: String,
    pub caller_id: Uuid,
    pub callee_id: Uuid,
    /// Kept up to [`PREVIEW_MAX_BYTES`].
    pub task: String,
    pub idempotency_key: Option<String>,
    /// Default: now + 6 h.
    pub deadline: Option<OffsetDateTime>,
}

/// What [`Ledger::insert`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Inserted {
    Created(Delegation),
    /// A row with this id, or with this caller and idempotency key, already existed.
    Existing(Delegation),
}

impl Inserted {
    pub fn delegation(&self) -> &Delegation {
        match self {
            Self::Created(d) | Self::Existing(d) => d,
        }
    }
}

/// A status write a caller may make. `Stuck` is not here: only the sweeper sets it.
/// A completion carries its result, so the result can never be lost to a status-only write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    Dispatched,
    InProgress,
    Completed { result: String },
    Failed { error: String },
}

impl Update {
    pub fn status(&self) -> DelegationStatus {
        match self {
            Self::Dispatched => DelegationStatus::Dispatched,
            Self::InProgress => DelegationStatus::InProgress,
            Self::Completed { .. } => DelegationStatus::Completed,
            Self::Failed { .. } => DelegationStatus::Failed,
        }
    }
}

/// Who made a transition. Exactly one party sees `Applied` for each real transition; that
/// party notifies the caller.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// This call moved the delegation from `from`.
    Applied {
        from: DelegationStatus,
        delegation: Box<Delegation>,
    },
    /// It already had that status; nothing changed (a retried write).
    Replayed,
    /// Another writer changed it first; it is now `current`.
    LostRace {
        current: Option<DelegationStatus>,
    },
    NotFound,
}

/// Filter of the admin listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    InFlight,
    Stuck,
    Failed,
    Completed,
}

impl StatusFilter {
    pub const ALLOWED: &'static [&'static str] = &["completed", "failed", "in_flight", "stuck"];

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "in_flight" => Some(Self::InFlight),
            "stuck" => Some(Self::Stuck),
            "failed" => Some(Self::Failed),
            "completed" => Some(Self::Completed),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InFlight => "in_flight",
            Self::Stuck => "stuck",
            Self::Failed => "failed",
            Self::Completed => "completed",
        }
    }

    pub(crate) fn statuses(self) -> &'static [DelegationStatus] {
        match self {
            Self::InFlight => DelegationStatus::IN_FLIGHT,
            Self::Stuck => &[DelegationStatus::Stuck],
            Self::Failed => &[DelegationStatus::Failed],
            Self::Completed => &[DelegationStatus::Completed],
        }
    }
}

/// Counts per status (zero-filled) and durations of the last 24 h's completions.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub counts: std::collections::BTreeMap<String, i64>,
    pub completed_last_24h: i64,
    pub duration_p50_seconds: Option<f64>,
    pub duration_p95_seconds: Option<f64>,
    pub duration_p99_seconds: Option<f64>,
}

fn strings(list: &[DelegationStatus]) -> Vec<String> {
    list.iter().map(|s| s.as_str().to_owned()).collect()
}

/// The ledger over a pool.
#[derive(Clone)]
pub struct Ledger {
    pool: Pool,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ledger")
    }
}

impl Ledger {
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Creates the table and indexes when they do not exist (safe at every boot).
    pub async fn install(&self) -> Result<()> {
        let mut conn = self.pool.get().await?;
        // Replicas booting together would race `CREATE … IF NOT EXISTS` (Postgres can fail one
        // of them on its catalog's unique index). The batch is one implicit transaction, so
        // this transaction-scoped lock serialises them.
        let sql = format!("SELECT pg_advisory_xact_lock({INSTALL_LOCK});\n{}", crate::schema_sql());
        conn.batch_execute(&sql).await?;
        Ok(())
    }

    /// The ledger on a connection the caller holds (see [`LedgerConn`]).
    pub fn on(conn: &mut AsyncPgConnection) -> LedgerConn<'_> {
        LedgerConn { conn }
    }

    /// Records a delegation as `queued`. Idempotent on `delegation_id` and on
    /// `(caller_id, idempotency_key)`: a repeat returns the existing row.
    pub async fn insert(&self, new: NewDelegation) -> Result<Inserted> {
        Ledger::on(&mut *self.pool.get().await?).insert(new).await
    }

    pub async fn get(&self, delegation_id: &str) -> Result<Option<Delegation>> {
        Ledger::on(&mut *self.pool.get().await?).get(delegation_id).await
    }

    /// Moves a delegation with one compare-and-set statement. A same-status write is a
    /// `Replayed` no-op; a forbidden move is an [`InvalidTransition`] error.
    pub async fn set_status(&self, delegation_id: &str, update: Update) -> Result<Outcome> {
        Ledger::on(&mut *self.pool.get().await?)
            .set_status(delegation_id, update)
            .await
    }

    /// Marks the delegation alive (see [`LedgerConn::heartbeat`]).
    pub async fn heartbeat(&self, delegation_id: &str) -> Result<bool> {
        Ledger::on(&mut *self.pool.get().await?).heartbeat(delegation_id).await
    }

    /// Marks every in-flight delegation of `callee_id` alive (see
    /// [`LedgerConn::heartbeat_callee`]).
    pub async fn heartbeat_callee(&self, callee_id: Uuid) -> Result<usize> {
        Ledger::on(&mut *self.pool.get().await?)
            .heartbeat_callee(callee_id)
            .await
    }

    /// Delegations where `workspace` is caller or callee, newest first.
    pub async fn list_for(&self, workspace: Uuid, limit: i64) -> Result<Vec<Delegation>> {
        Ledger::on(&mut *self.pool.get().await?)
            .list_for(workspace, limit)
            .await
    }

    /// Admin listing by status filter, newest first.
    pub async fn list(&self, filter: StatusFilter, limit: i64) -> Result<Vec<Delegation>> {
        Ledger::on(&mut *self.pool.get().await?).list(filter, limit).await
    }

    /// Counts for every status (zero-filled) and completion-duration percentiles (24 h).
    pub async fn stats(&self) -> Result<Stats> {
        Ledger::on(&mut *self.pool.get().await?).stats().await
    }
}

/// The ledger's operations on a connection the caller already holds, typically inside its
/// own transaction (`Ledger::on(conn)`). A caller that holds a connection must use these
/// rather than the pool-based methods: taking a second connection while holding one lets a
/// busy fleet exhaust the pool with every request waiting on another (the heartbeat did).
pub struct LedgerConn<'c> {
    conn: &'c mut AsyncPgConnection,
}

impl std::fmt::Debug for LedgerConn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LedgerConn")
    }
}

impl<'c> LedgerConn<'c> {
    /// Records a delegation as `queued`. Idempotent on `delegation_id` and on
    /// `(caller_id, idempotency_key)`: a repeat returns the existing row.
    pub async fn insert(&mut self, new: NewDelegation) -> Result<Inserted> {
        if new.delegation_id.trim().is_empty() || new.delegation_id.len() > 200 {
            return Err(LedgerError::Invalid {
                field: "delegation_id",
                message: "must be 1..=200 bytes".into(),
            });
        }
        let key = new.idempotency_key.filter(|k| !k.trim().is_empty());
        let deadline = new
            .deadline
            .unwrap_or_else(|| OffsetDateTime::now_utc() + DEFAULT_DEADLINE);
        let created: Vec<Delegation> = diesel::sql_query(format!(
            "INSERT INTO delegations (delegation_id, caller_id, callee_id, task_preview, idempotency_key, deadline)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING {COLUMNS}"
        ))
        .bind::<Text, _>(&new.delegation_id)
        .bind::<SqlUuid, _>(new.caller_id)
        .bind::<SqlUuid, _>(new.callee_id)
        .bind::<Text, _>(truncate_preview(&new.task))
        .bind::<Nullable<Text>, _>(&key)
        .bind::<Timestamptz, _>(deadline)
        .load(&mut *self.conn)
        .await?;
        if let Some(d) = created.into_iter().next() {
            return Ok(Inserted::Created(d));
        }
        let existing: Vec<Delegation> = diesel::sql_query(format!(
            "SELECT {COLUMNS} FROM delegations WHERE delegation_id = $1
              OR (caller_id = $2 AND idempotency_key = $3) ORDER BY (delegation_id = $1) DESC LIMIT 1"
        ))
        .bind::<Text, _>(&new.delegation_id)
        .bind::<SqlUuid, _>(new.caller_id)
        .bind::<Nullable<Text>, _>(&key)
        .load(&mut *self.conn)
        .await?;
        existing
            .into_iter()
            .next()
            .map(Inserted::Existing)
            .ok_or_else(|| LedgerError::Inconsistent("insert conflicted but no existing row was found"))
    }

    pub async fn get(&mut self, delegation_id: &str) -> Result<Option<Delegation>> {
        let rows: Vec<Delegation> =
            diesel::sql_query(format!("SELECT {COLUMNS} FROM delegations WHERE delegation_id = $1"))
                .bind::<Text, _>(delegation_id)
                .load(&mut *self.conn)
                .await?;
        Ok(rows.into_iter().next())
    }

    /// Moves a delegation with one compare-and-set statement. A same-status write is a
    /// `Replayed` no-op; a forbidden move is an [`InvalidTransition`] error.
    pub async fn set_status(&mut self, delegation_id: &str, update: Update) -> Result<Outcome> {
        let to = update.status();
        let (result, error) = match &update {
            Update::Completed { result } => (Some(truncate_preview(result).to_owned()), None),
            Update::Failed { error } => (None, Some(error.clone())),
            _ => (None, None),
        };
        self.transition(delegation_id, to, result, error).await
    }

    /// The one transition statement (also used by the sweeper for `stuck` and deadline failures).
    pub(crate) async fn transition(
        &mut self,
        id: &str,
        to: DelegationStatus,
        result: Option<String>,
        error: Option<String>,
    ) -> Result<Outcome> {
        /// `before` from the pre-update snapshot; the other columns are the updated row, all
        /// NULL when the compare-and-set did not match.
        #[derive(diesel::QueryableByName)]
        struct Cas {
            #[diesel(sql_type = Nullable<Text>)]
            before: Option<String>,
            #[diesel(sql_type = Nullable<Text>)]
            delegation_id: Option<String>,
            #[diesel(sql_type = Nullable<SqlUuid>)]
            caller_id: Option<Uuid>,
            #[diesel(sql_type = Nullable<SqlUuid>)]
            callee_id: Option<Uuid>,
            #[diesel(sql_type = Nullable<Text>)]
            task_preview: Option<String>,
            #[diesel(sql_type = Nullable<Text>)]
            result_preview: Option<String>,
            #[diesel(sql_type = Nullable<Text>)]
            error_detail: Option<String>,
            #[diesel(sql_type = Nullable<Text>)]
            status: Option<String>,
            #[diesel(sql_type = Nullable<Timestamptz>)]
            last_heartbeat: Option<OffsetDateTime>,
            #[diesel(sql_type = Nullable<Timestamptz>)]
            deadline: Option<OffsetDateTime>,
            #[diesel(sql_type = Nullable<Integer>)]
            retry_count: Option<i32>,
            #[diesel(sql_type = Nullable<Text>)]
            idempotency_key: Option<String>,
            #[diesel(sql_type = Nullable<Timestamptz>)]
            created_at: Option<OffsetDateTime>,
            #[diesel(sql_type = Nullable<Timestamptz>)]
            updated_at: Option<OffsetDateTime>,
            #[diesel(sql_type = Nullable<Timestamptz>)]
            finished_at: Option<OffsetDateTime>,
        }
        let from = strings(&DelegationStatus::predecessors(to));
        let terminal = to.is_terminal();
        // `cur` reads the snapshot before the update; the UPDATE re-checks its predicate on the
        // latest row version, so of two racing writers exactly one matches. One round trip.
        let cas: Cas = diesel::sql_query(format!(
            "WITH cur AS (SELECT status FROM delegations WHERE delegation_id = $1),
                  upd AS (
                    UPDATE delegations SET
                        status = $2,
                        result_preview = COALESCE($3, result_preview),
                        error_detail = CASE WHEN $2 IN ('{completed}', '{in_progress}') THEN NULL ELSE COALESCE($4, error_detail) END,
                        finished_at = CASE WHEN $5 THEN now() ELSE finished_at END,
                        last_heartbeat = CASE WHEN $2 = '{in_progress}' THEN now() ELSE last_heartbeat END,
                        updated_at = now()
                    WHERE delegation_id = $1 AND status = ANY($6)
                    RETURNING {COLUMNS})
             SELECT cur.status AS before, upd.* FROM (SELECT 1) AS one LEFT JOIN cur ON true LEFT JOIN upd ON true",
            completed = DelegationStatus::Completed.as_str(),
            in_progress = DelegationStatus::InProgress.as_str(),
        ))
        .bind::<Text, _>(id)
        .bind::<Text, _>(to.as_str())
        .bind::<Nullable<Text>, _>(&result)
        .bind::<Nullable<Text>, _>(&error)
        .bind::<diesel::sql_types::Bool, _>(terminal)
        .bind::<Array<Text>, _>(&from)
        .get_result(&mut *self.conn)
        .await?;
        let before = cas.before.as_deref().and_then(|s| DelegationStatus::parse(s).ok());
        let applied = match (
            cas.delegation_id,
            cas.caller_id,
            cas.callee_id,
            cas.task_preview,
            cas.status.as_deref().and_then(|s| DelegationStatus::parse(s).ok()),
            cas.deadline,
            cas.retry_count,
            cas.created_at,
            cas.updated_at,
        ) {
            (
                Some(delegation_id),
                Some(caller_id),
                Some(callee_id),
                Some(task_preview),
                Some(status),
                Some(deadline),
                Some(retry_count),
                Some(created_at),
                Some(updated_at),
            ) => Some(Delegation {
                delegation_id,
                caller_id,
                callee_id,
                task_preview,
                result_preview: cas.result_preview,
                error_detail: cas.error_detail,
                status,
                last_heartbeat: cas.last_heartbeat,
                deadline,
                retry_count,
                idempotency_key: cas.idempotency_key,
                created_at,
                updated_at,
                finished_at: cas.finished_at,
            }),
            _ => None,
        };
        match (before, applied) {
            (None, _) => Ok(Outcome::NotFound),
            (Some(from), Some(delegation)) => Ok(Outcome::Applied {
                from,
                delegation: Box::new(delegation),
            }),
            (Some(current), None) if current == to => Ok(Outcome::Replayed),
            (Some(current), None) => match current.check_transition(to) {
                // Allowed from the snapshot, yet not applied: someone moved it meanwhile.
                Ok(_) => Ok(Outcome::LostRace {
                    current: self.get(id).await?.and_then(|d| d.status()),
                }),
                Err(e) => Err(LedgerError::InvalidTransition(InvalidTransition {
                    from: e.from,
                    to: e.to,
                })),
            },
        }
    }

    /// Frees an idempotency key held by a **failed** delegation of `caller_id`, so a retry with
    /// the same key starts a new delegation (the failed row stays, without its key). Returns
    /// whether a key was freed; a live or completed delegation keeps its key.
    pub async fn free_failed_key(&mut self, caller_id: Uuid, idempotency_key: &str) -> Result<bool> {
        let n = diesel::sql_query(
            "UPDATE delegations SET idempotency_key = NULL, updated_at = now()
              WHERE caller_id = $1 AND idempotency_key = $2 AND status = $3",
        )
        .bind::<SqlUuid, _>(caller_id)
        .bind::<Text, _>(idempotency_key)
        .bind::<Text, _>(DelegationStatus::Failed.as_str())
        .execute(&mut *self.conn)
        .await?;
        Ok(n > 0)
    }

    /// Marks the delegation alive. Touches only in-flight rows; a `stuck` row returns to
    /// `in_progress`. Returns whether a row was touched.
    pub async fn heartbeat(&mut self, delegation_id: &str) -> Result<bool> {
        let n = heartbeat_where!(crate::schema::delegations::delegation_id.eq(delegation_id))
            .execute(&mut *self.conn)
            .await?;
        Ok(n > 0)
    }

    /// Marks every in-flight delegation of `callee_id` alive in one indexed statement (the
    /// server calls it on each registry heartbeat). Returns how many rows it touched.
    pub async fn heartbeat_callee(&mut self, callee_id: Uuid) -> Result<usize> {
        Ok(heartbeat_where!(crate::schema::delegations::callee_id.eq(callee_id))
            .execute(&mut *self.conn)
            .await?)
    }

    /// Delegations where `workspace` is caller or callee, newest first.
    pub async fn list_for(&mut self, workspace: Uuid, limit: i64) -> Result<Vec<Delegation>> {
        Ok(diesel::sql_query(format!(
            "(SELECT {COLUMNS} FROM delegations WHERE caller_id = $1 ORDER BY created_at DESC LIMIT $2)
             UNION
             (SELECT {COLUMNS} FROM delegations WHERE callee_id = $1 ORDER BY created_at DESC LIMIT $2)
             ORDER BY created_at DESC LIMIT $2"
        ))
        .bind::<SqlUuid, _>(workspace)
        .bind::<BigInt, _>(limit)
        .load(&mut *self.conn)
        .await?)
    }

    /// Admin listing by status filter, newest first.
    pub async fn list(&mut self, filter: StatusFilter, limit: i64) -> Result<Vec<Delegation>> {
        Ok(diesel::sql_query(format!(
            "SELECT {COLUMNS} FROM delegations WHERE status IN ({}) ORDER BY created_at DESC LIMIT $1",
            DelegationStatus::sql_list(filter.statuses())
        ))
        .bind::<BigInt, _>(limit)
        .load(&mut *self.conn)
        .await?)
    }

    /// Counts for every status (zero-filled) and completion-duration percentiles (24 h).
    pub async fn stats(&mut self) -> Result<Stats> {
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = Text)]
            status: String,
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        #[derive(diesel::QueryableByName)]
        struct Durations {
            #[diesel(sql_type = BigInt)]
            n: i64,
            #[diesel(sql_type = Nullable<diesel::sql_types::Double>)]
            p50: Option<f64>,
            #[diesel(sql_type = Nullable<diesel::sql_types::Double>)]
            p95: Option<f64>,
            #[diesel(sql_type = Nullable<diesel::sql_types::Double>)]
            p99: Option<f64>,
        }
        let rows: Vec<Count> = diesel::sql_query("SELECT status, count(*) AS n FROM delegations GROUP BY status")
            .load(&mut *self.conn)
            .await?;
        let mut counts: std::collections::BTreeMap<String, i64> = DelegationStatus::ALL
            .iter()
            .map(|s| (s.as_str().to_owned(), 0))
            .collect();
        for r in rows {
            counts.insert(r.status, r.n);
        }
        let d: Durations = diesel::sql_query(
            "SELECT count(*) AS n,
                    percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at)) AS p50,
                    percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at)) AS p95,
                    percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at)) AS p99
               FROM delegations WHERE status = $1 AND finished_at > now() - interval '24 hours'",
        )
        .bind::<Text, _>(DelegationStatus::Completed.as_str())
        .get_result(&mut *self.conn)
        .await?;
        Ok(Stats {
            counts,
            completed_last_24h: d.n,
            duration_p50_seconds: d.p50,
            duration_p95_seconds: d.p95,
            duration_p99_seconds: d.p99,
        })
    }
}
