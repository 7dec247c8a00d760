//! Lifecycle verbs: restart, pause, resume, collapse. They change rows and events here and
//! move workloads through the hooks (the dispatcher). Each runs on a spawned task, so a client
//! hanging up does not abort it halfway.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use molecule_api::lifecycle::{BulkOutcome, BulkStatus, CollapseStatus, Collapsed, Failure, Restarted, Stage};
use molecule_db::schema::workspaces as w;
use molecule_db::sql_types::DbWorkspaceStatus;
use molecule_domain::{EventType, StatusChange, Vocabulary, WorkspaceStatus};
use serde_json::json;
use uuid::Uuid;

use crate::error::{Result, ServiceError};
use crate::{Tree, events, row, workspaces};

/// The subtree verbs that share one loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Pause,
    Resume,
}

impl Verb {
    /// Which members it acts on.
    fn applies_to(self, status: WorkspaceStatus) -> bool {
        match self {
            Self::Pause => !matches!(status, WorkspaceStatus::Removed | WorkspaceStatus::Paused),
            Self::Resume => status == WorkspaceStatus::Paused,
        }
    }

    /// The compare-and-set: statuses it must not move from, and the target (announced by
    /// its own event: `WORKSPACE_PAUSED`, `WORKSPACE_PROVISIONING`).
    fn claim(self) -> (Vec<WorkspaceStatus>, WorkspaceStatus) {
        match self {
            Self::Pause => (
                vec![WorkspaceStatus::Removed, WorkspaceStatus::Paused],
                WorkspaceStatus::Paused,
            ),
            Self::Resume => (
                WorkspaceStatus::ALL
                    .iter()
                    .copied()
                    .filter(|s| *s != WorkspaceStatus::Paused)
                    .collect(),
                WorkspaceStatus::Provisioning,
            ),
        }
    }

    fn lost_race(self) -> &'static str {
        match self {
            Self::Pause => "status changed while pausing",
            Self::Resume => "no longer paused",
        }
    }

    fn outcome(self, done: usize, failed: usize) -> BulkStatus {
        match (self, done, failed) {
            (Self::Pause, _, 0) => BulkStatus::Paused,
            (Self::Pause, 0, _) => BulkStatus::PauseFailed,
            (Self::Pause, _, _) => BulkStatus::PartiallyPaused,
            (Self::Resume, _, 0) => BulkStatus::Provisioning,
            (Self::Resume, 0, _) => BulkStatus::ResumeFailed,
            (Self::Resume, _, _) => BulkStatus::PartiallyResumed,
        }
    }
}

struct Member {
    id: Uuid,
    name: String,
    status: DbWorkspaceStatus,
}

impl Tree {
    /// `id` and its descendants with their names and statuses, parents first.
    async fn members(&self, id: Uuid) -> Result<Vec<Member>> {
        let mut conn = self.pool.get().await?;
        Ok(crate::walk::members(&mut conn, id)
            .await?
            .into_iter()
            .map(|(id, name, status)| Member {
                id,
                name,
                status: DbWorkspaceStatus(status),
            })
            .collect())
    }

    /// The first paused ancestor of `id`, if any (name and id).
    async fn paused_ancestor(&self, id: Uuid) -> Result<Option<(Uuid, String)>> {
        let mut conn = self.pool.get().await?;
        for a in workspaces::ancestors(&mut conn, id).await? {
            let row: Option<(DbWorkspaceStatus, String)> = w::table
                .find(a)
                .select((w::status, w::name))
                .first(&mut conn)
                .await
                .optional()?;
            if let Some((s, name)) = row
                && s.0 == WorkspaceStatus::Paused
            {
                return Ok(Some((a, name)));
            }
        }
        Ok(None)
    }

    /// The status of `id` when it exists and is not removed: 404 or 409 otherwise.
    pub async fn require_live(&self, id: Uuid) -> Result<WorkspaceStatus> {
        let mut conn = self.pool.get().await?;
        crate::row::require_live_status(id, crate::row::status_of(&mut conn, id, crate::row::Lock::No).await?)
    }

    /// A state of the server, not a passing fault: 409 with what to set (the original said 503).
    pub fn no_provisioner() -> ServiceError {
        ServiceError::conflict(
            "no provisioner configured: set MOLECULE_BACKEND (docker or local) on the server",
            json!({ "reason": "no_provisioner" }),
        )
    }

    /// Stops and provisions again, in the background. 409 under a paused ancestor.
    pub async fn restart_workspace(&self, id: Uuid, reset_session: bool) -> Result<Restarted> {
        self.require_live(id).await?;
        // An external agent runs elsewhere: there is nothing to restart, and a restart used to
        // clear its URL (it then came online with none). New credentials are a rotate.
        if self.get_workspace(id).await?.runtime == molecule_domain::Runtime::External {
            return Err(ServiceError::invalid(
                "id",
                format!(
                    "workspace {id} is external: the platform runs no workload to restart; to give its agent new credentials use POST /workspaces/{id}/external/rotate"
                ),
            ));
        }
        if let Some((pid, name)) = self.paused_ancestor(id).await? {
            return Err(ServiceError::conflict(
                format!("parent workspace \"{name}\" is paused — resume it first"),
                json!({ "paused_ancestor": pid }),
            ));
        }
        if !self.hooks.has_provisioner() {
            return Err(Self::no_provisioner());
        }
        let outcome = self.hooks.restart(id, reset_session).await;
        Ok(Restarted {
            status: WorkspaceStatus::Provisioning,
            reset_session,
            outcome,
        })
    }

    /// The bootstrap watcher saw the workload die before it registered: a workspace still
    /// `provisioning` becomes `failed` with `error` (redacted, at most 8 KiB) and
    /// `WORKSPACE_PROVISION_FAILED {error, log_tail, source: "bootstrap_watcher"}`. Any other
    /// status is left alone (`no_change`).
    pub async fn bootstrap_failed(
        &self,
        id: Uuid,
        body: molecule_api::lifecycle::BootstrapFailed,
    ) -> Result<molecule_api::lifecycle::BootstrapFailedOutcome> {
        const MAX_TAIL: usize = 64 * 1024;
        let error = molecule_secrets::redact::redact(&body.error).text;
        let Some(reason) = molecule_domain::FailureReason::new(error.clone()) else {
            return Err(ServiceError::invalid("error", "must say why the bootstrap failed"));
        };
        let tail = body.log_tail.map(|t| {
            // The end of a log is what explains it: keep the last 64 KiB.
            let mut start = t.len().saturating_sub(MAX_TAIL);
            while !t.is_char_boundary(start) {
                start += 1;
            }
            molecule_secrets::redact::redact(&t[start..]).text
        });
        self.require_live(id).await?;
        // Through the dispatcher, which owns provisioning failures (and serialises this with a
        // provision of the same workspace).
        let changed = self
            .hooks
            .bootstrap_failed(
                id,
                reason,
                json!({ "error": error, "log_tail": tail, "source": "bootstrap_watcher" }),
            )
            .await
            .map_err(|e| ServiceError::internal("recording a bootstrap failure", e))?;
        Ok(molecule_api::lifecycle::BootstrapFailedOutcome {
            ok: true,
            no_change: !changed,
        })
    }

    /// Stops the workspace and its live descendants and marks them paused.
    pub async fn pause_workspace(&self, id: Uuid) -> Result<BulkOutcome> {
        let status = self
            .require_live(id)
            .await
            .map_err(|_| ServiceError::NotFound(format!("workspace {id} not found or already paused")))?;
        if status == WorkspaceStatus::Paused {
            return Err(ServiceError::NotFound(format!(
                "workspace {id} not found or already paused"
            )));
        }
        self.run_bulk(id, Verb::Pause).await
    }

    /// Moves the paused workspace and its paused descendants back to provisioning and starts them.
    pub async fn resume_workspace(&self, id: Uuid) -> Result<BulkOutcome> {
        let status = self.require_live(id).await?;
        if status != WorkspaceStatus::Paused {
            return Err(ServiceError::NotFound(format!("workspace {id} is not paused")));
        }
        if !self.hooks.has_provisioner() {
            return Err(Self::no_provisioner());
        }
        if let Some((pid, name)) = self.paused_ancestor(id).await? {
            return Err(ServiceError::conflict(
                format!("parent workspace \"{name}\" is paused — resume it first"),
                json!({ "paused_ancestor": pid }),
            ));
        }
        self.run_bulk(id, Verb::Resume).await
    }

    /// Pause or resume `id`'s subtree (parents first) on a spawned task: pausing stops each
    /// workload, then claims the new status; resuming claims, then provisions.
    async fn run_bulk(&self, id: Uuid, verb: Verb) -> Result<BulkOutcome> {
        let targets: Vec<Member> = self
            .members(id)
            .await?
            .into_iter()
            .filter(|m| verb.applies_to(m.status.0))
            .collect();
        let this = self.clone();
        let (not_from, to) = verb.claim();
        tokio::spawn(async move {
            let mut failures = Vec::new();
            let mut done = 0;
            for m in targets {
                let fail = |stage, error| Failure {
                    workspace_id: m.id,
                    name: m.name.clone(),
                    stage,
                    error,
                };
                if verb == Verb::Pause
                    && let Err(e) = this.hooks.stop_one(m.id).await
                {
                    failures.push(fail(Stage::Stop, e.to_string()));
                    continue;
                }
                match this.claim(m.id, &not_from, to, &m.name).await {
                    Ok(true) => {
                        if verb == Verb::Resume {
                            this.hooks.provision(m.id).await;
                        }
                        done += 1;
                    }
                    Ok(false) => failures.push(fail(Stage::Claim, verb.lost_race().into())),
                    Err(e) => failures.push(fail(Stage::Claim, e.to_string())),
                }
            }
            BulkOutcome {
                status: verb.outcome(done, failures.len()),
                count: done,
                failed_count: failures.len(),
                failures,
            }
        })
        .await
        .map_err(|e| ServiceError::internal("changing the subtree", e))
    }

    /// Compare-and-set to `to` unless the status is one of `not_from` (URL cleared); the
    /// status's event says so.
    async fn claim(&self, id: Uuid, not_from: &[WorkspaceStatus], to: WorkspaceStatus, name: &str) -> Result<bool> {
        let Some(change) = StatusChange::to(to) else {
            return Err(ServiceError::internal(
                "claiming a lifecycle status",
                std::io::Error::other("failed needs a reason"),
            ));
        };
        let mut conn = self.pool.get().await?;
        let not_from = not_from.to_vec();
        let name = name.to_owned();
        conn.transaction::<_, ServiceError, _>(async move |conn| {
            let also = row::Also {
                clear_url: true,
                ..Default::default()
            };
            Ok(row::transition(
                conn,
                id,
                &change,
                row::From::AnyBut(&not_from),
                also,
                json!({ "name": name }),
            )
            .await?
            .happened())
        })
        .await
    }

    /// Removes the direct children (and their subtrees), stopping their workloads.
    pub async fn collapse_workspace(&self, id: Uuid) -> Result<Collapsed> {
        self.require_live(id).await?;
        let children: Vec<(Uuid, String)> = {
            let mut conn = self.pool.get().await?;
            w::table
                .filter(w::parent_id.eq(id))
                .filter(w::status.ne(DbWorkspaceStatus(WorkspaceStatus::Removed)))
                .select((w::id, w::name))
                .load(&mut conn)
                .await?
        };
        let this = self.clone();
        tokio::spawn(async move {
            let mut removed = Vec::new();
            for (child, name) in children {
                this.delete_workspace(
                    child,
                    workspaces::Children::Cascade,
                    molecule_api::workspaces::Removal::Removed,
                )
                .await?;
                removed.push(name);
            }
            let mut conn = this.pool.get().await?;
            events::record(
                &mut conn,
                EventType::WorkspaceCollapsed,
                Some(id),
                json!({ "removed_children": removed }),
            )
            .await?;
            Ok(Collapsed {
                status: CollapseStatus::Collapsed,
                removed,
            })
        })
        .await
        .map_err(|e| ServiceError::internal("collapsing the subtree", e))?
    }
}
