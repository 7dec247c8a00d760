//! Discovery bodies: card updates, the peers list, discovering one peer's URL, and the access
//! check.

use molecule_domain::WorkspaceStatus;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

/// `POST /registry/update-card` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCard {
    pub workspace_id: Uuid,
    /// The new agent card (a JSON object).
    #[schema(value_type = Object)]
    pub agent_card: Value,
}

/// What `update-card` answers (`status` is always `updated`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CardUpdated {
    pub status: CardStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CardStatus {
    Updated,
}

/// `GET /registry/discover/:id`: where the caller reaches the target.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Discovered {
    pub id: Uuid,
    pub url: String,
    pub name: String,
}

/// One entry of `GET /registry/:id/peers`: the parent, the siblings and the children.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Peer {
    pub id: Uuid,
    pub name: String,
    pub role: Option<String>,
    pub tier: i32,
    #[schema(value_type = String)]
    pub status: WorkspaceStatus,
    pub url: Option<String>,
    pub parent_id: Option<Uuid>,
    pub active_tasks: i32,
    #[schema(value_type = Option<Object>)]
    pub agent_card: Option<Value>,
    /// How this peer relates to the asking workspace.
    pub relation: Relation,
}

/// A peer's place relative to the asking workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    Parent,
    Sibling,
    Child,
}

/// `POST /registry/check-access` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckAccess {
    pub caller_id: Uuid,
    pub target_id: Uuid,
}

/// Whether the caller may communicate with the target.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Access {
    pub allowed: bool,
}
