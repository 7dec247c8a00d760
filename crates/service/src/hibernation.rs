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
use molecule_domain::{EventType, Runtime, Vocabulary, WorkspaceStatus};
use serde_json::json;
use uuid::Uuid;

use crate::error::{Result, ServiceError};
use crate::{Services, events};

/// Statuses a workspace may hibernate from.
const HIBERNATABLE: [WorkspaceStatus; 2] = [WorkspaceStatus::Online, WorkspaceStatus::Degraded];

impl Services {
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
            return Err(Self::no_provisioner());
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
                let n = diesel::update(
                    w::table
                        .find(id)
                        .filter(w::status.eq_any(HIBERNATABLE.map(DbWorkspaceStatus))),
                )
                .set((
                    w::status.eq(DbWorkspaceStatus(WorkspaceStatus::Hibernated)),
                    w::url.eq(None::<String>),
                    w::updated_at.eq(diesel::dsl::now),
                ))
                .execute(conn)
                .await?;
                if n == 0 {
                    return Err(ServiceError::conflict(
                        "the workspace's status changed while it was being stopped; it was not hibernated",
                        json!({ "stage": "claim" }),
                    ));
                }
                events::record(conn, EventType::WorkspaceHibernated, Some(id), json!({ "reason": reason })).await?;
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
    pub(crate) async fn wake(&self, id: Uuid) -> Result<bool> {
        if !self.hooks.has_provisioner() {
            return Err(Self::no_provisioner());
        }
        let mut conn = self.pool.get().await?;
        let claimed = conn
            .transaction::<_, ServiceError, _>(async move |conn| {
                let n = diesel::update(
                    w::table
                        .find(id)
                        .filter(w::status.eq(DbWorkspaceStatus(WorkspaceStatus::Hibernated))),
                )
                .set((
                    w::status.eq(DbWorkspaceStatus(WorkspaceStatus::Provisioning)),
                    w::updated_at.eq(diesel::dsl::now),
                ))
                .execute(conn)
                .await?;
                if n == 1 {
                    events::record(
                        conn,
                        EventType::WorkspaceProvisioning,
                        Some(id),
                        json!({ "reason": "woken by a message" }),
                    )
                    .await?;
                }
                Ok(n == 1)
            })
            .await?;
        drop(conn);
        if claimed {
            self.hooks.provision(id).await;
        }
        Ok(claimed)
    }
}
