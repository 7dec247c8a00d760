//! The one writer of the `workspaces` row. Every INSERT, UPDATE and DELETE of the table is a
//! function here, on the caller's connection (its transaction); the use-cases decide when.
//!
//! Owns: [`transition`], through which every single-row status write goes (it takes the row
//! lock, checks the caller's guard and [`WorkspaceStatus::allowed`], writes the status with its
//! side columns, and records the event of the new status, so "the status changed" and "an event
//! says so" cannot drift apart), the two bulk status writes (the liveness sweep's, delete's
//! cascade; their source sets are tested against `allowed`), and the named column writes
//! (registration, heartbeats, budgets, cards, last message times, what a provision recorded,
//! the model, a patch's columns, a re-parent, a purge).
//!
//! Must not know: why a change is made (the use-cases in `workspaces`, `lifecycle`,
//! `liveness`, `workloads` and the crates above decide), HTTP.

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use molecule_api::workspaces::Workspace;
use molecule_db::schema::canvas_layouts as cl;
use molecule_db::schema::workspaces as w;
use molecule_db::sql_types::DbWorkspaceStatus;
use molecule_domain::{DeliveryMode, EventType, Runtime, StatusChange, Vocabulary, WorkspaceStatus};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::error::{Result, ServiceError};
use crate::events;

/// Whether a status read locks the row (`FOR NO KEY UPDATE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    No,
    Row,
}

/// The status of `id`; with `lock`, the row stays locked until the transaction ends.
///
/// Every lock on a workspace row is `FOR NO KEY UPDATE`: no path changes a workspace's key, and
/// a plain `FOR UPDATE` would also block the key-share locks that inserting a token, event or
/// activity row takes on the workspace it references. That blocking closed deadlock cycles,
/// e.g. a cascade delete (workspace row, then its tokens) against a provision rotating the
/// workspace's tokens (tokens, then the key-share on the workspace row).
pub async fn status_of(conn: &mut AsyncPgConnection, id: Uuid, lock: Lock) -> Result<Option<WorkspaceStatus>> {
    let q = w::table.find(id).select(w::status);
    let s: Option<DbWorkspaceStatus> = match lock {
        Lock::Row => q.for_no_key_update().first(conn).await.optional()?,
        Lock::No => q.first(conn).await.optional()?,
    };
    Ok(s.map(|s| s.0))
}

/// `status` of a workspace that must exist and not be removed: 404 or 409 otherwise.
pub fn require_live_status(id: Uuid, status: Option<WorkspaceStatus>) -> Result<WorkspaceStatus> {
    match status {
        None => Err(ServiceError::NotFound(format!("workspace {id} not found"))),
        Some(WorkspaceStatus::Removed) => Err(ServiceError::conflict(
            format!("workspace {id} is removed"),
            json!({ "status": WorkspaceStatus::Removed.as_str() }),
        )),
        Some(s) => Ok(s),
    }
}

/// Locks the row of a live workspace (see [`status_of`]) before a change that writes rows
/// referencing it, so every such transaction takes the workspace row first.
pub async fn lock_live(conn: &mut AsyncPgConnection, id: Uuid) -> Result<WorkspaceStatus> {
    require_live_status(id, status_of(conn, id, Lock::Row).await?)
}

/// Which statuses a guarded transition may leave.
#[derive(Debug, Clone, Copy)]
pub enum From<'a> {
    /// Any status [`WorkspaceStatus::allowed`] lets it leave.
    Any,
    /// Only these.
    OneOf(&'a [WorkspaceStatus]),
    /// Any but these.
    AnyBut(&'a [WorkspaceStatus]),
}

impl From<'_> {
    fn admits(self, s: WorkspaceStatus) -> bool {
        match self {
            Self::Any => true,
            Self::OneOf(set) => set.contains(&s),
            Self::AnyBut(set) => !set.contains(&s),
        }
    }
}

/// Columns a status change writes beside the status.
#[derive(Debug, Clone, Copy, Default)]
pub struct Also {
    /// The workload is gone or going: its URL with it.
    pub clear_url: bool,
    /// The change counts as inbound traffic (a wake by a message).
    pub touch_inbound: bool,
    /// Leave external workspaces as they are (their agent runs elsewhere).
    pub skip_external: bool,
}

/// The event a status is announced with.
fn event_of(s: WorkspaceStatus) -> EventType {
    match s {
        WorkspaceStatus::Provisioning => EventType::WorkspaceProvisioning,
        WorkspaceStatus::Online => EventType::WorkspaceOnline,
        WorkspaceStatus::Offline => EventType::WorkspaceOffline,
        WorkspaceStatus::Degraded => EventType::WorkspaceDegraded,
        WorkspaceStatus::Failed => EventType::WorkspaceProvisionFailed,
        WorkspaceStatus::Removed => EventType::WorkspaceRemoved,
        WorkspaceStatus::Paused => EventType::WorkspacePaused,
        WorkspaceStatus::Hibernated => EventType::WorkspaceHibernated,
        WorkspaceStatus::AwaitingAgent => EventType::WorkspaceAwaitingAgent,
    }
}

/// What [`transition`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moved {
    /// Written; the status it left.
    From(WorkspaceStatus),
    /// The guard, or [`WorkspaceStatus::allowed`], held it back at this status.
    Held(WorkspaceStatus),
    /// No such workspace.
    Missing,
}

impl Moved {
    pub fn happened(self) -> bool {
        matches!(self, Self::From(_))
    }
}

/// Moves `id` to `change`'s status when its current status passes `from` and
/// [`WorkspaceStatus::allowed`]: writes the status (for `Failed` also its reason into
/// `last_sample_error`, added to the payload as `error`) and `also`, and records the status's
/// event with `payload`, on `conn` (the caller's transaction).
pub async fn transition(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    change: &StatusChange,
    from: From<'_>,
    also: Also,
    mut payload: Value,
) -> Result<Moved> {
    let row: Option<(DbWorkspaceStatus, String)> = w::table
        .find(id)
        .select((w::status, w::runtime))
        .for_no_key_update()
        .first(conn)
        .await
        .optional()?;
    let Some((current, runtime)) = row else {
        return Ok(Moved::Missing);
    };
    let current = current.0;
    let new = change.status();
    if !from.admits(current)
        || !WorkspaceStatus::allowed(current, new)
        || (also.skip_external && runtime == Runtime::External.as_str())
    {
        return Ok(Moved::Held(current));
    }
    // One statement: the status, its reason, and the side columns.
    let sql = format!(
        "UPDATE workspaces SET status = {}, updated_at = now(),
                last_sample_error = COALESCE($2, last_sample_error),
                url = CASE WHEN $3 THEN NULL ELSE url END,
                last_inbound_at = CASE WHEN $4 THEN now() ELSE last_inbound_at END
          WHERE id = $1",
        WorkspaceStatus::sql_list(&[new])
    );
    diesel::sql_query(sql)
        .bind::<SqlUuid, _>(id)
        .bind::<Nullable<Text>, _>(change.reason().map(|r| r.as_str()))
        .bind::<Bool, _>(also.clear_url)
        .bind::<Bool, _>(also.touch_inbound)
        .execute(conn)
        .await?;
    if let (Some(reason), Some(obj)) = (change.reason(), payload.as_object_mut()) {
        obj.insert("error".into(), json!(reason.as_str()));
    }
    events::record(conn, event_of(new), Some(id), payload).await?;
    Ok(Moved::From(current))
}

/// What a create writes.
#[derive(Debug)]
pub struct Insert<'a> {
    pub name: &'a str,
    pub role: Option<&'a str>,
    pub tier: i32,
    pub status: WorkspaceStatus,
    pub runtime: Runtime,
    pub url: Option<&'a str>,
    pub delivery_mode: Option<DeliveryMode>,
    pub parent: Option<Uuid>,
    pub max_tasks: i32,
    /// The canvas position.
    pub position: (f64, f64),
}

/// Inserts a workspace row; its id.
pub async fn insert(conn: &mut AsyncPgConnection, new: &Insert<'_>) -> Result<Uuid> {
    let id: Uuid = diesel::insert_into(w::table)
        .values((
            w::name.eq(new.name),
            w::role.eq(new.role),
            w::tier.eq(new.tier),
            w::status.eq(DbWorkspaceStatus(new.status)),
            w::runtime.eq(new.runtime.as_str()),
            w::url.eq(new.url),
            w::delivery_mode.eq(new.delivery_mode.map(|d| d.as_str())),
            w::parent_id.eq(new.parent),
            w::max_concurrent_tasks.eq(new.max_tasks),
        ))
        .returning(w::id)
        .get_result(conn)
        .await?;
    if new.position != (0.0, 0.0) {
        set_position(conn, id, new.position).await?;
    }
    Ok(id)
}

/// Saves a workspace's canvas position (`canvas_layouts`, upserted).
pub async fn set_position(conn: &mut AsyncPgConnection, id: Uuid, (x, y): (f64, f64)) -> Result<()> {
    diesel::insert_into(cl::table)
        .values((cl::workspace_id.eq(id), cl::x.eq(x), cl::y.eq(y)))
        .on_conflict(cl::workspace_id)
        .do_update()
        .set((cl::x.eq(x), cl::y.eq(y)))
        .execute(conn)
        .await?;
    Ok(())
}

/// Fills in the canvas positions of `rows` (those without a `canvas_layouts` row stay at 0, 0).
pub async fn attach_positions(conn: &mut AsyncPgConnection, rows: &mut [Workspace]) -> Result<()> {
    let ids: Vec<Uuid> = rows.iter().map(|w| w.id).collect();
    let found: Vec<(Uuid, f64, f64)> = cl::table
        .filter(cl::workspace_id.eq_any(&ids))
        .select((cl::workspace_id, cl::x, cl::y))
        .load(conn)
        .await?;
    let found: std::collections::HashMap<Uuid, (f64, f64)> = found.into_iter().map(|(id, x, y)| (id, (x, y))).collect();
    for w in rows {
        if let Some(&(x, y)) = found.get(&w.id) {
            w.x = x;
            w.y = y;
        }
    }
    Ok(())
}

/// Registration's columns: where the agent listens, its card and delivery mode, and the
/// heartbeat time. The status goes through [`transition`].
pub async fn set_endpoint(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    url: Option<&str>,
    card: &Value,
    mode: DeliveryMode,
) -> Result<()> {
    diesel::update(w::table.find(id))
        .set((
            w::url.eq(url),
            w::agent_card.eq(card),
            w::delivery_mode.eq(mode.as_str()),
            w::last_heartbeat_at.eq(diesel::dsl::now),
            w::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// A heartbeat's columns (the status, when it moves, goes through [`transition`]).
#[derive(Debug)]
pub struct Beat<'a> {
    pub error_rate: f64,
    pub active_tasks: i32,
    pub uptime_seconds: i64,
    pub current_task: Option<&'a str>,
    pub idle_timeout_seconds: Option<i32>,
    /// Cents; `None`: no update.
    pub monthly_spend: Option<i64>,
    /// `None`: no update.
    pub sample_error: Option<&'a str>,
    /// The runtime declares its own scheduler (`runtime_metadata.capabilities.scheduler`).
    pub native_scheduler: bool,
}

/// The row a heartbeat reads under its lock: status, current task, task slots.
pub async fn lock_for_heartbeat(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<Option<(WorkspaceStatus, Option<String>, i32)>> {
    let row: Option<(DbWorkspaceStatus, Option<String>, i32)> = w::table
        .find(id)
        .select((w::status, w::current_task, w::max_concurrent_tasks))
        .for_no_key_update()
        .first(conn)
        .await
        .optional()?;
    Ok(row.map(|(s, t, m)| (s.0, t, m)))
}

/// Writes a heartbeat (one statement in steady state; spend and sample error only when given).
pub async fn record_heartbeat(conn: &mut AsyncPgConnection, id: Uuid, beat: &Beat<'_>) -> Result<()> {
    diesel::update(w::table.find(id))
        .set((
            w::last_heartbeat_at.eq(diesel::dsl::now),
            w::last_error_rate.eq(beat.error_rate),
            w::active_tasks.eq(beat.active_tasks),
            w::uptime_seconds.eq(beat.uptime_seconds),
            w::current_task.eq(beat.current_task),
            w::idle_timeout_seconds.eq(beat.idle_timeout_seconds),
            w::native_scheduler.eq(beat.native_scheduler),
            w::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await?;
    if let Some(spend) = beat.monthly_spend {
        diesel::update(w::table.find(id))
            .set(w::monthly_spend.eq(spend))
            .execute(conn)
            .await?;
    }
    if let Some(err) = beat.sample_error {
        diesel::update(w::table.find(id))
            .set(w::last_sample_error.eq(err))
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// Sets the budget limit (cents; `None`: no limit). False: no such workspace.
pub async fn set_budget(conn: &mut AsyncPgConnection, id: Uuid, limit: Option<i64>) -> Result<bool> {
    let n = diesel::update(w::table.find(id))
        .set((w::budget_limit.eq(limit), w::updated_at.eq(diesel::dsl::now)))
        .execute(conn)
        .await?;
    Ok(n == 1)
}

/// Replaces the agent card of a live workspace. False: unknown or removed.
pub async fn set_card(conn: &mut AsyncPgConnection, id: Uuid, card: &Value) -> Result<bool> {
    let n = diesel::update(
        w::table
            .find(id)
            .filter(w::status.ne(DbWorkspaceStatus(WorkspaceStatus::Removed))),
    )
    .set((w::agent_card.eq(card), w::updated_at.eq(diesel::dsl::now)))
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// Which of a workspace's last message times to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Inbound,
    Outbound,
}

/// Writes now as `id`'s last inbound or outbound time, unless another replica wrote it after
/// `older_than` (at most one write a second per workspace across replicas).
pub async fn touch(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    direction: Direction,
    older_than: time::OffsetDateTime,
) -> Result<()> {
    match direction {
        Direction::Inbound => {
            diesel::update(
                w::table
                    .find(id)
                    .filter(w::last_inbound_at.is_null().or(w::last_inbound_at.lt(older_than))),
            )
            .set(w::last_inbound_at.eq(diesel::dsl::now))
            .execute(conn)
            .await?
        }
        Direction::Outbound => {
            diesel::update(
                w::table
                    .find(id)
                    .filter(w::last_outbound_at.is_null().or(w::last_outbound_at.lt(older_than))),
            )
            .set(w::last_outbound_at.eq(diesel::dsl::now))
            .execute(conn)
            .await?
        }
    };
    Ok(())
}

/// What a finished provision recorded. False: the workspace was removed meanwhile.
pub async fn set_workload(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    backend: &str,
    instance_id: Option<&str>,
    image_digest: Option<&str>,
) -> Result<bool> {
    let n = diesel::update(
        w::table
            .find(id)
            .filter(w::status.ne(DbWorkspaceStatus(WorkspaceStatus::Removed))),
    )
    .set((
        w::backend.eq(backend),
        w::instance_id.eq(instance_id),
        w::runtime_image_digest.eq(image_digest),
    ))
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// Forgets the instance of a stopped workload (only `instance`, when given: a reconciler
/// must not clear a newer one).
pub async fn clear_instance(conn: &mut AsyncPgConnection, id: Uuid, instance: Option<&str>) -> Result<()> {
    match instance {
        Some(i) => {
            diesel::update(w::table.find(id).filter(w::instance_id.eq(i)))
                .set(w::instance_id.eq(None::<String>))
                .execute(conn)
                .await?
        }
        None => {
            diesel::update(w::table.find(id))
                .set(w::instance_id.eq(None::<String>))
                .execute(conn)
                .await?
        }
    };
    Ok(())
}

/// The `model` column (the runtime's model secrets are the vault's).
pub async fn set_model(conn: &mut AsyncPgConnection, id: Uuid, model: Option<&str>) -> Result<()> {
    diesel::update(w::table.find(id))
        .set(w::model.eq(model))
        .execute(conn)
        .await?;
    Ok(())
}

/// The statuses the liveness sweep takes offline.
pub const SWEPT: &[WorkspaceStatus] = &[WorkspaceStatus::Online, WorkspaceStatus::Degraded];

/// The liveness sweep's one statement: up to `batch` workspaces of [`SWEPT`] silent for
/// `ttl_seconds` become offline (rows another transaction holds are skipped). Their ids; the
/// caller records their events on the same transaction.
pub async fn mark_silent_offline(conn: &mut AsyncPgConnection, ttl_seconds: i64, batch: i64) -> Result<Vec<Uuid>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = SqlUuid)]
        id: Uuid,
    }
    let sql = format!(
        "UPDATE workspaces SET status = {}, updated_at = now()
          WHERE id IN (SELECT id FROM workspaces
                        WHERE status IN ({})
                          AND COALESCE(last_heartbeat_at, updated_at) < now() - make_interval(secs => $1)
                        ORDER BY id LIMIT $2 FOR NO KEY UPDATE SKIP LOCKED)
          RETURNING id",
        WorkspaceStatus::sql_list(&[WorkspaceStatus::Offline]),
        WorkspaceStatus::sql_list(SWEPT)
    );
    let rows: Vec<Row> = diesel::sql_query(&sql)
        .bind::<BigInt, _>(ttl_seconds)
        .bind::<BigInt, _>(batch)
        .load(conn)
        .await?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// Live workspaces that report work in progress (`active_tasks > 0`), the phantom-busy
/// sweep's candidates.
pub async fn busy(conn: &mut AsyncPgConnection) -> Result<Vec<Uuid>> {
    Ok(w::table
        .filter(w::active_tasks.gt(0))
        .filter(w::status.ne(DbWorkspaceStatus(WorkspaceStatus::Removed)))
        .select(w::id)
        .load(conn)
        .await?)
}

/// Clears the reported work of `ids` (`active_tasks = 0`, no current task) where some is still
/// reported; the ids it changed.
pub async fn clear_busy(conn: &mut AsyncPgConnection, ids: &[Uuid]) -> Result<Vec<Uuid>> {
    Ok(
        diesel::update(w::table.filter(w::id.eq_any(ids)).filter(w::active_tasks.gt(0)))
            .set((w::active_tasks.eq(0), w::current_task.eq(None::<String>)))
            .returning(w::id)
            .get_results(conn)
            .await?,
    )
}

/// Delete's cascade: every workspace of `ids` not yet removed becomes removed, its URL cleared.
/// The ids it changed; the caller records their events.
pub async fn mark_removed(conn: &mut AsyncPgConnection, ids: &[Uuid]) -> Result<Vec<Uuid>> {
    Ok(diesel::update(
        w::table
            .filter(w::id.eq_any(ids))
            .filter(w::status.ne(DbWorkspaceStatus(WorkspaceStatus::Removed))),
    )
    .set((
        w::status.eq(DbWorkspaceStatus(WorkspaceStatus::Removed)),
        w::url.eq(None::<String>),
        w::updated_at.eq(diesel::dsl::now),
    ))
    .returning(w::id)
    .get_results(conn)
    .await?)
}

/// Deletes the rows of `ids` (a purge; their tokens, events and activity go by cascade).
pub async fn purge(conn: &mut AsyncPgConnection, ids: &[Uuid]) -> Result<()> {
    diesel::sql_query("DELETE FROM workspaces WHERE id = ANY($1)")
        .bind::<Array<SqlUuid>, _>(ids)
        .execute(conn)
        .await?;
    Ok(())
}

/// Moves `id` under `parent` (`None`: a root). Cycle and parent checks are the caller's.
pub async fn set_parent(conn: &mut AsyncPgConnection, id: Uuid, parent: Option<Uuid>) -> Result<()> {
    diesel::update(w::table.find(id))
        .set(w::parent_id.eq(parent))
        .execute(conn)
        .await?;
    Ok(())
}

/// A patch's plain columns, each written only when given.
#[derive(Debug, Default)]
pub struct Columns<'a> {
    pub name: Option<&'a str>,
    pub role: Option<&'a str>,
    pub tier: Option<i32>,
    pub runtime: Option<Runtime>,
    pub delivery_mode: Option<DeliveryMode>,
    pub max_concurrent_tasks: Option<i32>,
    pub collapsed: Option<bool>,
    /// The canvas position (`x`, `y`).
    pub position: Option<(f64, f64)>,
    /// `Some(None)` turns the idle monitor off.
    pub hibernation_idle_minutes: Option<Option<i32>>,
}

/// Writes the given columns and `updated_at`.
pub async fn set_columns(conn: &mut AsyncPgConnection, id: Uuid, c: &Columns<'_>) -> Result<()> {
    let target = w::table.find(id);
    if let Some(v) = c.name {
        diesel::update(target).set(w::name.eq(v)).execute(conn).await?;
    }
    if let Some(v) = c.role {
        diesel::update(target).set(w::role.eq(v)).execute(conn).await?;
    }
    if let Some(v) = c.tier {
        diesel::update(target).set(w::tier.eq(v)).execute(conn).await?;
    }
    if let Some(v) = c.runtime {
        diesel::update(target)
            .set(w::runtime.eq(v.as_str()))
            .execute(conn)
            .await?;
    }
    if let Some(v) = c.delivery_mode {
        diesel::update(target)
            .set(w::delivery_mode.eq(v.as_str()))
            .execute(conn)
            .await?;
    }
    if let Some(v) = c.max_concurrent_tasks {
        diesel::update(target)
            .set(w::max_concurrent_tasks.eq(v))
            .execute(conn)
            .await?;
    }
    if let Some(v) = c.collapsed {
        diesel::update(target).set(w::collapsed.eq(v)).execute(conn).await?;
    }
    if let Some(position) = c.position {
        set_position(conn, id, position).await?;
    }
    if let Some(v) = c.hibernation_idle_minutes {
        diesel::update(target)
            .set(w::hibernation_idle_minutes.eq(v))
            .execute(conn)
            .await?;
    }
    diesel::update(target)
        .set(w::updated_at.eq(diesel::dsl::now))
        .execute(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bulk writes skip `transition`; their source sets must still be moves it allows.
    #[test]
    fn bulk_writes_only_make_allowed_moves() {
        for from in SWEPT {
            assert!(WorkspaceStatus::allowed(*from, WorkspaceStatus::Offline), "{from:?}");
        }
        for from in WorkspaceStatus::ALL.iter().filter(|s| **s != WorkspaceStatus::Removed) {
            assert!(WorkspaceStatus::allowed(*from, WorkspaceStatus::Removed), "{from:?}");
        }
    }
}
