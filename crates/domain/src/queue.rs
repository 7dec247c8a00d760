//! The A2A message queue's vocabulary: item statuses and priorities.
//!
//! Must not know: the `a2a_queue` table.

use crate::vocab::vocabulary;

vocabulary! {
    /// The life of one queued message: `queued → dispatched → completed`, back to `queued`
    /// when a delivery fails (until the attempts run out: `failed`), or `dropped` by the
    /// reaper or an operator.
    pub enum QueueStatus ("queue status") {
        Queued => "queued",
        Dispatched => "dispatched",
        Completed => "completed",
        Dropped => "dropped",
        Failed => "failed",
    }
}

impl QueueStatus {
    /// Waiting for or in delivery: what counts towards the depth and the idempotency window.
    pub const LIVE: &'static [Self] = &[Self::Queued, Self::Dispatched];
    /// Finished: kept for inspection until the reaper deletes them.
    pub const FINISHED: &'static [Self] = &[Self::Completed, Self::Dropped, Self::Failed];
}

/// The original's queue priorities (higher is drained first).
pub mod priority {
    pub const CRITICAL: i16 = 100;
    pub const TASK: i16 = 50;
    pub const INFO: i16 = 10;
}
