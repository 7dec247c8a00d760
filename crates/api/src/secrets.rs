//! Secret bodies: a secret as listed (never its value), the set request, and what a change
//! answers. Values are [`SecretString`]s: `Debug` prints nothing, and nothing serializes them
//! except the agent's own `GET /workspaces/:id/secrets/values`.

use molecule_domain::SecretScope;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// A secret as listed: its key and where it comes from, never its value.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SecretEntry {
    pub key: String,
    /// Always true: a key exists only with a value (kept for the original's shape).
    pub has_value: bool,
    #[schema(value_type = String)]
    pub scope: SecretScope,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// `POST`/`PUT` body of `/workspaces/:id/secrets` and `/settings/secrets`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetSecret {
    /// `[A-Za-z_][A-Za-z0-9_]*`, at most 256 characters (it becomes an environment variable).
    pub key: String,
    /// At most 64 KiB. Never shown again: lists carry `has_value` only.
    #[schema(value_type = String)]
    pub value: SecretString,
}

/// What a change did: the original's `{status, key}`, plus the workspaces it restarts so the
/// workload picks the change up.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SecretChanged {
    /// `saved` or `deleted`.
    pub status: &'static str,
    pub key: String,
    /// Workspaces restarted through the dispatcher (those running a workload; a paused or
    /// hibernated one picks the change up when it next starts).
    pub restarted: Vec<Uuid>,
}

/// `GET /workspaces/:id/model`: what the runtime gets as `MODEL` / `MODEL_PROVIDER` and
/// `LLM_PROVIDER`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WorkspaceModel {
    pub model: Option<String>,
    /// Given with the model, or derived from its prefix (null: the runtime auto-detects).
    pub llm_provider: Option<String>,
}

/// `PUT /workspaces/:id/model` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetModel {
    /// The slug (`minimax/MiniMax-M2.7`, `anthropic:claude-opus-4-7`, `sonnet`); null clears it.
    pub model: Option<String>,
    /// Overrides the provider derived from the slug's prefix.
    #[serde(default)]
    pub llm_provider: Option<String>,
}

/// What `PUT /workspaces/:id/model` did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModelChanged {
    /// `saved`.
    pub status: &'static str,
    pub model: Option<String>,
    pub llm_provider: Option<String>,
    /// Restarted so the workload picks the model up (if its workload runs).
    pub restarted: Vec<Uuid>,
}
