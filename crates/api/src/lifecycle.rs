//! Answers of the verbs over a subtree (pause, resume, restart, collapse), with the HTTP
//! status each outcome maps to.

use molecule_domain::WorkspaceStatus;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::hooks::RestartOutcome;

/// The step of a verb that failed for one workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Stopping the workload.
    Stop,
    /// Changing the status (it changed meanwhile, or the write failed).
    Claim,
}

/// One workspace a verb could not act on.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Failure {
    pub workspace_id: Uuid,
    pub name: String,
    pub stage: Stage,
    pub error: String,
}

/// How a verb over a workspace and its descendants ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BulkStatus {
    Paused,
    PartiallyPaused,
    PauseFailed,
    /// Resumed: every workspace is provisioning again.
    Provisioning,
    PartiallyResumed,
    ResumeFailed,
}

/// The outcome of a verb over a workspace and its descendants.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BulkOutcome {
    pub status: BulkStatus,
    pub count: usize,
    pub failed_count: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<Failure>,
}

impl BulkOutcome {
    /// 200 when everything worked, 207 when some did, 500 when nothing did.
    pub fn http_status(&self) -> u16 {
        match (self.count, self.failed_count) {
            (_, 0) => 200,
            (0, _) => 500,
            _ => 207,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Restarted {
    /// Always `provisioning`: the restart runs in the background.
    #[schema(value_type = String)]
    pub status: WorkspaceStatus,
    pub reset_session: bool,
    pub outcome: RestartOutcome,
}

/// What a collapse did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CollapseStatus {
    Collapsed,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Collapsed {
    pub status: CollapseStatus,
    pub removed: Vec<String>,
}

/// `POST /workspaces/:id/hibernate`: the workload is stopped (volumes kept) and the URL cleared;
/// the next message wakes it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Hibernated {
    /// Always `hibernated`.
    #[schema(value_type = String)]
    pub status: WorkspaceStatus,
    pub workspace_id: uuid::Uuid,
}

/// `POST /admin/workspaces/:id/bootstrap-failed` body: what the bootstrap watcher saw.
#[derive(Debug, Clone, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BootstrapFailed {
    /// Why the workload never came up (required; stored as `last_sample_error`, at most 8 KiB).
    pub error: String,
    /// The last lines of its log (at most 64 KiB kept; secrets redacted).
    #[serde(default)]
    pub log_tail: Option<String>,
}

/// What `bootstrap-failed` did: `no_change` when the workspace was no longer provisioning.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BootstrapFailedOutcome {
    pub ok: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub no_change: bool,
}
