//! Hibernation: an idle workspace's workload is stopped (its volumes kept, its URL cleared) and
//! the next message wakes it.
//!
//! Owns: the hibernate verb, the wake claim, and the idle monitor's pick. Must not know: HTTP,
//! backends (stopping and provisioning go through `WorkloadHooks`).

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use molecule_api::lifecycle::Hibernated;
use molecule_db::schema::workspaces as w;
use molecule_db::sql_types::DbWorkspaceStatus;
use molecule_domain::{Runtime, StatusChange, Vocabulary, WorkspaceStatus};
use molecule_tree::row;
use serde_json::json;
use uuid::Uuid;

use molecule_tree::error::{Result, ServiceError};

/// Most workspaces one idle pass hibernates.
const IDLE_BATCH: i64 = 50;

/// Statuses a workspace may hibernate from.
const HIBERNATABLE: [WorkspaceStatus; 2] = [WorkspaceStatus::Online, WorkspaceStatus::Degraded];

impl crate::Messaging {
    /// `POST /workspaces/:id/hibernate`: only an online or degraded workspace with no active
    /// task, run by a provisioner (an external agent is nobody's to stop). Stops the workload
    /// (volumes kept), then marks it `hibernated` with no URL (`WORKSPACE_HIBERNATED`).
    pub async fn hibernate_workspace(&self, id: Uuid, reason: &str) -> Result<Hibernated> {
        let row: Option<(DbWorkspaceStatus, i32, String)> = {
            let mut conn = self.pool.get().await?;
            w::table
                .find(id)
                .select((w::status, w::active_tasks, w::runtime))
                .first(&mut conn)
                .await
                .optional()?
        };
        let (status, active, runtime) = match row {
            Some((s, a, r)) if s.0 != WorkspaceStatus::Removed => (s.0, a, r),
            _ => return Err(ServiceError::NotFound(format!("workspace {id} not found"))),
        };
        if runtime == Runtime::External.as_str() {
            return Err(ServiceError::conflict(
                "an external workspace runs off-platform and cannot hibernate",
                json!({ "reason": "external" }),
            ));
        }
        if !HIBERNATABLE.contains(&status) {
            return Err(ServiceError::conflict(
                format!("workspace is {status}; only an online or degraded workspace can hibernate"),
                json!({ "status": status.as_str() }),
            ));
        }
        if active > 0 {
            return Err(ServiceError::conflict(
                format!("workspace has {active} active task(s); hibernate it once it is idle"),
                json!({ "active_tasks": active }),
            ));
        }
        if !self.hooks.has_provisioner() {
            return Err(molecule_tree::Tree::no_provisioner());
        }
        // Detached: a client hanging up must not leave a stopped workload marked online.
        let this = self.clone();
        let reason = reason.to_owned();
        tokio::spawn(async move {
            this.hooks.stop_one(id).await.map_err(|e| {
                ServiceError::conflict(
                    format!("stopping the workload failed: {e}"),
                    json!({ "stage": "stop", "error": e.to_string() }),
                )
            })?;
            let mut conn = this.pool.get().await?;
            conn.transaction::<_, ServiceError, _>(async move |conn| {
                let also = row::Also {
                    clear_url: true,
                    ..Default::default()
                };
                let moved = row::transition(
                    conn,
                    id,
                    &StatusChange::Hibernated,
                    row::From::OneOf(&HIBERNATABLE),
                    also,
                    json!({ "reason": reason }),
                )
                .await?;
                if !moved.happened() {
                    return Err(ServiceError::conflict(
                        "the workspace's status changed while it was being stopped; it was not hibernated",
                        json!({ "stage": "claim" }),
                    ));
                }
                Ok(())
            })
            .await?;
            Ok(Hibernated {
                status: WorkspaceStatus::Hibernated,
                workspace_id: id,
            })
        })
        .await
        .map_err(|e| ServiceError::internal("hibernating a workspace", e))?
    }

    /// Wakes a hibernated workspace: moves it to `provisioning` (`WORKSPACE_PROVISIONING`) and
    /// provisions it through the hooks. False when it was not hibernated any more (another
    /// message already woke it).
    pub async fn wake(&self, id: Uuid) -> Result<bool> {
        if !self.hooks.has_provisioner() {
            return Err(molecule_tree::Tree::no_provisioner());
        }
        let mut conn = self.pool.get().await?;
        let claimed = conn
            .transaction::<_, ServiceError, _>(async move |conn| {
                // The waking message counts as traffic: the idle monitor waits its full period
                // again before it may hibernate the workspace once more.
                let also = row::Also {
                    touch_inbound: true,
                    ..Default::default()
                };
                let moved = row::transition(
                    conn,
                    id,
                    &StatusChange::Provisioning,
                    row::From::OneOf(&[WorkspaceStatus::Hibernated]),
                    also,
                    json!({ "reason": "woken by a message" }),
                )
                .await?;
                Ok(moved.happened())
            })
            .await?;
        drop(conn);
        if claimed {
            self.hooks.provision(id).await;
        }
        Ok(claimed)
    }

    /// The idle monitor (once per cluster): hibernates workspaces with `hibernation_idle_minutes`
    /// set that have had no message in or out for that long, report no active task and have
    /// nothing waiting in their queue. Idleness is message and task idleness, not heartbeat age
    /// (the original keyed on heartbeats, which a live agent keeps fresh, so it never fired).
    pub async fn hibernate_idle(&self) -> Result<serde_json::Value> {
        if !self.hooks.has_provisioner() {
            return Ok(json!({ "hibernated": 0, "skipped": "no provisioner" }));
        }
        let idle = {
            let mut conn = self.pool.get().await?;
            let busy = molecule_a2a::queue::busy_workspaces(&mut conn).await?;
            molecule_tree::workspaces::idle_candidates(&mut conn, &HIBERNATABLE, &busy, IDLE_BATCH).await?
        };
        let (mut done, mut failed) = (0, Vec::new());
        for (id, minutes) in idle {
            let reason = format!("idle for {minutes} minutes (hibernation_idle_minutes)");
            match self.hibernate_workspace(id, &reason).await {
                Ok(_) => done += 1,
                Err(e) => failed.push(json!({ "workspace_id": id, "error": e.to_string() })),
            }
        }
        Ok(json!({ "hibernated": done, "failed": failed }))
    }
}
