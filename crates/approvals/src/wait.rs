//! `wait`: how an agent waits for its request's end (the MCP tool `request_approval`).
//!
//! Listens on the tree's event bus (every replica hears every decision through NOTIFY) for
//! the request's `APPROVAL_DECIDED`, re-reading the row after each hint, at least every
//! [`RECHECK`] (a listener that lagged or lost its connection misses nothing for long), and at
//! the deadline ends the request itself as `expired`, so the answer never waits on the
//! expiry loop's period.
//!
//! Must not know: MCP, HTTP.

use std::time::Duration;

use molecule_domain::{ApprovalStatus, EventType, Vocabulary};
use molecule_tree::Result;
use time::OffsetDateTime;
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use crate::store::{Approval, Approvals};

/// The longest a waiter trusts the bus without reading the row.
pub const RECHECK: Duration = Duration::from_secs(15);

impl Approvals {
    /// Waits until request `id` of `workspace_id` is no longer pending, and answers it as it
    /// ended: approved, denied, withdrawn, or expired at its deadline.
    pub async fn wait(&self, workspace_id: Uuid, id: Uuid) -> Result<Approval> {
        // Subscribed before the first read, so a decision between the two is heard.
        let mut events = self.tree().bus().subscribe();
        let wanted = id.to_string();
        loop {
            let current = self.get(workspace_id, id).await?;
            if current.status != ApprovalStatus::Pending {
                return Ok(current);
            }
            let left = current.expires_at - OffsetDateTime::now_utc();
            let Ok(left) = Duration::try_from(left) else {
                return self.expire_if_due(workspace_id, id).await;
            };
            if left.is_zero() {
                return self.expire_if_due(workspace_id, id).await;
            }
            let nap = left.min(RECHECK);
            let _ = tokio::time::timeout(nap, async {
                loop {
                    match events.recv().await {
                        Ok(ev)
                            if ev.event == EventType::ApprovalDecided.as_str()
                                && ev.payload["approval_id"] == wanted.as_str() =>
                        {
                            return;
                        }
                        Ok(_) => {}
                        Err(RecvError::Lagged(_)) => return,
                        // No bus (shutting down): the row is read again after the nap.
                        Err(RecvError::Closed) => std::future::pending::<()>().await,
                    }
                }
            })
            .await;
        }
    }
}
