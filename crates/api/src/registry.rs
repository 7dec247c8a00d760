//! Registration and heartbeat bodies: what an agent sends and what it is told.

use molecule_domain::{DeliveryMode, WorkspaceStatus};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

/// `POST /registry/register` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct Register {
    pub id: Uuid,
    /// Where the platform reaches the agent (required for push delivery; may come from
    /// `agent_card.url`).
    pub url: Option<String>,
    #[schema(value_type = Object)]
    pub agent_card: Value,
    /// push (default) or poll.
    pub delivery_mode: Option<String>,
}

/// The fixed acknowledgement words of the registry answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Ack {
    /// `POST /registry/register`.
    Registered,
    /// `POST /registry/heartbeat`.
    Ok,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Registered {
    pub status: Ack,
    #[schema(value_type = String)]
    pub delivery_mode: DeliveryMode,
    #[schema(value_type = String)]
    pub workspace_status: WorkspaceStatus,
    /// What the platform presents as `Authorization: Bearer …` on every call to this agent;
    /// the agent refuses calls without it.
    pub platform_inbound_secret: String,
}

/// `runtime_metadata.capabilities` of a heartbeat.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct Capabilities {
    #[serde(default)]
    pub status_mgmt: bool,
    /// The runtime runs its own scheduler: the platform moves this workspace's schedules'
    /// slots on without firing them.
    #[serde(default)]
    pub scheduler: bool,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct RuntimeMetadata {
    #[serde(default)]
    pub capabilities: Capabilities,
    pub idle_timeout_seconds: Option<i64>,
}

/// `POST /registry/heartbeat` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct Heartbeat {
    pub workspace_id: Uuid,
    #[serde(default)]
    pub error_rate: f64,
    pub sample_error: Option<String>,
    #[serde(default)]
    pub active_tasks: i32,
    #[serde(default)]
    pub uptime_seconds: i64,
    pub current_task: Option<String>,
    /// Cents; 0 means "no update".
    #[serde(default)]
    pub monthly_spend: i64,
    /// "" or "wedged".
    pub runtime_state: Option<String>,
    pub runtime_metadata: Option<RuntimeMetadata>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HeartbeatAck {
    pub status: Ack,
    #[schema(value_type = String)]
    pub workspace_status: WorkspaceStatus,
    /// As in the register answer (so an agent that missed it learns it).
    pub platform_inbound_secret: String,
}
