//! Workspace bodies: the row as the API shows it, create and patch requests, and what
//! create, patch, delete and the state probe answer.

use molecule_domain::{Runtime, WorkspaceStatus};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// A workspace as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Workspace {
    pub id: Uuid,
    pub name: String,
    pub role: Option<String>,
    pub tier: i32,
    #[schema(value_type = String)]
    pub status: WorkspaceStatus,
    #[schema(value_type = String)]
    pub runtime: Runtime,
    pub model: Option<String>,
    pub url: Option<String>,
    pub delivery_mode: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub agent_card: Option<Value>,
    pub parent_id: Option<Uuid>,
    pub instance_id: Option<String>,
    pub last_sample_error: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_heartbeat_at: Option<OffsetDateTime>,
    pub active_tasks: i32,
    pub max_concurrent_tasks: i32,
    pub current_task: Option<String>,
    pub last_error_rate: f64,
    pub uptime_seconds: i64,
    pub collapsed: bool,
    /// Its position on the original canvas (0 until set by `PATCH` or create's `canvas`).
    pub x: f64,
    pub y: f64,
    pub runtime_image_digest: Option<String>,
    /// The idle monitor hibernates the workspace after this many minutes without a message in
    /// or out and without an active task; null: never.
    pub hibernation_idle_minutes: Option<i32>,
    /// The last message delivered to it through the proxy.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_inbound_at: Option<OffsetDateTime>,
    /// The last message it sent through the proxy.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_outbound_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// `POST /workspaces` body (the original's field names). A field this platform does not
/// implement (`budget_limit`, `plugins`, `compute`, `workspace_dir`, …) is refused
/// with a 400 naming it, never accepted and dropped.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWorkspace {
    pub name: String,
    /// A template under `CONFIGS_DIR` (see `GET /templates`): its `runtime`, `tier` and model
    /// are the defaults, its `required_env` must be met by `secrets` or global secrets (else
    /// 422 `MISSING_REQUIRED_ENV`), and its files seed the workload's `/configs`.
    pub template: Option<String>,
    pub role: Option<String>,
    /// 1..=4; absent or 0 means 3.
    pub tier: Option<i32>,
    /// claude-code, hermes, openclaw, codex or external; empty or unknown means claude-code.
    pub runtime: Option<String>,
    pub model: Option<String>,
    /// An off-host agent: nothing is provisioned for it.
    pub external: Option<bool>,
    pub url: Option<String>,
    /// push or poll.
    pub delivery_mode: Option<String>,
    pub parent_id: Option<Uuid>,
    pub max_concurrent_tasks: Option<i32>,
    /// Memories the workspace starts with (needs `MEMORY_PLUGIN_URL`): written before it is
    /// provisioned; if one cannot be stored, the workspace is not created.
    #[serde(default)]
    pub initial_memories: Vec<crate::memories::InitialMemory>,
    /// Overrides the provider derived from `model`'s prefix (stored as `LLM_PROVIDER`).
    pub llm_provider: Option<String>,
    /// Workspace secrets, stored (sealed) with the workspace in one transaction; their values
    /// are never shown again.
    #[serde(default)]
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    pub secrets: std::collections::BTreeMap<String, secrecy::SecretString>,
    /// Its position on the original canvas.
    pub canvas: Option<CanvasPosition>,
}

/// A position on the original canvas: both coordinates, finite.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CanvasPosition {
    pub x: f64,
    pub y: f64,
}

/// What `POST /workspaces` answers (201).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Created {
    pub id: Uuid,
    #[schema(value_type = String)]
    pub status: WorkspaceStatus,
    pub external: bool,
    /// External workspaces only: the agent's first token, shown this once (also in
    /// `connection` while awaiting the agent). A provisioned workspace gets none here: every
    /// provision hands its workload a fresh token and revokes the others, so a token shown now
    /// would stop working as soon as the workload starts. Mint one for yourself with
    /// `POST /workspaces/:id/tokens` (`auth_token_note` says so).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_token: Option<String>,
    /// Why there is no `auth_token`, and where one is minted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_token_note: Option<String>,
    /// Tiers 3 and 4 without `MOLECULE_ALLOW_PRIVILEGED_TIERS`: the tier's limits apply, but
    /// not the original's host privileges; this says so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier_note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub connection: Option<Value>,
    pub workspace: Workspace,
}

/// `PATCH /workspaces/:id` body. `parent_id: null` makes the workspace a root. An unknown
/// field is refused with a 400 naming it.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchWorkspace {
    pub name: Option<String>,
    pub role: Option<String>,
    pub collapsed: Option<bool>,
    /// Admin only.
    pub tier: Option<i32>,
    /// Admin only. `null` detaches the workspace into a root.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Uuid>, nullable)]
    pub parent_id: Option<Option<Uuid>>,
    /// Admin only.
    pub runtime: Option<String>,
    pub model: Option<String>,
    pub delivery_mode: Option<String>,
    pub max_concurrent_tasks: Option<i32>,
    /// Minutes of idleness before the idle monitor hibernates it (1..=10080); `null` turns it
    /// off.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i32>, nullable)]
    pub hibernation_idle_minutes: Option<Option<i32>>,
    /// The canvas position: `x` and `y` together (one alone is refused, where the original
    /// dropped it).
    pub x: Option<f64>,
    pub y: Option<f64>,
}

/// Tells "absent" (`None`) from "null" (`Some(None)`).
fn double_option<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> std::result::Result<Option<Option<T>>, D::Error> {
    Ok(Some(Option::<T>::deserialize(d)?))
}

/// `PATCH` answer (`status` is always `updated`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Patched {
    pub status: PatchStatus,
    pub reparented: bool,
    pub workspace: Workspace,
}

/// What a patch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PatchStatus {
    Updated,
}

/// What a delete leaves behind (`?purge=true`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Removal {
    /// Rows stay, marked `removed`.
    Removed,
    /// Rows are deleted and the purge hooks run.
    Purged,
}

/// `DELETE` answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Deleted {
    pub status: Removal,
    pub cascade_deleted: usize,
    pub ids: Vec<Uuid>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stop_failures: Vec<crate::hooks::StopFailure>,
}

/// `GET /workspaces/:id/state` answer (what remote agents poll).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct State {
    pub workspace_id: Uuid,
    #[schema(value_type = String)]
    pub status: WorkspaceStatus,
    pub paused: bool,
    pub deleted: bool,
}

/// `POST /workspaces/:id/external/rotate` and `GET …/external/connection` answer: what an
/// external agent needs to connect (`workspace_id`, `platform_url`, `auth_token` (empty when
/// not shown), absolute `registry_endpoint` and `heartbeat_endpoint`, `curl_register_template`,
/// `python_snippet`), as create's `connection` is.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ExternalConnection {
    #[schema(value_type = Object)]
    pub connection: Value,
}
