//! The liveness sweep: workspaces whose heartbeat is older than the TTL go offline, with an
//! event. Run through `molecule-periodic`, so one replica acts per tick.

use diesel::sql_types::{BigInt, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, RunQueryDsl};
use molecule_domain::{EventType, Vocabulary, WorkspaceStatus};
use serde_json::json;
use uuid::Uuid;

use crate::error::ServiceError;
use crate::{Services, events};

/// Statuses the sweep may move to offline.
pub const SWEPT: &[WorkspaceStatus] = &[WorkspaceStatus::Online, WorkspaceStatus::Degraded];
/// Most workspaces marked offline per statement.
const BATCH: i64 = 500;

impl Services {
    /// One sweep; returns `{"marked_offline": n}`.
    pub async fn liveness_sweep(&self) -> Result<serde_json::Value, ServiceError> {
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = SqlUuid)]
            id: Uuid,
        }
        let ttl = i64::try_from(self.config.liveness_ttl.as_secs()).unwrap_or(i64::MAX);
        let sql = format!(
            "UPDATE workspaces SET status = {}, updated_at = now()
              WHERE id IN (SELECT id FROM workspaces
                            WHERE status IN ({})
                              AND COALESCE(last_heartbeat_at, updated_at) < now() - make_interval(secs => $1)
                            ORDER BY id LIMIT $2 FOR NO KEY UPDATE SKIP LOCKED)
              RETURNING id",
            WorkspaceStatus::sql_list(&[WorkspaceStatus::Offline]),
            WorkspaceStatus::sql_list(SWEPT)
        );
        let mut conn = self.pool.get().await?;
        let marked = conn
            .transaction::<_, ServiceError, _>(async move |conn| {
                let rows: Vec<Row> = diesel::sql_query(&sql)
                    .bind::<BigInt, _>(ttl)
                    .bind::<BigInt, _>(BATCH)
                    .load(conn)
                    .await?;
                for r in &rows {
                    events::record(
                        conn,
                        EventType::WorkspaceOffline,
                        Some(r.id),
                        json!({ "reason": format!("no heartbeat for {ttl}s (LIVENESS_TTL_SECONDS)") }),
                    )
                    .await?;
                }
                Ok(rows.len())
            })
            .await?;
        Ok(json!({ "marked_offline": marked }))
    }
}
