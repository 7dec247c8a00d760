//! Wire types of the HTTP memory endpoints (`/workspaces/:id/memories`): the original's legacy
//! scopes (LOCAL, TEAM, GLOBAL) over the Memory Plugin v1 namespaces.
//!
//! Must not know: the plugin, the resolver or HTTP.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// `POST /workspaces/:id/memories` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMemory {
    /// What to remember; secrets are redacted before it is stored.
    pub content: String,
    /// LOCAL (this workspace), TEAM (its team) or GLOBAL (the org; root workspaces only).
    pub scope: String,
    /// A label of at most 50 characters (default `general`), kept with the memory and returned
    /// with it.
    #[serde(default)]
    pub namespace: Option<String>,
}

/// A stored memory: its id, scope and label, and the plugin namespace that holds it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StoredMemory {
    pub id: Uuid,
    pub scope: String,
    pub namespace: String,
    pub memory_namespace: String,
}

/// One memory as `GET /workspaces/:id/memories` lists it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MemoryItem {
    pub id: Uuid,
    pub content: String,
    pub scope: String,
    /// The label given when it was stored (`general` when none was).
    pub namespace: String,
    pub memory_namespace: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: time::OffsetDateTime,
}

/// `DELETE /workspaces/:id/memories/:memory_id` answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MemoryDeleted {
    pub status: String,
}
