//! The workspace tree: create, read, patch, delete (cascade, purge), state, and the one
//! function that writes statuses.

use diesel::prelude::*;
use diesel::sql_types::Uuid as SqlUuid;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use molecule_api::workspaces::{Created, Deleted, PatchStatus, PatchWorkspace, Patched, Removal, State, Workspace};
use molecule_db::schema::workspaces as w;
use molecule_db::sql_types::DbWorkspaceStatus;
use molecule_domain::{DeliveryMode, EventType, Runtime, StatusChange, Vocabulary, WorkspaceStatus};
use serde::Serialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{Result, ServiceError};
use crate::row::{Lock, status_of};
use crate::tokens;
use crate::{Tree, events, row, validate};
use molecule_api::tokens::MintedToken;

/// Advisory lock serialising tree-shape changes (re-parent, delete) so two concurrent
/// re-parents cannot build a cycle.
const TREE_LOCK: i64 = 0x6d6f_6c65_7472_6565;
/// Walks stop here, so a corrupt tree cannot hang a query (see `walk`).
pub use crate::walk::MAX_DEPTH;

#[derive(Queryable, Selectable)]
#[diesel(table_name = w)]
struct Row {
    id: Uuid,
    name: String,
    role: Option<String>,
    tier: i32,
    status: DbWorkspaceStatus,
    runtime: String,
    model: Option<String>,
    url: Option<String>,
    delivery_mode: Option<String>,
    agent_card: Option<Value>,
    parent_id: Option<Uuid>,
    instance_id: Option<String>,
    last_sample_error: Option<String>,
    last_heartbeat_at: Option<OffsetDateTime>,
    active_tasks: i32,
    max_concurrent_tasks: i32,
    current_task: Option<String>,
    last_error_rate: f64,
    uptime_seconds: i64,
    collapsed: bool,
    runtime_image_digest: Option<String>,
    hibernation_idle_minutes: Option<i32>,
    last_inbound_at: Option<OffsetDateTime>,
    last_outbound_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl From<Row> for Workspace {
    fn from(r: Row) -> Self {
        Self {
            id: r.id,
            name: r.name,
            role: r.role,
            tier: r.tier,
            status: r.status.0,
            runtime: Runtime::resolve(Some(&r.runtime)),
            model: r.model,
            url: r.url,
            delivery_mode: r.delivery_mode,
            agent_card: r.agent_card,
            parent_id: r.parent_id,
            instance_id: r.instance_id,
            last_sample_error: r.last_sample_error,
            last_heartbeat_at: r.last_heartbeat_at,
            active_tasks: r.active_tasks,
            max_concurrent_tasks: r.max_concurrent_tasks,
            current_task: r.current_task,
            last_error_rate: r.last_error_rate,
            uptime_seconds: r.uptime_seconds,
            collapsed: r.collapsed,
            x: 0.0,
            y: 0.0,
            runtime_image_digest: r.runtime_image_digest,
            hibernation_idle_minutes: r.hibernation_idle_minutes,
            last_inbound_at: r.last_inbound_at,
            last_outbound_at: r.last_outbound_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// What a workload's `/configs` gets beyond its template (org import's `files_dir` and
/// `system_prompt`).
#[derive(Debug, Clone, Default)]
pub struct SeedExtras {
    /// An absolute directory, already checked to be inside the org's directory.
    pub files_dir: Option<String>,
    pub system_prompt: Option<String>,
}

/// Whether a delete may take a workspace's live children with it (`?confirm=true`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Children {
    /// Live children make the delete a 409 that lists them.
    Refuse,
    /// The whole subtree goes.
    Cascade,
}

/// Who asks for a change: some fields only the operator may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    Admin,
    /// The workspace itself, with its own token.
    Workspace,
}

/// The tier of a workspace that names none (nor does its template).
pub const DEFAULT_TIER: i32 = 3;

fn tier(t: Option<i32>) -> Result<i32> {
    match t {
        None | Some(0) => Ok(DEFAULT_TIER),
        Some(t @ 1..=4) => Ok(t),
        Some(other) => Err(ServiceError::invalid("tier", format!("must be 1..=4, got {other}"))),
    }
}

fn max_tasks(n: Option<i32>) -> Result<i32> {
    match n {
        None => Ok(1),
        Some(n) if n <= 0 => Ok(1),
        Some(n) if n > 1000 => Err(ServiceError::invalid("max_concurrent_tasks", "at most 1000")),
        Some(n) => Ok(n),
    }
}

fn delivery(field: &'static str, v: Option<&str>) -> Result<Option<DeliveryMode>> {
    v.filter(|s| !s.trim().is_empty())
        .map(|s| DeliveryMode::parse(s.trim()).map_err(|e| ServiceError::invalid(field, e.to_string())))
        .transpose()
}

async fn lock_tree(conn: &mut AsyncPgConnection) -> Result<()> {
    diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
        .bind::<diesel::sql_types::BigInt, _>(TREE_LOCK)
        .execute(conn)
        .await?;
    Ok(())
}

async fn load(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Workspace> {
    let one = w::table
        .find(id)
        .select(Row::as_select())
        .first(conn)
        .await
        .optional()?
        .map(Workspace::from)
        .ok_or_else(|| ServiceError::NotFound(format!("workspace {id} not found")))?;
    let mut one = [one];
    row::attach_positions(conn, &mut one).await?;
    let [one] = one;
    Ok(one)
}

/// The parent a new or re-parented workspace may hang under: it exists and is not removed.
async fn check_parent(conn: &mut AsyncPgConnection, parent: Uuid) -> Result<()> {
    match status_of(conn, parent, Lock::No).await? {
        None => Err(ServiceError::invalid(
            "parent_id",
            format!("workspace {parent} does not exist"),
        )),
        Some(WorkspaceStatus::Removed) => Err(ServiceError::conflict(
            format!("parent_id: workspace {parent} is removed"),
            json!({ "parent_id": parent, "parent_status": WorkspaceStatus::Removed.as_str() }),
        )),
        Some(_) => Ok(()),
    }
}

pub use crate::walk::{ancestors, subtree};

/// A create, checked: what the row, its first event and its seed row get. The composing crate
/// builds it from the request (with its template's defaults) through this module's checks.
#[derive(Debug, Clone)]
pub struct NewWorkspace {
    pub name: String,
    pub role: Option<String>,
    pub tier: i32,
    pub runtime: Runtime,
    /// An external agent (no workload): online with a URL, else awaiting its agent.
    pub external: bool,
    pub url: Option<String>,
    pub delivery_mode: Option<DeliveryMode>,
    pub parent: Option<Uuid>,
    pub max_tasks: i32,
    /// The template it was made from, for the seed row.
    pub template_id: Option<String>,
    pub seed: SeedExtras,
    /// Its canvas position (checked finite).
    pub position: (f64, f64),
}

impl NewWorkspace {
    /// A root workspace named `name` with every other field at its default (a provisioned
    /// workload of the default runtime and tier): for tests and tools.
    pub fn root(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            role: None,
            tier: DEFAULT_TIER,
            runtime: Runtime::resolve(None),
            external: false,
            url: None,
            delivery_mode: None,
            parent: None,
            max_tasks: 1,
            template_id: None,
            seed: SeedExtras::default(),
            position: (0.0, 0.0),
        }
    }

    /// The status it is born with.
    pub fn status(&self) -> WorkspaceStatus {
        match (self.external, &self.url) {
            (true, Some(_)) => WorkspaceStatus::Online,
            (true, None) => WorkspaceStatus::AwaitingAgent,
            (false, _) => WorkspaceStatus::Provisioning,
        }
    }
}

/// Writes a composing crate adds to a create's or a patch's transaction (the workspace's
/// model and secrets): run on the same connection, after the row exists and before the answer
/// is read back, so the whole change commits or none of it.
pub type ExtraWrite =
    Box<dyn for<'c> FnOnce(&'c mut AsyncPgConnection, Uuid) -> futures_util::future::BoxFuture<'c, Result<()>> + Send>;

/// Stores a patch's new `model` (already checked by the tree: trimmed, at most 100 characters)
/// on the patch's transaction: the row's column and the runtime's secrets, which the composer
/// owns.
pub type ModelWrite = Box<
    dyn for<'c> FnOnce(&'c mut AsyncPgConnection, Uuid, String) -> futures_util::future::BoxFuture<'c, Result<()>>
        + Send,
>;

/// Checks a canvas coordinate: a finite number, at most a billion either way.
pub fn check_coordinate(field: &'static str, v: f64) -> Result<f64> {
    if v.is_finite() && v.abs() <= 1e9 {
        Ok(v)
    } else {
        Err(ServiceError::invalid(
            field,
            "must be a finite number between -1e9 and 1e9",
        ))
    }
}

/// Checks a tier (0 or none: [`DEFAULT_TIER`]).
pub fn check_tier(t: Option<i32>) -> Result<i32> {
    tier(t)
}

/// Checks `max_concurrent_tasks` (none or below 1: 1).
pub fn check_max_tasks(n: Option<i32>) -> Result<i32> {
    max_tasks(n)
}

/// Checks a delivery mode (blank: none).
pub fn check_delivery(field: &'static str, v: Option<&str>) -> Result<Option<DeliveryMode>> {
    delivery(field, v)
}

impl Tree {
    /// Inserts a workspace, its first event and its seed row, runs `extra` on the same
    /// transaction, and mints an external agent's first token. Nothing is provisioned yet:
    /// the composer finishes with [`Tree::finish_create`].
    pub async fn insert_workspace(
        &self,
        new: NewWorkspace,
        extra: Option<ExtraWrite>,
    ) -> Result<(Workspace, Option<MintedToken>)> {
        let status = new.status();
        let mut conn = self.pool.get().await?;
        conn.transaction::<_, ServiceError, _>(async move |conn| {
            let NewWorkspace {
                name,
                role,
                tier,
                runtime,
                external,
                url,
                delivery_mode,
                parent,
                max_tasks,
                template_id,
                seed,
                position,
            } = new;
            if let Some(p) = parent {
                check_parent(conn, p).await?;
            }
            let id = row::insert(
                conn,
                &row::Insert {
                    name: &name,
                    role: role.as_deref(),
                    tier,
                    status,
                    runtime,
                    url: url.as_deref(),
                    delivery_mode,
                    parent,
                    max_tasks,
                    position,
                },
            )
            .await?;
            let (ty, payload) = match status {
                WorkspaceStatus::Online => (EventType::WorkspaceOnline, json!({ "name": name, "external": true })),
                WorkspaceStatus::AwaitingAgent => (
                    EventType::WorkspaceAwaitingAgent,
                    json!({ "name": name, "external": true }),
                ),
                _ => (
                    EventType::WorkspaceProvisioning,
                    json!({ "name": name, "tier": tier, "runtime": runtime.as_str(), "parent_id": parent }),
                ),
            };
            events::record(conn, ty, Some(id), payload).await?;
            if template_id.is_some() || seed.files_dir.is_some() || seed.system_prompt.is_some() {
                crate::workloads::record_seed(
                    conn,
                    id,
                    template_id.as_deref().unwrap_or(""),
                    seed.files_dir.as_deref(),
                    seed.system_prompt.as_deref(),
                )
                .await?;
            }
            if let Some(extra) = extra {
                extra(conn, id).await?;
            }
            // The workspace's first event announces it; an external agent's first token
            // follows. A provisioned workload gets its own from the dispatcher, which
            // revokes every other one, so none is minted here.
            let token: Option<MintedToken> = if external {
                Some(tokens::issue(conn, id, tokens::Issue::Another).await?)
            } else {
                None
            };
            Ok((load(conn, id).await?, token))
        })
        .await
    }

    /// After [`Tree::insert_workspace`] and whatever the composer adds outside the
    /// transaction: provisions a workspace that needs a workload, and builds the answer.
    pub async fn finish_create(&self, workspace: Workspace, token: Option<MintedToken>) -> Created {
        let status = workspace.status;
        let external = workspace.runtime == Runtime::External;
        let tier = workspace.tier;
        if status == WorkspaceStatus::Provisioning {
            self.hooks.provision(workspace.id).await;
        }
        let connection = (status == WorkspaceStatus::AwaitingAgent).then(|| {
            let shown = token
                .as_ref()
                .map_or(crate::external::TOKEN_NOT_SHOWN, |t| t.auth_token.as_str());
            self.connection_payload(workspace.id, shown)
        });
        Created {
            id: workspace.id,
            status: workspace.status,
            external,
            auth_token_note: token.is_none().then(|| {
                format!(
                    "no token is shown for a provisioned workspace: its workload receives a fresh one at every provision, which revokes the others; mint one with POST /workspaces/{}/tokens",
                    workspace.id
                )
            }),
            auth_token: token.map(|t| t.auth_token),
            connection,
            tier_note: (!external && tier >= 3 && !self.config.privileged_tiers).then(|| {
                format!(
                    "tier {tier} gets its memory and CPU limits but not the original's host privileges (privileged, host PID{}): set MOLECULE_ALLOW_PRIVILEGED_TIERS=true to grant them",
                    if tier == 4 { ", host network, the Docker socket" } else { "" }
                )
            }),
            workspace,
        }
    }
}

impl Tree {
    /// Every workspace that is not removed, oldest first.
    /// Whether `id`'s runtime runs its own scheduler (its last heartbeat said so), so the
    /// platform must not fire its schedules. False for an unknown workspace.
    pub async fn runs_own_scheduler(&self, id: Uuid) -> Result<bool> {
        let mut conn = self.pool.get().await?;
        Ok(w::table
            .find(id)
            .select(w::native_scheduler)
            .first::<bool>(&mut conn)
            .await
            .optional()?
            .unwrap_or(false))
    }

    pub async fn list_workspaces(&self) -> Result<Vec<Workspace>> {
        let mut conn = self.pool.get().await?;
        let rows: Vec<Row> = w::table
            .filter(w::status.ne(DbWorkspaceStatus(WorkspaceStatus::Removed)))
            .order((w::created_at.asc(), w::id.asc()))
            .select(Row::as_select())
            .load(&mut conn)
            .await?;
        let mut all: Vec<Workspace> = rows.into_iter().map(Workspace::from).collect();
        row::attach_positions(&mut conn, &mut all).await?;
        Ok(all)
    }

    /// The backend that ran each live workspace's workload, for those a backend ran.
    pub async fn backends(&self) -> Result<std::collections::HashMap<Uuid, String>> {
        let mut conn = self.pool.get().await?;
        let rows: Vec<(Uuid, Option<String>)> = w::table
            .filter(w::status.ne(DbWorkspaceStatus(WorkspaceStatus::Removed)))
            .filter(w::backend.is_not_null())
            .select((w::id, w::backend))
            .load(&mut conn)
            .await?;
        Ok(rows.into_iter().filter_map(|(id, b)| Some((id, b?))).collect())
    }

    /// One workspace, removed ones included.
    pub async fn get_workspace(&self, id: Uuid) -> Result<Workspace> {
        let mut conn = self.pool.get().await?;
        load(&mut conn, id).await
    }

    pub async fn workspace_state(&self, id: Uuid) -> Result<State> {
        let mut conn = self.pool.get().await?;
        match status_of(&mut conn, id, Lock::No).await? {
            None | Some(WorkspaceStatus::Removed) => Err(ServiceError::NotFound(format!("workspace {id} is deleted"))),
            Some(s) => Ok(State {
                workspace_id: id,
                status: s,
                paused: s == WorkspaceStatus::Paused,
                deleted: false,
            }),
        }
    }

    /// `write_model` stores the checked `model` (the row's column and the runtime's secrets,
    /// which the composer owns) on the patch's transaction; it must be given when `input.model`
    /// is.
    pub async fn patch_workspace(
        &self,
        id: Uuid,
        input: PatchWorkspace,
        actor: Actor,
        write_model: Option<ModelWrite>,
    ) -> Result<Patched> {
        let infra = input.tier.is_some() || input.parent_id.is_some() || input.runtime.is_some();
        if infra && actor != Actor::Admin {
            return Err(ServiceError::Forbidden(
                "WORKSPACE_INFRASTRUCTURE_AUTH_REQUIRED: tier, parent_id and runtime can only be changed with the admin token".into(),
            ));
        }
        let name = input
            .name
            .as_deref()
            .map(|n| validate::workspace_name("name", n).map(molecule_domain::WorkspaceName::into_string))
            .transpose()?;
        let role = input
            .role
            .as_deref()
            .map(|r| validate::text("role", r, 1000, true))
            .transpose()?;
        let model = input
            .model
            .as_deref()
            .map(|m| validate::text("model", m, 100, false))
            .transpose()?;
        let tier = input.tier.map(|t| tier(Some(t))).transpose()?;
        let runtime = input.runtime.as_deref().map(|r| Runtime::resolve(Some(r)));
        let delivery_mode = delivery("delivery_mode", input.delivery_mode.as_deref())?;
        let max = input.max_concurrent_tasks.map(|n| max_tasks(Some(n))).transpose()?;
        let collapsed = input.collapsed;
        let position = match (input.x, input.y) {
            (Some(x), Some(y)) => Some((check_coordinate("x", x)?, check_coordinate("y", y)?)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ServiceError::invalid(
                    "y",
                    "x and y move a workspace together: give y too",
                ));
            }
            (None, Some(_)) => {
                return Err(ServiceError::invalid(
                    "x",
                    "x and y move a workspace together: give x too",
                ));
            }
        };
        let new_parent = input.parent_id;
        let idle_minutes = input.hibernation_idle_minutes;
        if let Some(Some(m)) = idle_minutes
            && !(1..=10_080).contains(&m)
        {
            return Err(ServiceError::invalid(
                "hibernation_idle_minutes",
                "must be between 1 and 10080 (a week), or null to turn the idle monitor off",
            ));
        }
        if name.is_none()
            && role.is_none()
            && model.is_none()
            && tier.is_none()
            && runtime.is_none()
            && delivery_mode.is_none()
            && max.is_none()
            && collapsed.is_none()
            && position.is_none()
            && new_parent.is_none()
            && idle_minutes.is_none()
        {
            return Err(ServiceError::invalid(
                "body",
                "nothing to update: give at least one of name, role, model, tier, runtime, parent_id, delivery_mode, max_concurrent_tasks, collapsed, x and y, hibernation_idle_minutes",
            ));
        }
        let write_model = match (&model, write_model) {
            (Some(m), Some(w)) => Some((m.clone(), w)),
            (Some(_), None) => {
                return Err(ServiceError::internal(
                    "patching a workspace's model",
                    std::io::Error::other("the composer gave no model writer"),
                ));
            }
            (None, _) => None,
        };
        let mut conn = self.pool.get().await?;
        conn.transaction::<_, ServiceError, _>(async move |conn| {
            if new_parent.is_some() {
                lock_tree(conn).await?;
            }
            match status_of(conn, id, Lock::Row).await? {
                None => return Err(ServiceError::NotFound(format!("workspace {id} not found"))),
                Some(WorkspaceStatus::Removed) => {
                    return Err(ServiceError::conflict(
                        format!("workspace {id} is removed"),
                        json!({ "status": WorkspaceStatus::Removed.as_str() }),
                    ));
                }
                Some(_) => {}
            }
            let before = load(conn, id).await?;
            let mut reparented = false;
            if let Some(parent) = new_parent {
                if let Some(p) = parent {
                    if p == id {
                        return Err(ServiceError::invalid(
                            "parent_id",
                            "a workspace cannot be its own parent",
                        ));
                    }
                    check_parent(conn, p).await?;
                    let mut chain = ancestors(conn, p).await?;
                    chain.insert(0, p);
                    if chain.contains(&id) {
                        return Err(ServiceError::conflict(
                            format!("parent_id: {p} is a descendant of {id}; the move would create a cycle"),
                            json!({ "parent_id": p, "cycle": true }),
                        ));
                    }
                }
                if before.parent_id != parent {
                    row::set_parent(conn, id, parent).await?;
                    events::record(
                        conn,
                        EventType::WorkspaceReparented,
                        Some(id),
                        json!({ "from": before.parent_id, "to": parent }),
                    )
                    .await?;
                    reparented = true;
                }
            }
            if let Some((model, write)) = write_model {
                write(conn, id, model).await?;
            }
            row::set_columns(
                conn,
                id,
                &row::Columns {
                    name: name.as_deref(),
                    role: role.as_deref(),
                    tier,
                    runtime,
                    delivery_mode,
                    max_concurrent_tasks: max,
                    collapsed,
                    position,
                    hibernation_idle_minutes: idle_minutes,
                },
            )
            .await?;
            let after = load(conn, id).await?;
            events::record(
                conn,
                EventType::WorkspaceUpdated,
                Some(id),
                json!({ "name": after.name }),
            )
            .await?;
            Ok(Patched {
                status: PatchStatus::Updated,
                reparented,
                workspace: after,
            })
        })
        .await
    }

    /// Deletes `id` and its subtree: without `confirm`, non-removed children make it a 409;
    /// every member is marked removed first, its tokens revoked, then its workload stopped
    /// through the hooks. `purge` also deletes the rows and runs the cleanup hooks.
    /// The composer forgets what it derived from the tree (memory scopes) and purges what it
    /// keeps of a purged workspace (memories).
    pub async fn delete_workspace(&self, id: Uuid, children: Children, removal: Removal) -> Result<Deleted> {
        let (confirm, purge) = (children == Children::Cascade, removal == Removal::Purged);
        #[derive(QueryableByName, Serialize)]
        struct Child {
            #[diesel(sql_type = SqlUuid)]
            id: Uuid,
            #[diesel(sql_type = diesel::sql_types::Text)]
            name: String,
        }
        let mut conn = self.pool.get().await?;
        let (ids, newly_removed) = conn
            .transaction::<_, ServiceError, _>(async move |conn| {
                    lock_tree(conn).await?;
                    let Some(status) = status_of(conn, id, Lock::Row).await? else {
                        return Err(ServiceError::NotFound(format!("workspace {id} not found")));
                    };
                    if status == WorkspaceStatus::Removed && !purge {
                        return Err(ServiceError::conflict(
                            format!("workspace {id} is already removed; add ?purge=true to delete its row"),
                            json!({ "status": WorkspaceStatus::Removed.as_str() }),
                        ));
                    }
                    if !confirm {
                        let children: Vec<Child> = diesel::sql_query(format!("SELECT id, name FROM workspaces WHERE parent_id = $1 AND status NOT IN ({}) ORDER BY created_at", WorkspaceStatus::sql_list(&[WorkspaceStatus::Removed])))
                            .bind::<SqlUuid, _>(id)
                            .load(conn)
                            .await?;
                        if !children.is_empty() {
                            let count = children.len();
                            return Err(ServiceError::conflict(
                                format!("workspace {id} has {count} child workspace(s); repeat with ?confirm=true to delete them too"),
                                json!({ "status": "confirmation_required", "children": children, "children_count": count }),
                            ));
                        }
                    }
                    let live = subtree(conn, id, false).await?;
                    // Mark removed first (parents before children), so nothing revives them.
                    let removed = row::mark_removed(conn, &live).await?;
                    tokens::revoke_all_of(conn, &live).await?;
                    for wid in live.iter().rev().filter(|w| **w != id && removed.contains(w)) {
                        events::record(conn, EventType::WorkspaceRemoved, Some(*wid), json!({})).await?;
                    }
                    if removed.contains(&id) {
                        events::record(conn, EventType::WorkspaceRemoved, Some(id), json!({ "cascade_deleted": removed.len() - 1 })).await?;
                    }
                    let all = if purge { subtree(conn, id, true).await? } else { live };
                    if purge {
                        row::purge(conn, &all).await?;
                        for wid in &all {
                            events::record(conn, EventType::WorkspacePurged, Some(*wid), json!({})).await?;
                        }
                    }
                    Ok((all, removed))
                })
            .await?;
        drop(conn);
        let stop_failures = if newly_removed.is_empty() {
            Vec::new()
        } else {
            self.hooks.stop(&newly_removed).await
        };
        if purge {
            self.hooks.purge(&ids).await;
        }
        Ok(Deleted {
            status: removal,
            cascade_deleted: ids.len().saturating_sub(1),
            ids,
            stop_failures,
        })
    }

    /// Marks `id` failed with `reason` (stored in `last_sample_error`, carried by
    /// `WORKSPACE_PROVISION_FAILED`). The only way to fail a workspace.
    pub async fn mark_failed(&self, id: Uuid, reason: molecule_domain::FailureReason, payload: Value) -> Result<bool> {
        let mut conn = self.pool.get().await?;
        let change = StatusChange::Failed(reason);
        conn.transaction::<_, ServiceError, _>(async move |conn| {
            match row::transition(conn, id, &change, row::From::Any, row::Also::default(), payload).await? {
                row::Moved::Missing => Err(ServiceError::NotFound(format!("workspace {id} not found"))),
                moved => Ok(moved.happened()),
            }
        })
        .await
    }

    /// Like [`Tree::mark_failed`], but only while the status is one of `only_from`
    /// (e.g. still `provisioning` when a timeout fires). Returns whether it changed.
    pub async fn mark_failed_from(
        &self,
        id: Uuid,
        reason: molecule_domain::FailureReason,
        only_from: &[WorkspaceStatus],
        payload: Value,
    ) -> Result<bool> {
        let mut conn = self.pool.get().await?;
        let change = StatusChange::Failed(reason);
        let only_from = only_from.to_vec();
        conn.transaction::<_, ServiceError, _>(async move |conn| {
            match row::transition(
                conn,
                id,
                &change,
                row::From::OneOf(&only_from),
                row::Also::default(),
                payload,
            )
            .await?
            {
                row::Moved::Missing => Err(ServiceError::NotFound(format!("workspace {id} not found"))),
                moved => Ok(moved.happened()),
            }
        })
        .await
    }

    /// Whether `id` exists and is not removed (used by auth on registry routes).
    pub async fn is_live(&self, id: Uuid) -> Result<bool> {
        let mut conn = self.pool.get().await?;
        let live: Option<bool> = w::table
            .find(id)
            .select(w::status.ne(DbWorkspaceStatus(WorkspaceStatus::Removed)))
            .first(&mut conn)
            .await
            .optional()?;
        Ok(live.unwrap_or(false))
    }
}

/// One workspace as the memory export and import place namespaces: id, name, parent.
#[derive(Debug, Clone)]
pub struct TreeNode {
    pub id: Uuid,
    pub name: String,
    pub parent_id: Option<Uuid>,
}

impl Tree {
    /// Every workspace row (removed ones too: their memories outlive them until a purge).
    pub async fn tree_nodes(&self) -> Result<Vec<TreeNode>> {
        let mut conn = self.pool.get().await?;
        let rows: Vec<(Uuid, String, Option<Uuid>)> = w::table
            .select((w::id, w::name, w::parent_id))
            .order((w::created_at.asc(), w::id.asc()))
            .load(&mut conn)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, name, parent_id)| TreeNode { id, name, parent_id })
            .collect())
    }
}

impl Tree {
    /// The live workspace named `name` under `parent` (roots when `None`).
    pub async fn live_child(&self, parent: Option<Uuid>, name: &str) -> Result<Option<Uuid>> {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        let mut conn = self.pool.get().await?;
        let mut q = w::table
            .filter(w::name.eq(name))
            .filter(w::status.ne(DbWorkspaceStatus(WorkspaceStatus::Removed)))
            .into_boxed();
        q = match parent {
            Some(p) => q.filter(w::parent_id.eq(p)),
            None => q.filter(w::parent_id.is_null()),
        };
        Ok(q.select(w::id).first(&mut conn).await.optional()?)
    }
}

/// Workspaces idle past their `hibernation_idle_minutes`: in one of `statuses`, not external,
/// no active task, no message in or out (nor creation) for that long, and not in `busy`
/// (their queue holds something). Up to `limit`, by id: `(id, minutes)`.
pub async fn idle_candidates(
    conn: &mut AsyncPgConnection,
    statuses: &[WorkspaceStatus],
    busy: &[Uuid],
    limit: i64,
) -> Result<Vec<(Uuid, i32)>> {
    #[derive(QueryableByName)]
    struct Idle {
        #[diesel(sql_type = SqlUuid)]
        id: Uuid,
        #[diesel(sql_type = diesel::sql_types::Integer)]
        minutes: i32,
    }
    let sql = format!(
        "SELECT w.id, w.hibernation_idle_minutes AS minutes FROM workspaces w
          WHERE w.hibernation_idle_minutes IS NOT NULL
            AND w.status IN ({})
            AND w.runtime <> $1
            AND w.active_tasks = 0
            AND GREATEST(w.last_inbound_at, w.last_outbound_at, w.created_at)
                < now() - make_interval(mins => w.hibernation_idle_minutes)
            AND w.id <> ALL($3)
          ORDER BY w.id LIMIT $2",
        WorkspaceStatus::sql_list(statuses),
    );
    let rows: Vec<Idle> = diesel::sql_query(sql)
        .bind::<diesel::sql_types::Text, _>(Runtime::External.as_str())
        .bind::<diesel::sql_types::BigInt, _>(limit)
        .bind::<diesel::sql_types::Array<SqlUuid>, _>(busy)
        .load(conn)
        .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.minutes)).collect())
}

/// Workspaces whose workload runs (status in `running`, not external): `only` that one, else
/// all but `except`.
pub async fn running_workloads(
    conn: &mut AsyncPgConnection,
    running: &[WorkspaceStatus],
    only: Option<Uuid>,
    except: &[Uuid],
) -> Result<Vec<Uuid>> {
    let mut q = w::table
        .filter(w::status.eq_any(running.iter().copied().map(DbWorkspaceStatus)))
        .filter(w::runtime.ne(Runtime::External.as_str()))
        .select(w::id)
        .into_boxed();
    match only {
        Some(id) => q = q.filter(w::id.eq(id)),
        None => q = q.filter(w::id.ne_all(except.to_vec())),
    }
    Ok(q.load(conn).await?)
}
