//! The leak reconciler: once per cluster, compare what each backend runs for this platform
//! instance with the database, and stop what belongs to removed, purged or unknown
//! workspaces once a grace period has passed. Resources labelled for another platform
//! instance are never touched. LEAK_SUSPECT events it resolves are marked resolved.

use std::time::Duration;

use molecule_provisioner::BackendError;
use molecule_service::ServiceError;
use molecule_tree::workloads::Orphanhood;
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

/// Why a reconciler pass stopped early.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("{backend} could not list its workloads")]
    List {
        backend: &'static str,
        #[source]
        source: BackendError,
    },
    #[error("reconciler bookkeeping failed")]
    Database(#[from] ServiceError),
}

impl Dispatcher {
    /// One pass; returns counts (also logged and kept in the periodic stats).
    pub async fn reconcile(&self, cfg: &ReconcileConfig) -> Result<serde_json::Value, ReconcileError> {
        let ours = self.config().platform_instance.clone();
        let services = self.services();
        let now = OffsetDateTime::now_utc();
        let grace = i64::try_from(cfg.grace.as_secs()).unwrap_or(i64::MAX);
        let (mut listed, mut foreign, mut within_grace, mut stopped, mut errors, mut resolved) = (0, 0, 0, 0, 0, 0);
        for backend in self.backends() {
            let resources = backend.list_managed().await.map_err(|source| ReconcileError::List {
                backend: backend.name(),
                source,
            })?;
            for r in resources {
                listed += 1;
                if r.platform_instance.as_deref() != Some(ours.as_str()) {
                    foreign += 1;
                    continue;
                }
                let Some(id) = r.workspace_id else { continue };
                let (reason, since) = match services.tree().orphanhood(id).await? {
                    Orphanhood::Unknown => (
                        "workspace unknown or purged",
                        r.created_unix.and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok()),
                    ),
                    Orphanhood::Removed(at) => ("workspace removed", Some(at)),
                    Orphanhood::Live => continue,
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
                        let payload =
                            json!({ "backend": backend.name(), "resource_id": r.resource_id, "reason": reason });
                        resolved += services.tree().resolve_leak(id, &r.resource_id, payload).await?;
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
            services.tree().record_reconciler_report(report.clone()).await?;
        }
        Ok(report)
    }
}
