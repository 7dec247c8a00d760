//! The liveness sweeps, run through `molecule-periodic` (one replica acts per tick):
//! workspaces whose heartbeat is older than the TTL go offline, with an event; and the
//! phantom-busy sweep (the original scheduler's): a workspace that reports work in progress
//! but has logged no activity for [`PHANTOM_IDLE`] has its reported work cleared, so a
//! scheduler or a queue that waits on a free slot is not held up by a count nobody clears.

use diesel_async::AsyncConnection;
use molecule_domain::EventType;
use serde_json::json;

use crate::error::ServiceError;
use crate::{Tree, events, row};

/// Statuses the sweep may move to offline.
pub use crate::row::SWEPT;
/// Most workspaces marked offline per statement.
const BATCH: i64 = 500;

/// How long a workspace may report work without logging any activity before the
/// phantom-busy sweep clears its count (the original's 10 minutes).
pub const PHANTOM_IDLE: std::time::Duration = std::time::Duration::from_secs(10 * 60);

impl Tree {
    /// The phantom-busy sweep; returns the workspaces whose reported work it cleared. Logged,
    /// no event (as the original); unlike the original it leaves `updated_at` alone, which
    /// the provisioning-timeout clock reads.
    pub async fn sweep_phantom_busy(&self) -> Result<Vec<uuid::Uuid>, ServiceError> {
        let mut conn = self.pool.get().await?;
        let busy = row::busy(&mut conn).await?;
        if busy.is_empty() {
            return Ok(Vec::new());
        }
        let since = time::OffsetDateTime::now_utc() - PHANTOM_IDLE;
        let active = crate::activity::active_since(&mut conn, &busy, since).await?;
        let idle: Vec<uuid::Uuid> = busy.into_iter().filter(|id| !active.contains(id)).collect();
        if idle.is_empty() {
            return Ok(idle);
        }
        let cleared = row::clear_busy(&mut conn, &idle).await?;
        for id in &cleared {
            tracing::info!(workspace_id = %id, idle_minutes = PHANTOM_IDLE.as_secs() / 60, "phantom-busy: reported work cleared");
        }
        Ok(cleared)
    }

    /// One sweep; returns `{"marked_offline": n}`.
    pub async fn liveness_sweep(&self) -> Result<serde_json::Value, ServiceError> {
        let ttl = i64::try_from(self.config.liveness_ttl.as_secs()).unwrap_or(i64::MAX);
        let mut conn = self.pool.get().await?;
        let marked = conn
            .transaction::<_, ServiceError, _>(async move |conn| {
                let ids = row::mark_silent_offline(conn, ttl, BATCH).await?;
                for id in &ids {
                    events::record(
                        conn,
                        EventType::WorkspaceOffline,
                        Some(*id),
                        json!({ "reason": format!("no heartbeat for {ttl}s (LIVENESS_TTL_SECONDS)") }),
                    )
                    .await?;
                }
                Ok(ids.len())
            })
            .await?;
        Ok(json!({ "marked_offline": marked }))
    }
}
