//! The durable A2A message queue: the statements over `a2a_queue` (this module is the table's
//! only owner).
//!
//! A message that found its agent busy waits here. Items of one workspace drain by priority,
//! then first in, first out. A claim (`FOR UPDATE SKIP LOCKED`) moves one item to `dispatched`
//! under a lease in a single statement, so two replicas never deliver the same item; a replica
//! that dies mid-delivery leaves a lease that [`reap`] expires, and the item is delivered again
//! (at least once across a crash, exactly once otherwise). `messageId` makes a retried send one
//! item while it is live.
//!
//! Must not know: HTTP, who drains (the service calls these on a heartbeat), backends.

use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use molecule_db::schema::a2a_queue as q;
use molecule_domain::{QueueStatus, Vocabulary};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

/// Deliveries before an item is `failed`.
pub const MAX_ATTEMPTS: i32 = 5;

/// A message to enqueue.
#[derive(Debug, Clone)]
pub struct NewItem {
    pub workspace_id: Uuid,
    pub caller_id: Option<Uuid>,
    pub priority: i16,
    pub body: Value,
    pub method: Option<String>,
    pub headers: Value,
    pub idempotency_key: Option<String>,
    pub delegation_id: Option<String>,
    /// A system caller's label (`channel:telegram`), when one sent it.
    pub via: Option<String>,
    /// How long it may wait before the reaper drops it.
    pub ttl: Duration,
}

/// What an enqueue did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enqueued {
    pub id: Uuid,
    /// Live items of the workspace, this one included.
    pub depth: i64,
    /// The `messageId` was already live: this is the earlier item.
    pub existing: bool,
}

/// A claimed item, to deliver.
#[derive(Debug, Clone, QueryableByName)]
pub struct Item {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub workspace_id: Uuid,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub caller_id: Option<Uuid>,
    #[diesel(sql_type = diesel::sql_types::Jsonb)]
    pub body: Value,
    #[diesel(sql_type = Nullable<Text>)]
    pub method: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Jsonb)]
    pub headers: Value,
    #[diesel(sql_type = Nullable<Text>)]
    pub delegation_id: Option<String>,
    /// Including this delivery.
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
    /// The message's `messageId`.
    #[diesel(sql_type = Nullable<Text>)]
    pub idempotency_key: Option<String>,
    /// A system caller's label.
    #[diesel(sql_type = Nullable<Text>)]
    pub via: Option<String>,
}

/// One claim of an item: its id and the attempt number the claim made. Every write of a
/// delivery's outcome is fenced by it, so a delivery whose lease was taken over (its replica
/// stalled past the lease) cannot finish the item another replica now holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub id: Uuid,
    pub attempt: i32,
}

impl Item {
    pub fn lease(&self) -> Lease {
        Lease {
            id: self.id,
            attempt: self.attempts,
        }
    }
}

fn live() -> Vec<&'static str> {
    QueueStatus::LIVE.iter().map(|s| s.as_str()).collect()
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Live items (queued or in delivery) of a workspace.
pub async fn depth(conn: &mut AsyncPgConnection, workspace_id: Uuid) -> QueryResult<i64> {
    q::table
        .filter(q::workspace_id.eq(workspace_id))
        .filter(q::status.eq_any(live()))
        .count()
        .get_result(conn)
        .await
}

/// Live items per workspace, for every workspace that has any (the console's fleet view).
pub async fn depths(conn: &mut AsyncPgConnection) -> QueryResult<Vec<(Uuid, i64)>> {
    q::table
        .filter(q::status.eq_any(live()))
        .group_by(q::workspace_id)
        .select((q::workspace_id, diesel::dsl::count_star()))
        .load(conn)
        .await
}

/// Adds a message, or finds the live item with the same `messageId`.
pub async fn enqueue(conn: &mut AsyncPgConnection, item: NewItem) -> QueryResult<Enqueued> {
    let expires = OffsetDateTime::now_utc() + item.ttl;
    let inserted: Option<Uuid> = diesel::insert_into(q::table)
        .values((
            q::workspace_id.eq(item.workspace_id),
            q::caller_id.eq(item.caller_id),
            q::priority.eq(item.priority),
            q::body.eq(&item.body),
            q::method.eq(&item.method),
            q::headers.eq(&item.headers),
            q::idempotency_key.eq(&item.idempotency_key),
            q::delegation_id.eq(&item.delegation_id),
            q::via.eq(&item.via),
            q::status.eq(QueueStatus::Queued.as_str()),
            q::expires_at.eq(expires),
        ))
        .on_conflict_do_nothing()
        .returning(q::id)
        .get_result(conn)
        .await
        .optional()?;
    let (id, existing) = match inserted {
        Some(id) => (id, false),
        None => {
            // Only the idempotency index can conflict: the live item with that key.
            let id = q::table
                .filter(q::workspace_id.eq(item.workspace_id))
                .filter(q::idempotency_key.eq(&item.idempotency_key))
                .filter(q::status.eq_any(live()))
                .select(q::id)
                .first(conn)
                .await?;
            (id, true)
        }
    };
    Ok(Enqueued {
        id,
        depth: depth(conn, item.workspace_id).await?,
        existing,
    })
}

/// Claims the workspace's next item for delivery under a lease (`None`: nothing waits).
pub async fn claim(conn: &mut AsyncPgConnection, workspace_id: Uuid, lease: Duration) -> QueryResult<Option<Item>> {
    diesel::sql_query(
        "UPDATE a2a_queue SET status = $2, attempts = attempts + 1, dispatched_at = now(),
                lease_until = now() + make_interval(secs => $4)
         WHERE id = (SELECT id FROM a2a_queue
                     WHERE workspace_id = $1 AND status = $3
                     ORDER BY priority DESC, enqueued_at, id
                     LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING id, workspace_id, caller_id, body, method, headers, delegation_id, attempts, idempotency_key, via",
    )
    .bind::<SqlUuid, _>(workspace_id)
    .bind::<Text, _>(QueueStatus::Dispatched.as_str())
    .bind::<Text, _>(QueueStatus::Queued.as_str())
    .bind::<diesel::sql_types::Double, _>(secs(lease))
    .get_result(conn)
    .await
    .optional()
}

/// Claims one known item (a delegation's own message) if it still waits; `None` when a drain
/// took it or it is finished.
pub async fn claim_by_id(conn: &mut AsyncPgConnection, id: Uuid, lease: Duration) -> QueryResult<Option<Item>> {
    diesel::sql_query(
        "UPDATE a2a_queue SET status = $2, attempts = attempts + 1, dispatched_at = now(),
                lease_until = now() + make_interval(secs => $4)
         WHERE id = $1 AND status = $3
         RETURNING id, workspace_id, caller_id, body, method, headers, delegation_id, attempts, idempotency_key, via",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<Text, _>(QueueStatus::Dispatched.as_str())
    .bind::<Text, _>(QueueStatus::Queued.as_str())
    .bind::<diesel::sql_types::Double, _>(secs(lease))
    .get_result(conn)
    .await
    .optional()
}

/// A delivery that must not be retried (refused by policy, or answered with an error): `failed`
/// with the reason. False when it was no longer in delivery.
pub async fn fail(conn: &mut AsyncPgConnection, held: Lease, error: &str) -> QueryResult<bool> {
    finish(conn, held, QueueStatus::Failed, Some(error)).await
}

/// Ends the delivery `held` with a finished status (fenced by its attempt).
async fn finish(conn: &mut AsyncPgConnection, held: Lease, to: QueueStatus, error: Option<&str>) -> QueryResult<bool> {
    let n = diesel::update(
        q::table
            .find(held.id)
            .filter(q::status.eq(QueueStatus::Dispatched.as_str()))
            .filter(q::attempts.eq(held.attempt)),
    )
    .set((
        q::status.eq(to.as_str()),
        q::completed_at.eq(diesel::dsl::now),
        q::lease_until.eq(None::<OffsetDateTime>),
        q::last_error.eq(error),
    ))
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// Extends the lease of an item still in delivery (the delivering replica is alive). False when
/// it is no longer in delivery.
pub async fn extend(conn: &mut AsyncPgConnection, held: Lease, lease: Duration) -> QueryResult<bool> {
    let n = diesel::sql_query(
        "UPDATE a2a_queue SET lease_until = now() + make_interval(secs => $2)
          WHERE id = $1 AND status = $3 AND attempts = $4",
    )
    .bind::<SqlUuid, _>(held.id)
    .bind::<diesel::sql_types::Double, _>(secs(lease))
    .bind::<Text, _>(QueueStatus::Dispatched.as_str())
    .bind::<Integer, _>(held.attempt)
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// Whether anything of the workspace waits (one index probe; the heartbeat asks before it
/// starts a drain).
pub async fn has_waiting(conn: &mut AsyncPgConnection, workspace_id: Uuid) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        q::table
            .filter(q::workspace_id.eq(workspace_id))
            .filter(q::status.eq(QueueStatus::Queued.as_str())),
    ))
    .get_result(conn)
    .await
}

/// The workspaces with anything live in their queue (waiting or being delivered): the idle
/// monitor leaves them awake.
pub async fn busy_workspaces(conn: &mut AsyncPgConnection) -> QueryResult<Vec<Uuid>> {
    q::table
        .filter(q::status.eq_any(QueueStatus::LIVE.iter().map(|s| s.as_str())))
        .select(q::workspace_id)
        .distinct()
        .load(conn)
        .await
}

/// The item was delivered. False when it was no longer this delivery's (reaped meanwhile).
pub async fn complete(conn: &mut AsyncPgConnection, held: Lease) -> QueryResult<bool> {
    finish(conn, held, QueueStatus::Completed, None).await
}

/// A delivery failed: back to `queued`, or `failed` once [`MAX_ATTEMPTS`] are used. Returns the
/// new status (`None`: the item was no longer in delivery).
pub async fn release(conn: &mut AsyncPgConnection, held: Lease, error: &str) -> QueryResult<Option<QueueStatus>> {
    let status: Option<String> = diesel::sql_query(
        "UPDATE a2a_queue SET
             status = CASE WHEN attempts >= $2 THEN $3 ELSE $4 END,
             completed_at = CASE WHEN attempts >= $2 THEN now() END,
             lease_until = NULL, last_error = $5
         WHERE id = $1 AND status = $6 AND attempts = $7
         RETURNING status",
    )
    .bind::<SqlUuid, _>(held.id)
    .bind::<Integer, _>(MAX_ATTEMPTS)
    .bind::<Text, _>(QueueStatus::Failed.as_str())
    .bind::<Text, _>(QueueStatus::Queued.as_str())
    .bind::<Text, _>(error)
    .bind::<Text, _>(QueueStatus::Dispatched.as_str())
    .bind::<Integer, _>(held.attempt)
    .get_result::<StatusRow>(conn)
    .await
    .optional()?
    .map(|r| r.status);
    Ok(status.and_then(|s| QueueStatus::parse(&s).ok()))
}

#[derive(QueryableByName)]
struct StatusRow {
    #[diesel(sql_type = Text)]
    status: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Drops live items enqueued more than `max_age` ago (one workspace, or all), with the reason.
pub async fn drop_stale(
    conn: &mut AsyncPgConnection,
    max_age: Duration,
    workspace_id: Option<Uuid>,
) -> QueryResult<i64> {
    let r: Count = diesel::sql_query(
        "WITH d AS (UPDATE a2a_queue SET status = $1, completed_at = now(), lease_until = NULL,
                        last_error = 'dropped by an operator: older than ' || $2 || ' s'
                    WHERE status = ANY($3) AND enqueued_at < now() - make_interval(secs => $2)
                      AND ($4::uuid IS NULL OR workspace_id = $4)
                    RETURNING 1)
         SELECT count(*) AS n FROM d",
    )
    .bind::<Text, _>(QueueStatus::Dropped.as_str())
    .bind::<diesel::sql_types::Double, _>(secs(max_age))
    .bind::<diesel::sql_types::Array<Text>, _>(live())
    .bind::<Nullable<SqlUuid>, _>(workspace_id)
    .get_result(conn)
    .await?;
    Ok(r.n)
}

/// What one reaper pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reaped {
    /// Deliveries whose lease ran out (their replica died): back to `queued`.
    pub requeued: i64,
    /// Items past their TTL: `dropped`.
    pub expired: i64,
    /// Finished items older than the retention: deleted.
    pub deleted: i64,
}

/// The reaper: expired leases go back to the queue (or fail, out of attempts), items past their
/// TTL are dropped, finished items older than `retention` are deleted (at most `batch` per pass).
pub async fn reap(conn: &mut AsyncPgConnection, retention: Duration, batch: i64) -> QueryResult<Reaped> {
    let requeued: Count = diesel::sql_query(
        "WITH r AS (UPDATE a2a_queue SET
                        status = CASE WHEN attempts >= $1 THEN $2 ELSE $3 END,
                        completed_at = CASE WHEN attempts >= $1 THEN now() END,
                        lease_until = NULL,
                        last_error = 'the delivering replica stopped before the agent answered'
                    WHERE status = $4 AND lease_until < now()
                    RETURNING 1)
         SELECT count(*) AS n FROM r",
    )
    .bind::<Integer, _>(MAX_ATTEMPTS)
    .bind::<Text, _>(QueueStatus::Failed.as_str())
    .bind::<Text, _>(QueueStatus::Queued.as_str())
    .bind::<Text, _>(QueueStatus::Dispatched.as_str())
    .get_result(conn)
    .await?;
    let expired: Count = diesel::sql_query(
        "WITH x AS (UPDATE a2a_queue SET status = $1, completed_at = now(),
                        last_error = 'expired: not delivered before its TTL'
                    WHERE status = $2 AND expires_at < now()
                    RETURNING 1)
         SELECT count(*) AS n FROM x",
    )
    .bind::<Text, _>(QueueStatus::Dropped.as_str())
    .bind::<Text, _>(QueueStatus::Queued.as_str())
    .get_result(conn)
    .await?;
    let finished: Vec<&str> = QueueStatus::FINISHED.iter().map(|s| s.as_str()).collect();
    let deleted: Count = diesel::sql_query(
        "WITH d AS (DELETE FROM a2a_queue WHERE id IN (
                        SELECT id FROM a2a_queue
                        WHERE status = ANY($1) AND completed_at < now() - make_interval(secs => $2)
                        LIMIT $3)
                    RETURNING 1)
         SELECT count(*) AS n FROM d",
    )
    .bind::<diesel::sql_types::Array<Text>, _>(finished)
    .bind::<diesel::sql_types::Double, _>(secs(retention))
    .bind::<BigInt, _>(batch)
    .get_result(conn)
    .await?;
    Ok(Reaped {
        requeued: requeued.n,
        expired: expired.n,
        deleted: deleted.n,
    })
}

/// One item as an operator sees it.
#[derive(Debug, Clone, Queryable)]
pub struct Summary {
    pub id: Uuid,
    pub caller_id: Option<Uuid>,
    pub priority: i16,
    pub method: Option<String>,
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub delegation_id: Option<String>,
    pub enqueued_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// The workspace's live items (delivery order) and its most recent finished ones.
pub async fn list(conn: &mut AsyncPgConnection, workspace_id: Uuid, limit: i64) -> QueryResult<Vec<Summary>> {
    q::table
        .filter(q::workspace_id.eq(workspace_id))
        .order((q::completed_at.desc().nulls_first(), q::priority.desc(), q::enqueued_at))
        .limit(limit)
        .select((
            q::id,
            q::caller_id,
            q::priority,
            q::method,
            q::status,
            q::attempts,
            q::last_error,
            q::delegation_id,
            q::enqueued_at,
            q::expires_at,
        ))
        .load(conn)
        .await
}
