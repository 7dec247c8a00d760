//! Config blob and agent assignment bodies (`/workspaces/:id/config`,
//! `/workspaces/:id/agent*`): the original's shapes (A §4).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// `GET /workspaces/:id/config`: the blob (`{}` when nothing was written).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConfigData {
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
}

/// `200` of a config merge.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConfigUpdated {
    /// Always `updated`.
    pub status: &'static str,
}

/// `POST`/`PATCH /workspaces/:id/agent` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentModel {
    /// The model to assign (at most 200 characters).
    #[serde(default)]
    pub model: String,
}

/// The workspace's active agent (`GET /workspaces/:id/agent`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActiveAgent {
    pub agent_id: Uuid,
    pub model: String,
    #[serde(with = "time::serde::rfc3339")]
    pub assigned_at: OffsetDateTime,
}

/// `201` of an assign.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AgentAssigned {
    pub agent_id: Uuid,
    pub model: String,
}

/// `200` of a replace.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AgentReplaced {
    pub agent_id: Uuid,
    pub model: String,
    pub old_model: String,
}

/// `200` of a removal.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AgentRemoved {
    /// Always `removed`.
    pub status: &'static str,
    pub agent_id: Uuid,
}

/// `POST /workspaces/:id/agent/move` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveAgent {
    /// A live workspace without an active agent, that this one may reach.
    #[serde(default)]
    pub target_workspace_id: String,
}

/// `200` of a move.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AgentMoved {
    pub agent_id: Uuid,
    pub model: String,
    pub from_workspace: Uuid,
    pub to_workspace: Uuid,
}
