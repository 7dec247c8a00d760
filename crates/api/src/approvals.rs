//! Approval bodies (`/workspaces/:id/approvals*`, `/approvals/pending`): the original's shapes
//! (A §2.2), plus `context` and `expires_at` in every answer and the later `withdraw`.

use molecule_domain::ApprovalStatus;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// `POST /workspaces/:id/approvals` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApproval {
    /// What the agent wants to do (required, at most 200 characters).
    #[serde(default)]
    pub action: String,
    /// The agent's task this belongs to (default empty).
    #[serde(default)]
    pub task_id: Option<String>,
    /// Why (default empty, at most 4000 characters).
    #[serde(default)]
    pub reason: Option<String>,
    /// Anything the decider should see, as a JSON object (default `{}`); stored and returned.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub context: Option<Value>,
    /// How long the request may wait for a decision, 1 up to `APPROVAL_TIMEOUT_MINUTES`
    /// (the default and the most).
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
}

/// `201` of a request.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApprovalCreated {
    pub approval_id: Uuid,
    /// Always `pending`.
    #[schema(value_type = String)]
    pub status: ApprovalStatus,
    /// When it expires undecided.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// A workspace's request, as its list shows it (newest first).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Approval {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub task_id: String,
    pub action: String,
    pub reason: String,
    #[schema(value_type = Object)]
    pub context: Map<String, Value>,
    /// `pending`, `approved`, `denied`, `expired` or `withdrawn`.
    #[schema(value_type = String)]
    pub status: ApprovalStatus,
    /// `human` (or the operator's name), the deciding ancestor's workspace id, `auto-expired`,
    /// or the requester's id for a withdrawal; null while pending.
    pub decided_by: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub decided_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A pending request across every workspace (`GET /approvals/pending`, the canvas's banner).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PendingApproval {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub workspace_name: String,
    pub task_id: String,
    pub action: String,
    pub reason: String,
    #[schema(value_type = Object)]
    pub context: Map<String, Value>,
    /// Always `pending`.
    #[schema(value_type = String)]
    pub status: ApprovalStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// `POST …/approvals/:approvalId/decide` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decide {
    /// `approved` or `denied`.
    #[serde(default)]
    pub decision: String,
    /// Who decided, for the record: the operator's name (default `human`). An ancestor
    /// workspace decides as itself; if it sends this, it must be its own id.
    #[serde(default)]
    pub decided_by: Option<String>,
}

/// `200` of a decision or a withdrawal: `{status, approval_id}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApprovalOutcome {
    /// `approved`, `denied` or `withdrawn`.
    #[schema(value_type = String)]
    pub status: ApprovalStatus,
    pub approval_id: Uuid,
    pub decided_by: String,
}
