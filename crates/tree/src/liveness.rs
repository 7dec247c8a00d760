//! The liveness sweep: workspaces whose heartbeat is older than the TTL go offline, with an
//! event. Run through `molecule-periodic`, so one replica acts per tick.

use diesel_async::AsyncConnection;
use molecule_domain::EventType;
use serde_json::json;

use crate::error::ServiceError;
use crate::{Tree, events, row};

/// Statuses the sweep may move to offline.
pub use crate::row::SWEPT;
/// Most workspaces marked offline per statement.
const BATCH: i64 = 500;

impl Tree {
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
