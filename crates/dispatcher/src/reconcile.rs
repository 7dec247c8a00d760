//! The leak reconciler: once per cluster, compare what each backend runs for this platform
//! instance with the database, and stop what belongs to removed, purged or unknown
//! workspaces once a grace period has passed. Resources labelled for another platform
//! instance are never touched. LEAK_SUSPECT events it resolves are marked resolved.

use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{Text, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use molecule_db::schema::workspaces as w;
use molecule_db::sql_types::DbWorkspaceStatus;
use molecule_domain::{EventType, WorkspaceStatus};
use molecule_service::events;
use serde_json::json;
use time::OffsetDateTime;

use crate::Dispatcher;

/// `MOLECULE_RECONCILE_GRACE_SECONDS` and the interval.
#[derive(Debug, Clone, Copy)]
pub struct ReconcileConfig {
    pub grace: Duration,
    pub interval: Duration,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(300),
            interval: Duration::from_secs(60),
        }
    }
}

impl Dispatcher {
    /// One pass; returns counts (also logged and kept in the periodic stats).
    pub async fn reconcile(&self, cfg: &ReconcileConfig) -> Result<serde_json::Value, String> {
        let ours = self.config().platform_instance.clone();
        let services = self.services();
        let now = OffsetDateTime::now_utc();
        let grace = i64::try_from(cfg.grace.as_secs()).unwrap_or(i64::MAX);
        let (mut listed, mut foreign, mut within_grace, mut stopped, mut errors, mut resolved) = (0, 0, 0, 0, 0, 0);
        for backend in self.backends() {
            let resources = backend
                .list_managed()
                .await
                .map_err(|e| format!("{} list: {e}", backend.name()))?;
            for r in resources {
                listed += 1;
                if r.platform_instance.as_deref() != Some(ours.as_str()) {
                    foreign += 1;
                    continue;
                }
                let Some(id) = r.workspace_id else { continue };
                let row: Option<(DbWorkspaceStatus, OffsetDateTime)> = {
                    let mut conn = services.pool.get().await.map_err(|e| e.to_string())?;
                    w::table
                        .find(id)
                        .select((w::status, w::updated_at))
                        .first(&mut conn)
                        .await
                        .optional()
                        .map_err(|e| e.to_string())?
                };
                let (reason, since) = match row {
                    None => (
                        "workspace unknown or purged",
                        r.created_unix.and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok()),
                    ),
                    Some((s, updated)) if s.0 == WorkspaceStatus::Removed => ("workspace removed", Some(updated)),
                    Some(_) => continue,
                };
                if since.is_some_and(|t| (now - t).whole_seconds() < grace) {
                    within_grace += 1;
                    continue;
                }
                let outcome = match backend.stop(id).await {
                    Ok(()) => backend.remove_volumes(id).await,
                    Err(e) => Err(e),
                };
                match outcome {
                    Err(e) => {
                        errors += 1;
                        tracing::warn!(workspace_id = %id, backend = backend.name(), error = %e, "reconciler could not stop an orphan");
                    }
                    Ok(()) => {
                        stopped += 1;
                        tracing::warn!(workspace_id = %id, backend = backend.name(), resource = %r.resource_id, reason, "reconciler stopped an orphaned workload");
                        let mut conn = services.pool.get().await.map_err(|e| e.to_string())?;
                        resolved += diesel::sql_query(
                            "UPDATE events SET payload = payload || jsonb_build_object('resolved_at', now(), 'resolved_by', 'reconciler')
                              WHERE event_type = 'LEAK_SUSPECT' AND workspace_id = $1 AND NOT payload ? 'resolved_at'",
                        )
                        .bind::<SqlUuid, _>(id)
                        .execute(&mut conn)
                        .await
                        .map_err(|e| e.to_string())?;
                        let payload =
                            json!({ "backend": backend.name(), "resource_id": r.resource_id, "reason": reason });
                        events::record(&mut conn, EventType::LeakResolved, Some(id), payload)
                            .await
                            .map_err(|e| e.to_string())?;
                        let _ = diesel::sql_query(
                            "UPDATE workspaces SET instance_id = NULL WHERE id = $1 AND instance_id = $2",
                        )
                        .bind::<SqlUuid, _>(id)
                        .bind::<Text, _>(&r.resource_id)
                        .execute(&mut conn)
                        .await;
                    }
                }
            }
        }
        let report = json!({
            "listed": listed,
            "other_instances": foreign,
            "within_grace": within_grace,
            "orphans_stopped": stopped,
            "stop_errors": errors,
            "leak_suspects_resolved": resolved,
        });
        // Counts reach operators three ways: this event when a pass acted, the periodic task's
        // log line and `/admin/liveness`, and the `molecule_task_*` metrics.
        if stopped > 0 || errors > 0 {
            let mut conn = services.pool.get().await.map_err(|e| e.to_string())?;
            events::record(&mut conn, EventType::ReconcilerReport, None, report.clone())
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(report)
    }
}
