//! `store`: the `workspace_schedules` table, its one owner.
//!
//! Owns: create (checked: the prompt and the cron expression are required, the pair of cron
//! expression and timezone must parse, an unnamed schedule gets a generated name, a taken name
//! is a 409 naming `name`), list, read, update (a changed expression, timezone or a re-enable
//! recomputes the next run from now), delete, disabling a workspace's schedules, the claim of
//! due rows, and what a fire records on its row.
//!
//! **The claim** takes due rows with `FOR UPDATE SKIP LOCKED` and, in the same transaction,
//! moves each one's `next_run_at` to its next slot after now and holds the slot being fired
//! under a lease (`firing_slot`, `firing_until`): once it commits, no other replica sees the
//! slot as due. The firing replica renews the lease while the fire runs, marks the row just
//! before the prompt leaves (`firing_sent_at`), and its record releases the hold. A replica
//! that dies mid-fire leaves its lease to run out; the next claim takes the slot over: one that
//! never left is fired again (with the same messageId), so no slot is lost; one that left is
//! recorded as sent by a replica that stopped, and not sent again, so no agent gets a
//! scheduled prompt twice. Slots missed while no replica ran fire once; the claim says how many
//! were folded into that fire.
//!
//! Must not know: HTTP, how a prompt is delivered, the scheduler's timing.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use molecule_db::Pool;
use molecule_db::schema::workspace_schedules as s;
use molecule_domain::{ScheduleRunStatus, ScheduleSource, Vocabulary};
use molecule_tree::{Result, ServiceError};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::spec::{Spec, SpecError};

impl From<SpecError> for ServiceError {
    fn from(e: SpecError) -> Self {
        ServiceError::invalid(e.field(), e.to_string())
    }
}

/// A schedule as the use-cases see it (not the row: statuses are the domain's).
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub name: String,
    pub cron_expr: String,
    pub timezone: String,
    pub prompt: String,
    pub enabled: bool,
    pub last_run_at: Option<OffsetDateTime>,
    pub next_run_at: Option<OffsetDateTime>,
    pub run_count: i32,
    pub last_status: Option<ScheduleRunStatus>,
    pub last_error: Option<String>,
    pub source: ScheduleSource,
    pub consecutive_empty_runs: i32,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = s)]
struct Row {
    id: Uuid,
    workspace_id: Uuid,
    name: String,
    cron_expr: String,
    timezone: String,
    prompt: String,
    enabled: bool,
    last_run_at: Option<OffsetDateTime>,
    next_run_at: Option<OffsetDateTime>,
    run_count: i32,
    last_status: Option<String>,
    last_error: Option<String>,
    source: String,
    consecutive_empty_runs: i32,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl TryFrom<Row> for Schedule {
    type Error = ServiceError;

    fn try_from(r: Row) -> Result<Self> {
        let bad = |e: molecule_domain::UnknownValue| ServiceError::internal("reading a schedule row", e);
        Ok(Self {
            last_status: r
                .last_status
                .as_deref()
                .map(ScheduleRunStatus::parse)
                .transpose()
                .map_err(bad)?,
            source: ScheduleSource::parse(&r.source).map_err(bad)?,
            id: r.id,
            workspace_id: r.workspace_id,
            name: r.name,
            cron_expr: r.cron_expr,
            timezone: r.timezone,
            prompt: r.prompt,
            enabled: r.enabled,
            last_run_at: r.last_run_at,
            next_run_at: r.next_run_at,
            run_count: r.run_count,
            last_error: r.last_error,
            consecutive_empty_runs: r.consecutive_empty_runs,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// What a create asks for (the original's body: every field but the two required optional).
#[derive(Debug, Clone, Default)]
pub struct NewSchedule {
    pub name: Option<String>,
    pub cron_expr: String,
    pub timezone: Option<String>,
    pub prompt: String,
    pub enabled: Option<bool>,
    pub source: Option<ScheduleSource>,
}

/// What an update changes (absent fields stay).
#[derive(Debug, Clone, Default)]
pub struct ScheduleChange {
    pub name: Option<String>,
    pub cron_expr: Option<String>,
    pub timezone: Option<String>,
    pub prompt: Option<String>,
    pub enabled: Option<bool>,
}

/// What an org import's upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    Created,
    /// An earlier import's schedule of that name, brought up to date.
    Updated,
    /// A schedule of that name made through the API: left as it is.
    KeptRuntime,
}

/// A due slot taken by this replica: fire it, then [`Schedules::record_fire`].
#[derive(Debug, Clone)]
pub struct Claimed {
    pub schedule: Schedule,
    /// The slot being fired (the row's `next_run_at` when it was claimed).
    pub due_at: OffsetDateTime,
    /// Further slots that passed while nothing fired (downtime): folded into this one fire.
    pub missed: u32,
    /// A fire of this slot began on a replica that died: this is the same slot again.
    pub retry: bool,
    /// That replica had sent the prompt (at this instant) before it stopped: record the slot,
    /// do not send it again.
    pub sent_at: Option<OffsetDateTime>,
}

/// How a fire went, for its row.
#[derive(Debug, Clone)]
pub struct FireOutcome {
    pub status: ScheduleRunStatus,
    pub error: Option<String>,
    /// The agent answered, but with nothing (the original's phantom tracking).
    pub empty: bool,
}

/// How long a claimed slot is held for its fire unless renewed (`SCHEDULER_FIRE_LEASE_SECONDS`):
/// the firing replica renews it every third of it, so only a replica that died leaves a lease
/// to run out, and its slots are taken over this long after.
pub const DEFAULT_FIRE_LEASE: time::Duration = time::Duration::seconds(60);

/// The claim's write, column by column (the arrays [`CLAIM_WRITE`] unnests).
#[derive(Default)]
struct ClaimWrites {
    ids: Vec<Uuid>,
    next: Vec<Option<OffsetDateTime>>,
    slot: Vec<Option<OffsetDateTime>>,
    until: Vec<Option<OffsetDateTime>>,
}

impl ClaimWrites {
    fn push(
        &mut self,
        id: Uuid,
        next: Option<OffsetDateTime>,
        slot: Option<OffsetDateTime>,
        until: Option<OffsetDateTime>,
    ) {
        self.ids.push(id);
        self.next.push(next);
        self.slot.push(slot);
        self.until.push(until);
    }
}

/// The claim's write: each taken row's next slot and hold, in one statement (a row parked for
/// a pattern that no longer parses gets NULLs).
const CLAIM_WRITE: &str = "UPDATE workspace_schedules AS s \
     SET next_run_at = w.next_run_at, firing_slot = w.firing_slot, firing_until = w.firing_until \
     FROM unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[], $4::timestamptz[]) \
     AS w(id, next_run_at, firing_slot, firing_until) WHERE s.id = w.id";

/// After this many empty answers in a row a run is recorded as `stale`.
pub const STALE_AFTER_EMPTY_RUNS: i32 = 3;

/// The longest name and prompt accepted, in characters.
pub const MAX_NAME_CHARS: usize = 256;
pub const MAX_PROMPT_CHARS: usize = 64 * 1024;

/// The schedules of every workspace, over the pool.
#[derive(Clone)]
pub struct Schedules {
    pool: Pool,
    lease: time::Duration,
}

impl std::fmt::Debug for Schedules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schedules").finish_non_exhaustive()
    }
}

/// `\r` removed (the original stripped it from API prompts), then checked non-empty.
fn clean_prompt(prompt: &str) -> Result<String> {
    let p = prompt.replace('\r', "");
    if p.trim().is_empty() {
        return Err(ServiceError::invalid("prompt", "cron_expr and prompt are required"));
    }
    if p.chars().count() > MAX_PROMPT_CHARS {
        return Err(ServiceError::invalid(
            "prompt",
            format!("at most {MAX_PROMPT_CHARS} characters"),
        ));
    }
    Ok(p)
}

fn clean_name(name: &str) -> Result<String> {
    let n = name.trim();
    if n.chars().count() > MAX_NAME_CHARS {
        return Err(ServiceError::invalid(
            "name",
            format!("at most {MAX_NAME_CHARS} characters"),
        ));
    }
    Ok(n.to_owned())
}

/// A taken `(workspace_id, name)` as the 409 that names the field.
fn name_taken(e: diesel::result::Error, name: &str) -> ServiceError {
    use diesel::result::{DatabaseErrorKind, Error};
    match &e {
        Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => ServiceError::conflict(
            format!("name: this workspace already has a schedule named {name:?}"),
            json!({ "field": "name", "name": name }),
        ),
        _ => e.into(),
    }
}

impl Schedules {
    pub fn new(pool: Pool) -> Self {
        Self {
            pool,
            lease: DEFAULT_FIRE_LEASE,
        }
    }

    /// Holds claimed slots for `lease` (renewed by the firing replica every third of it).
    #[must_use]
    pub fn with_fire_lease(mut self, lease: std::time::Duration) -> Self {
        self.lease = time::Duration::try_from(lease).unwrap_or(DEFAULT_FIRE_LEASE);
        self
    }

    /// How long a claimed slot is held unless renewed.
    pub fn fire_lease(&self) -> std::time::Duration {
        std::time::Duration::try_from(self.lease).unwrap_or(std::time::Duration::from_secs(60))
    }

    /// Creates a schedule on `workspace_id` (which must exist); its first run is the first
    /// slot after now.
    pub async fn create(&self, workspace_id: Uuid, new: NewSchedule) -> Result<Schedule> {
        if new.cron_expr.trim().is_empty() {
            return Err(ServiceError::invalid("cron_expr", "cron_expr and prompt are required"));
        }
        let prompt = clean_prompt(&new.prompt)?;
        let timezone = new
            .timezone
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .unwrap_or("UTC")
            .to_owned();
        let spec = Spec::parse(&new.cron_expr, &timezone)?;
        let id = Uuid::new_v4();
        let name = match new.name.as_deref().map(clean_name).transpose()? {
            Some(n) if !n.is_empty() => n,
            // Unnamed: a generated name, unique as the id it is cut from.
            _ => format!("schedule-{}", &id.simple().to_string()[..8]),
        };
        let now = OffsetDateTime::now_utc();
        let mut conn = self.pool.get().await?;
        let row: Row = diesel::insert_into(s::table)
            .values((
                s::id.eq(id),
                s::workspace_id.eq(workspace_id),
                s::name.eq(&name),
                s::cron_expr.eq(new.cron_expr.trim()),
                s::timezone.eq(&timezone),
                s::prompt.eq(&prompt),
                s::enabled.eq(new.enabled.unwrap_or(true)),
                s::next_run_at.eq(spec.next_after(now)),
                s::source.eq(new.source.unwrap_or(ScheduleSource::Runtime).as_str()),
            ))
            .returning(Row::as_returning())
            .get_result(&mut conn)
            .await
            .map_err(|e| name_taken(e, &name))?;
        row.try_into()
    }

    /// An org import's schedule: created with `source = template`, or, when the workspace
    /// already has one of that name from an earlier import, updated; a schedule of that name
    /// made through the API (`runtime`) is left as it is. Nothing is ever deleted.
    pub async fn upsert_template(&self, workspace_id: Uuid, new: &NewSchedule) -> Result<Upserted> {
        #[derive(QueryableByName)]
        struct Inserted {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            inserted: bool,
        }
        use diesel::sql_types::{Bool, Nullable, Text, Timestamptz, Uuid as SqlUuid};
        let timezone = new.timezone.clone().unwrap_or_else(|| "UTC".into());
        let spec = Spec::parse(&new.cron_expr, &timezone)?;
        let prompt = clean_prompt(&new.prompt)?;
        let name = new.name.as_deref().map(clean_name).transpose()?.unwrap_or_default();
        if name.is_empty() {
            return Err(ServiceError::invalid("name", "a template's schedule needs a name"));
        }
        let mut conn = self.pool.get().await?;
        let row: Option<Inserted> = diesel::sql_query(
            "INSERT INTO workspace_schedules (workspace_id, name, cron_expr, timezone, prompt, enabled, next_run_at, source) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'template') \
             ON CONFLICT (workspace_id, name) DO UPDATE SET cron_expr = EXCLUDED.cron_expr, \
             timezone = EXCLUDED.timezone, prompt = EXCLUDED.prompt, enabled = EXCLUDED.enabled, \
             next_run_at = EXCLUDED.next_run_at, updated_at = now() \
             WHERE workspace_schedules.source = 'template' \
             RETURNING (xmax = 0) AS inserted",
        )
        .bind::<SqlUuid, _>(workspace_id)
        .bind::<Text, _>(&name)
        .bind::<Text, _>(new.cron_expr.trim())
        .bind::<Text, _>(&timezone)
        .bind::<Text, _>(&prompt)
        .bind::<Bool, _>(new.enabled.unwrap_or(true))
        .bind::<Nullable<Timestamptz>, _>(spec.next_after(OffsetDateTime::now_utc()))
        .get_result(&mut conn)
        .await
        .optional()?;
        Ok(match row {
            Some(Inserted { inserted: true }) => Upserted::Created,
            Some(Inserted { inserted: false }) => Upserted::Updated,
            None => Upserted::KeptRuntime,
        })
    }

    /// Every schedule of `workspace_id`, oldest first.
    pub async fn list(&self, workspace_id: Uuid) -> Result<Vec<Schedule>> {
        let mut conn = self.pool.get().await?;
        let rows: Vec<Row> = s::table
            .filter(s::workspace_id.eq(workspace_id))
            .order((s::created_at.asc(), s::id.asc()))
            .select(Row::as_select())
            .load(&mut conn)
            .await?;
        rows.into_iter().map(Schedule::try_from).collect()
    }

    /// Every schedule of every workspace (the admin health view filters and orders them).
    pub async fn all(&self) -> Result<Vec<Schedule>> {
        let mut conn = self.pool.get().await?;
        let rows: Vec<Row> = s::table
            .order((s::workspace_id.asc(), s::name.asc()))
            .select(Row::as_select())
            .load(&mut conn)
            .await?;
        rows.into_iter().map(Schedule::try_from).collect()
    }

    /// The admin health view: every schedule of a workspace in `names` (the live ones, with
    /// their names), judged at `now`, ordered by workspace name then schedule name.
    pub async fn admin_health(
        &self,
        names: &std::collections::HashMap<Uuid, String>,
        now: OffsetDateTime,
    ) -> Result<Vec<molecule_api::schedules::AdminScheduleHealth>> {
        let mut rows: Vec<_> = self
            .all()
            .await?
            .into_iter()
            .filter_map(|s| {
                let workspace_name = names.get(&s.workspace_id)?.clone();
                let (status, stale_threshold_seconds) = Self::health(&s, now);
                Some(molecule_api::schedules::AdminScheduleHealth {
                    workspace_id: s.workspace_id,
                    workspace_name,
                    schedule_id: s.id,
                    schedule_name: s.name,
                    cron_expr: s.cron_expr,
                    enabled: s.enabled,
                    last_run_at: s.last_run_at,
                    expected_next_run: s.next_run_at,
                    status,
                    stale_threshold_seconds,
                })
            })
            .collect();
        rows.sort_by(|a, b| (&a.workspace_name, &a.schedule_name).cmp(&(&b.workspace_name, &b.schedule_name)));
        Ok(rows)
    }

    /// How the admin health view judges `s` at `now`, with its stale threshold in seconds.
    fn health(s: &Schedule, now: OffsetDateTime) -> (molecule_domain::ScheduleHealthStatus, i64) {
        use molecule_domain::ScheduleHealthStatus as H;
        let threshold =
            Spec::parse(&s.cron_expr, &s.timezone).map_or(time::Duration::ZERO, |sp| sp.stale_threshold(now));
        let status = match (s.enabled, s.last_run_at) {
            (false, _) => H::Disabled,
            (true, None) => H::NeverRun,
            (true, Some(last)) if threshold > time::Duration::ZERO && now - last > threshold => H::Stale,
            (true, Some(_)) => H::Ok,
        };
        (status, threshold.whole_seconds())
    }

    /// One schedule of `workspace_id`; another workspace's id is not found.
    pub async fn get(&self, workspace_id: Uuid, id: Uuid) -> Result<Schedule> {
        let mut conn = self.pool.get().await?;
        let row: Option<Row> = s::table
            .filter(s::id.eq(id))
            .filter(s::workspace_id.eq(workspace_id))
            .select(Row::as_select())
            .first(&mut conn)
            .await
            .optional()?;
        row.ok_or_else(not_found)?.try_into()
    }

    /// Applies `change`. A new expression or timezone is checked with the stored other half,
    /// and the next run is recomputed from now, as it is when a disabled schedule is enabled
    /// (the original kept the stale slot, so a long-disabled schedule fired at once).
    pub async fn update(&self, workspace_id: Uuid, id: Uuid, change: ScheduleChange) -> Result<Schedule> {
        let prompt = change.prompt.as_deref().map(clean_prompt).transpose()?;
        let name = match change.name.as_deref().map(clean_name).transpose()? {
            Some(n) if n.is_empty() => return Err(ServiceError::invalid("name", "must not be empty")),
            other => other,
        };
        let mut conn = self.pool.get().await?;
        let row: Row = conn
            .transaction::<_, ServiceError, _>(async move |conn| {
                let current: Row = s::table
                    .filter(s::id.eq(id))
                    .filter(s::workspace_id.eq(workspace_id))
                    .select(Row::as_select())
                    .for_no_key_update()
                    .first(conn)
                    .await
                    .optional()?
                    .ok_or_else(not_found)?;
                let cron_expr = change
                    .cron_expr
                    .as_deref()
                    .map(str::trim)
                    .unwrap_or(&current.cron_expr)
                    .to_owned();
                let timezone = change
                    .timezone
                    .as_deref()
                    .map(str::trim)
                    .unwrap_or(&current.timezone)
                    .to_owned();
                let enabled = change.enabled.unwrap_or(current.enabled);
                let respec = change.cron_expr.is_some() || change.timezone.is_some() || (enabled && !current.enabled);
                let next_run_at = if respec {
                    Spec::parse(&cron_expr, &timezone)?.next_after(OffsetDateTime::now_utc())
                } else {
                    current.next_run_at
                };
                let name = name.unwrap_or(current.name);
                diesel::update(s::table.filter(s::id.eq(id)))
                    .set((
                        s::name.eq(&name),
                        s::cron_expr.eq(&cron_expr),
                        s::timezone.eq(&timezone),
                        s::prompt.eq(prompt.unwrap_or(current.prompt)),
                        s::enabled.eq(enabled),
                        s::next_run_at.eq(next_run_at),
                        s::updated_at.eq(diesel::dsl::now),
                    ))
                    .returning(Row::as_returning())
                    .get_result(conn)
                    .await
                    .map_err(|e| name_taken(e, &name))
            })
            .await?;
        row.try_into()
    }

    /// Deletes one schedule of `workspace_id`.
    pub async fn delete(&self, workspace_id: Uuid, id: Uuid) -> Result<()> {
        let mut conn = self.pool.get().await?;
        let n = diesel::delete(s::table.filter(s::id.eq(id)).filter(s::workspace_id.eq(workspace_id)))
            .execute(&mut conn)
            .await?;
        if n == 0 {
            return Err(not_found());
        }
        Ok(())
    }

    /// Makes the workspace's enabled schedules whose name contains one of `patterns`
    /// (case-insensitive) due now (GitHub's triggers); a fire in flight keeps its slot.
    /// Returns how many.
    pub async fn trigger_named(&self, workspace_id: Uuid, patterns: &[&str]) -> Result<usize> {
        let likes: Vec<String> = patterns
            .iter()
            .map(|p| {
                format!(
                    "%{}%",
                    p.to_lowercase()
                        .replace('\\', "\\\\")
                        .replace('%', "\\%")
                        .replace('_', "\\_")
                )
            })
            .collect();
        let mut conn = self.pool.get().await?;
        Ok(diesel::sql_query(
            "UPDATE workspace_schedules SET next_run_at = now(), updated_at = now() \
             WHERE workspace_id = $1 AND enabled AND next_run_at IS NOT NULL AND lower(name) LIKE ANY($2)",
        )
        .bind::<diesel::sql_types::Uuid, _>(workspace_id)
        .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(&likes)
        .execute(&mut conn)
        .await?)
    }

    /// Disables every schedule of `workspace_ids` (a delete or a collapse): none fires into a
    /// workspace that is gone. Returns how many were enabled.
    pub async fn disable_for(conn: &mut AsyncPgConnection, workspace_ids: &[Uuid]) -> Result<usize> {
        Ok(diesel::update(
            s::table
                .filter(s::workspace_id.eq_any(workspace_ids))
                .filter(s::enabled.eq(true)),
        )
        .set((s::enabled.eq(false), s::updated_at.eq(diesel::dsl::now)))
        .execute(conn)
        .await?)
    }

    /// Takes up to `limit` slots to fire, skipping rows another replica holds: due schedules
    /// (enabled, `next_run_at <= now`, no fire in flight), whose row moves to its next slot
    /// after `now` and holds this one under the fire lease; and fires whose lease ran out
    /// (their replica died mid-fire), taken over with the same slot (and, when that replica
    /// had sent the prompt, [`Claimed::sent_at`]). All in one transaction.
    /// A row whose pattern no longer parses (or never matches again) is parked
    /// (`next_run_at` NULL) and not returned.
    pub async fn claim_due(&self, now: OffsetDateTime, limit: i64) -> Result<Vec<Claimed>> {
        let mut conn = self.pool.get().await?;
        let lease = now + self.lease;
        conn.transaction::<_, ServiceError, _>(async move |conn| {
            // Two reads, each an index range scan whatever the statistics say (one read with
            // an OR of both cases could only filter an ordered scan, and over stale
            // statistics the planner sorted every due row instead: 7 ms a claim at 10k due).
            // First the slots of replicas that died (their lease ran out), on
            // `workspace_schedules_firing`; then free due slots, oldest first, on
            // `workspace_schedules_due_free`. Conditions are literal (`enabled`, not
            // `enabled = $1`) so a cached statement's generic plan still matches the partial
            // indexes.
            let mut rows: Vec<(Row, Option<OffsetDateTime>, Option<OffsetDateTime>)> = s::table
                .filter(s::enabled)
                .filter(s::firing_slot.is_not_null())
                .filter(s::firing_until.lt(now))
                .order(s::firing_until.asc())
                .limit(limit)
                .select((Row::as_select(), s::firing_slot, s::firing_sent_at))
                .for_update()
                .skip_locked()
                .load(conn)
                .await?;
            let free = limit - i64::try_from(rows.len()).unwrap_or(limit);
            if free > 0 {
                rows.extend(
                    s::table
                        .filter(s::enabled)
                        .filter(s::firing_slot.is_null())
                        .filter(s::next_run_at.le(now))
                        .order(s::next_run_at.asc())
                        .limit(free)
                        .select((Row::as_select(), s::firing_slot, s::firing_sent_at))
                        .for_update()
                        .skip_locked()
                        .load::<(Row, Option<OffsetDateTime>, Option<OffsetDateTime>)>(conn)
                        .await?,
                );
            }
            // What each row becomes, written back in one statement.
            let mut writes = ClaimWrites::default();
            let mut specs: std::collections::HashMap<(String, String), Option<Spec>> = std::collections::HashMap::new();
            let mut out = Vec::with_capacity(rows.len());
            for (row, firing, sent_at) in rows {
                if let Some(slot) = firing {
                    // Its replica died mid-fire: this one takes the slot over.
                    writes.push(row.id, row.next_run_at, Some(slot), Some(lease));
                    if sent_at.is_some() {
                        tracing::warn!(schedule_id = %row.id, slot = %slot, "schedule: a fire's lease ran out after its prompt was sent; recording it, not sending it again");
                    } else {
                        tracing::warn!(schedule_id = %row.id, slot = %slot, "schedule: a fire's lease ran out before its prompt was sent; firing its slot again");
                    }
                    out.push(Claimed {
                        schedule: Schedule::try_from(row)?,
                        due_at: slot,
                        missed: 0,
                        retry: true,
                        sent_at,
                    });
                    continue;
                }
                let Some(due_at) = row.next_run_at else { continue };
                // Parsed once per distinct pattern and timezone in a claim (most schedules
                // share a few): a parse is most of the 17 µs a row costs here.
                let parsed = specs
                    .entry((row.cron_expr.clone(), row.timezone.clone()))
                    .or_insert_with(|| Spec::parse(&row.cron_expr, &row.timezone).ok());
                let Some(spec) = parsed.as_ref() else {
                    writes.push(row.id, None, None, None);
                    tracing::warn!(schedule_id = %row.id, cron_expr = %row.cron_expr, "schedule: its pattern no longer parses; parked");
                    continue;
                };
                let next = spec.next_after(now);
                writes.push(row.id, next, Some(due_at), Some(lease));
                let mut missed = 0u32;
                let mut slot = due_at;
                while let Some(later) = spec.next_after(slot) {
                    if later > now || missed >= 10_000 {
                        break;
                    }
                    missed += 1;
                    slot = later;
                }
                let mut schedule = Schedule::try_from(row)?;
                schedule.next_run_at = next;
                out.push(Claimed {
                    schedule,
                    due_at,
                    missed,
                    retry: false,
                    sent_at: None,
                });
            }
            if !writes.ids.is_empty() {
                use diesel::sql_types::{Array, Nullable, Timestamptz};
                diesel::sql_query(CLAIM_WRITE)
                    .bind::<Array<diesel::sql_types::Uuid>, _>(writes.ids)
                    .bind::<Array<Nullable<Timestamptz>>, _>(writes.next)
                    .bind::<Array<Nullable<Timestamptz>>, _>(writes.slot)
                    .bind::<Array<Nullable<Timestamptz>>, _>(writes.until)
                    .execute(conn)
                    .await?;
            }
            Ok(out)
        })
        .await
    }

    /// Marks the send of `slot` of schedule `id` as begun, just before the prompt leaves: a
    /// replica taking this slot over after this one died will not send it again. `false` when
    /// the hold is no longer this fire's (its lease ran out and another replica has the slot):
    /// then the prompt must not be sent.
    pub async fn mark_sent(&self, id: Uuid, slot: OffsetDateTime) -> Result<bool> {
        let mut conn = self.pool.get().await?;
        let marked = diesel::update(
            s::table
                .find(id)
                .filter(s::firing_slot.eq(slot))
                .filter(s::firing_sent_at.is_null()),
        )
        .set(s::firing_sent_at.eq(diesel::dsl::now))
        .execute(&mut conn)
        .await?;
        Ok(marked == 1)
    }

    /// Renews the holds on these `(schedule, slot)` pairs for another lease from now; a pair
    /// whose slot was recorded (or taken over) meanwhile is left alone. Returns how many were
    /// renewed.
    pub async fn renew(&self, held: &[(Uuid, OffsetDateTime)]) -> Result<usize> {
        if held.is_empty() {
            return Ok(0);
        }
        let (ids, slots): (Vec<Uuid>, Vec<OffsetDateTime>) = held.iter().copied().unzip();
        let mut conn = self.pool.get().await?;
        let until = OffsetDateTime::now_utc() + self.lease;
        Ok(diesel::sql_query(
            "UPDATE workspace_schedules AS s SET firing_until = $1 \
             FROM unnest($2::uuid[], $3::timestamptz[]) AS h(id, slot) \
             WHERE s.id = h.id AND s.firing_slot = h.slot",
        )
        .bind::<diesel::sql_types::Timestamptz, _>(until)
        .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(ids)
        .bind::<diesel::sql_types::Array<diesel::sql_types::Timestamptz>, _>(slots)
        .execute(&mut conn)
        .await?)
    }

    /// Releases the hold on `slot` without a run (the workspace's runtime fires its schedules
    /// itself): the row's next slot was already moved on by the claim.
    pub async fn release(&self, id: Uuid, slot: OffsetDateTime) -> Result<()> {
        let mut conn = self.pool.get().await?;
        release_on(&mut conn, id, slot).await
    }

    /// Records a fire on its row: last run, count, status and error, and the empty-answer
    /// streak (at [`STALE_AFTER_EMPTY_RUNS`] empty answers in a row an `ok` is recorded as
    /// `stale`, saying why). Returns the status recorded.
    /// `slot` is the claimed slot the fire was for (its hold is released); `None` for a
    /// manual run.
    pub async fn record_fire(
        &self,
        id: Uuid,
        slot: Option<OffsetDateTime>,
        outcome: &FireOutcome,
    ) -> Result<ScheduleRunStatus> {
        let mut conn = self.pool.get().await?;
        conn.transaction::<_, ServiceError, _>(async move |conn| {
            let empties: i32 = s::table
                .find(id)
                .select(s::consecutive_empty_runs)
                .for_no_key_update()
                .first(conn)
                .await
                .optional()?
                .ok_or_else(not_found)?;
            let ok = outcome.status == ScheduleRunStatus::Ok;
            let empties = match (ok, outcome.empty) {
                (true, true) => empties + 1,
                (true, false) => 0,
                (false, _) => empties,
            };
            let (status, error) = if ok && empties >= STALE_AFTER_EMPTY_RUNS {
                (
                    ScheduleRunStatus::Stale,
                    Some(format!(
                        "empty response {empties} consecutive times — agent may be phantom-producing"
                    )),
                )
            } else {
                (outcome.status, outcome.error.clone())
            };
            diesel::update(s::table.find(id))
                .set((
                    s::last_run_at.eq(diesel::dsl::now),
                    s::run_count.eq(s::run_count + 1),
                    s::last_status.eq(status.as_str()),
                    s::last_error.eq(error),
                    s::consecutive_empty_runs.eq(empties),
                    s::updated_at.eq(diesel::dsl::now),
                ))
                .execute(conn)
                .await?;
            if let Some(slot) = slot {
                release_on(conn, id, slot).await?;
            }
            Ok(status)
        })
        .await
    }
}

/// Ends the hold on `slot` of schedule `id` (a newer hold, or none, is left alone).
async fn release_on(conn: &mut AsyncPgConnection, id: Uuid, slot: OffsetDateTime) -> Result<()> {
    diesel::update(s::table.find(id).filter(s::firing_slot.eq(slot)))
        .set((
            s::firing_slot.eq(None::<OffsetDateTime>),
            s::firing_until.eq(None::<OffsetDateTime>),
            s::firing_sent_at.eq(None::<OffsetDateTime>),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

fn not_found() -> ServiceError {
    ServiceError::NotFound("schedule not found".into())
}

/// Removed workspaces' schedules are disabled, whichever path removed them (a delete, a
/// collapse, an org re-import): the tree calls every hook's `stop` with the removed ids. The
/// original's collapse left them firing into dead URLs.
#[async_trait::async_trait]
impl molecule_tree::WorkloadHooks for Schedules {
    async fn stop(&self, ids: &[Uuid]) -> Vec<molecule_api::hooks::StopFailure> {
        let disabled = match self.pool.get().await {
            Ok(mut conn) => Self::disable_for(&mut conn, ids).await,
            Err(e) => Err(e.into()),
        };
        match disabled {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                disabled = n,
                workspaces = ids.len(),
                "schedules: removed workspaces' schedules disabled"
            ),
            Err(e) => tracing::error!(error = %e.chain(), "schedules: could not disable removed workspaces' schedules"),
        }
        Vec::new()
    }
}

impl From<Schedule> for molecule_api::schedules::Schedule {
    fn from(s: Schedule) -> Self {
        Self {
            id: s.id,
            workspace_id: s.workspace_id,
            name: s.name,
            cron_expr: s.cron_expr,
            timezone: s.timezone,
            prompt: s.prompt,
            enabled: s.enabled,
            last_run_at: s.last_run_at,
            next_run_at: s.next_run_at,
            run_count: s.run_count,
            last_status: s.last_status,
            last_error: s.last_error,
            source: s.source,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

impl From<Schedule> for molecule_api::schedules::ScheduleHealth {
    fn from(s: Schedule) -> Self {
        Self {
            id: s.id,
            name: s.name,
            enabled: s.enabled,
            last_run_at: s.last_run_at,
            next_run_at: s.next_run_at,
            run_count: s.run_count,
            last_status: s.last_status,
            last_error: s.last_error,
        }
    }
}
