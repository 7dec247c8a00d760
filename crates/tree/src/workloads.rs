//! What the dispatcher reads and records about workloads, as named operations: the
//! provisioning target, what a provision started, which backend runs a workspace, clearing
//! an instance, claiming a restart, leak bookkeeping and the provisioning-timeout scan.
//!
//! Owns: the SQL behind those operations (on `workspaces`, `runtime_image_pins` and
//! `events`). Must not know: backends, images or how a workload is started; the dispatcher
//! decides, this module records.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, RunQueryDsl};
use molecule_db::schema::runtime_image_pins as p;
use molecule_db::schema::workspace_seeds as seeds;
use molecule_db::schema::workspaces as w;
use molecule_db::sql_types::DbWorkspaceStatus;
use molecule_domain::{EventType, Runtime, StatusChange, Vocabulary, WorkspaceStatus};
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{Result, ServiceError};
use crate::{Tree, events, row};

/// What a provision needs to know about its workspace.
#[derive(Debug, Clone)]
pub struct ProvisionTarget {
    pub status: WorkspaceStatus,
    pub runtime: Runtime,
    pub tier: i32,
    pub model: Option<String>,
    pub name: String,
    pub role: Option<String>,
    /// Where its `/configs` comes from.
    pub seed: Seed,
}

/// Where a workload's `/configs` comes from, and whether it was seeded already.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seed {
    /// A template id under `CONFIGS_DIR` ('' for none: `<runtime>-default` if it exists).
    pub template: String,
    /// An org node's files directory (absolute), which wins over `template`.
    pub files_dir: Option<String>,
    pub system_prompt: Option<String>,
    /// A provision already seeded `/configs`: later ones leave it alone.
    pub seeded: bool,
}

/// Records where a new workspace's `/configs` comes from (in the creating transaction).
pub async fn record_seed(
    conn: &mut diesel_async::AsyncPgConnection,
    id: Uuid,
    template: &str,
    files_dir: Option<&str>,
    system_prompt: Option<&str>,
) -> Result<()> {
    diesel::insert_into(seeds::table)
        .values((
            seeds::workspace_id.eq(id),
            seeds::template.eq(template),
            seeds::files_dir.eq(files_dir),
            seeds::system_prompt.eq(system_prompt),
        ))
        .on_conflict(seeds::workspace_id)
        .do_update()
        .set((
            seeds::template.eq(template),
            seeds::files_dir.eq(files_dir),
            seeds::system_prompt.eq(system_prompt),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

impl ProvisionTarget {
    /// Removed and paused workspaces, and external agents, get no workload.
    pub fn wants_workload(&self) -> bool {
        !matches!(self.status, WorkspaceStatus::Removed | WorkspaceStatus::Paused) && self.runtime != Runtime::External
    }
}

/// What a finished provision started.
#[derive(Debug, Clone)]
pub struct Provisioned<'a> {
    pub backend: &'a str,
    pub instance_id: Option<&'a str>,
    pub image_digest: Option<&'a str>,
}

/// A workspace still provisioning, with how long it has been.
#[derive(Debug, Clone, diesel::QueryableByName)]
pub struct Provisioning {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = Text)]
    pub runtime: String,
    /// Its template ('' for none).
    #[diesel(sql_type = Text)]
    pub template: String,
    #[diesel(sql_type = BigInt)]
    pub age_seconds: i64,
}

/// Why the reconciler may stop a workload it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Orphanhood {
    /// The workspace is live: not an orphan.
    Live,
    /// Removed at this time.
    Removed(OffsetDateTime),
    /// No row (never existed here, or purged).
    Unknown,
}

/// `provision_target`'s columns: the workspace's, then its seed's (absent without a row).
type TargetRow = (
    DbWorkspaceStatus,
    String,
    i32,
    Option<String>,
    String,
    Option<String>,
    Option<(String, Option<String>, Option<String>, Option<OffsetDateTime>)>,
);

impl Tree {
    /// The workspace a provision is for; `None` when it does not exist.
    pub async fn provision_target(&self, id: Uuid) -> Result<Option<ProvisionTarget>> {
        let mut conn = self.pool.get().await?;
        let row: Option<TargetRow> = w::table
            .left_join(seeds::table)
            .filter(w::id.eq(id))
            .select((
                w::status,
                w::runtime,
                w::tier,
                w::model,
                w::name,
                w::role,
                (
                    seeds::template,
                    seeds::files_dir,
                    seeds::system_prompt,
                    seeds::seeded_at,
                )
                    .nullable(),
            ))
            .first(&mut conn)
            .await
            .optional()?;
        Ok(
            row.map(|(status, runtime, tier, model, name, role, seed)| ProvisionTarget {
                status: status.0,
                runtime: Runtime::resolve(Some(&runtime)),
                tier,
                model,
                name,
                role,
                seed: seed
                    .map(|(template, files_dir, system_prompt, seeded_at)| Seed {
                        template,
                        files_dir,
                        system_prompt,
                        seeded: seeded_at.is_some(),
                    })
                    .unwrap_or_default(),
            }),
        )
    }

    /// Records that `/configs` of `id` has been seeded: later provisions leave it alone.
    pub async fn mark_seeded(&self, id: Uuid) -> Result<()> {
        let mut conn = self.pool.get().await?;
        diesel::insert_into(seeds::table)
            .values((seeds::workspace_id.eq(id), seeds::seeded_at.eq(diesel::dsl::now)))
            .on_conflict(seeds::workspace_id)
            .do_update()
            .set(seeds::seeded_at.eq(diesel::dsl::now))
            .execute(&mut conn)
            .await?;
        Ok(())
    }

    /// Records the backend, instance and image digest of a finished provision, even when the
    /// agent has registered already. Returns false when the workspace was removed meanwhile
    /// (the caller must then stop the new workload).
    pub async fn record_provisioned(&self, id: Uuid, done: Provisioned<'_>) -> Result<bool> {
        let mut conn = self.pool.get().await?;
        row::set_workload(&mut conn, id, done.backend, done.instance_id, done.image_digest).await
    }

    /// The backend recorded as running `id` (`None`: unknown workspace or never provisioned).
    pub async fn backend_of(&self, id: Uuid) -> Result<Option<String>> {
        let mut conn = self.pool.get().await?;
        let name: Option<Option<String>> = w::table.find(id).select(w::backend).first(&mut conn).await.optional()?;
        Ok(name.flatten())
    }

    /// Forgets the instance of a stopped workload.
    pub async fn clear_instance(&self, id: Uuid) -> Result<()> {
        let mut conn = self.pool.get().await?;
        row::clear_instance(&mut conn, id, None).await
    }

    /// The digest pinned for `runtime`, unless none is.
    pub async fn pinned_digest(&self, runtime: Runtime) -> Result<Option<String>> {
        let mut conn = self.pool.get().await?;
        Ok(p::table
            .find(runtime.as_str())
            .select(p::digest)
            .first(&mut conn)
            .await
            .optional()?)
    }

    /// Moves a live, unpaused workspace back to provisioning for a restart (URL cleared, event
    /// recorded). Returns false when it was removed or paused meanwhile, or is external (its
    /// agent runs elsewhere: clearing its URL would leave it online with none).
    pub async fn claim_restart(&self, id: Uuid, reset_session: bool) -> Result<bool> {
        let mut conn = self.pool.get().await?;
        conn.transaction::<_, ServiceError, _>(async move |conn| {
            let also = row::Also {
                clear_url: true,
                skip_external: true,
                ..Default::default()
            };
            let moved = row::transition(
                conn,
                id,
                &StatusChange::Provisioning,
                row::From::AnyBut(&[WorkspaceStatus::Removed, WorkspaceStatus::Paused]),
                also,
                json!({ "restart": true, "reset_session": reset_session }),
            )
            .await?;
            Ok(moved.happened())
        })
        .await
    }

    /// Persists a `LEAK_SUSPECT` event: a stop gave up and the workload may still run.
    pub async fn record_leak_suspect(&self, id: Uuid, payload: Value) -> Result<()> {
        let mut conn = self.pool.get().await?;
        events::record(&mut conn, EventType::LeakSuspect, Some(id), payload).await?;
        Ok(())
    }

    /// Whether a workload labelled with `id` belongs to a live workspace.
    pub async fn orphanhood(&self, id: Uuid) -> Result<Orphanhood> {
        let mut conn = self.pool.get().await?;
        let row: Option<(DbWorkspaceStatus, OffsetDateTime)> = w::table
            .find(id)
            .select((w::status, w::updated_at))
            .first(&mut conn)
            .await
            .optional()?;
        Ok(match row {
            None => Orphanhood::Unknown,
            Some((s, at)) if s.0 == WorkspaceStatus::Removed => Orphanhood::Removed(at),
            Some(_) => Orphanhood::Live,
        })
    }

    /// After the reconciler stopped an orphan: marks its open `LEAK_SUSPECT` events resolved,
    /// records `LEAK_RESOLVED` and forgets the instance if it is still the one recorded.
    /// Returns how many suspects it resolved.
    pub async fn resolve_leak(&self, id: Uuid, resource_id: &str, payload: Value) -> Result<usize> {
        let mut conn = self.pool.get().await?;
        let resource_id = resource_id.to_owned();
        conn.transaction::<_, ServiceError, _>(async move |conn| {
            let resolved = diesel::sql_query(
                "UPDATE events SET payload = payload || jsonb_build_object('resolved_at', now(), 'resolved_by', 'reconciler')
                  WHERE event_type = $2 AND workspace_id = $1 AND NOT payload ? 'resolved_at'",
            )
            .bind::<SqlUuid, _>(id)
            .bind::<Text, _>(EventType::LeakSuspect.as_str())
            .execute(conn)
            .await?;
            events::record(conn, EventType::LeakResolved, Some(id), payload).await?;
            row::clear_instance(conn, id, Some(&resource_id)).await?;
            Ok(resolved)
        })
        .await
    }

    /// Persists a reconciler pass that acted (`RECONCILER_REPORT`).
    pub async fn record_reconciler_report(&self, report: Value) -> Result<()> {
        let mut conn = self.pool.get().await?;
        events::record(&mut conn, EventType::ReconcilerReport, None, report).await?;
        Ok(())
    }

    /// Every workspace still provisioning, with its age.
    pub async fn provisioning_ages(&self) -> Result<Vec<Provisioning>> {
        let mut conn = self.pool.get().await?;
        Ok(diesel::sql_query(
            "SELECT id, runtime, COALESCE((SELECT s.template FROM workspace_seeds s WHERE s.workspace_id = workspaces.id), '') AS template,
                    extract(epoch FROM now() - updated_at)::bigint AS age_seconds
               FROM workspaces WHERE status = $1",
        )
        .bind::<molecule_db::sql_types::WorkspaceStatusSql, _>(DbWorkspaceStatus(WorkspaceStatus::Provisioning))
        .load(&mut conn)
        .await?)
    }
}
