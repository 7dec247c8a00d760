//! What workload hooks report back to a caller: stop failures and restart outcomes.

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// A workload that could not be stopped (the workspace is still marked removed).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StopFailure {
    pub workspace_id: Uuid,
    pub error: String,
}

/// What a restart request turned into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RestartOutcome {
    /// A restart cycle started.
    Started,
    /// One was already running; it will run once more after it (concurrent restarts coalesce).
    Coalesced,
    /// No backend is configured.
    NoProvisioner,
}
