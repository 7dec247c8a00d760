//! Platform instruction bodies (`/instructions*`, `/workspaces/:id/instructions/resolve`):
//! the original's shapes (A §3.2).

use molecule_domain::InstructionScope;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// A rule, as listed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Instruction {
    pub id: Uuid,
    /// `global` or `workspace`.
    #[schema(value_type = String)]
    pub scope: InstructionScope,
    /// The workspace a `workspace` rule applies to; null for `global`.
    pub scope_target: Option<Uuid>,
    pub title: String,
    pub content: String,
    /// Higher first.
    pub priority: i32,
    pub enabled: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// `GET /instructions` query.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct InstructionsQuery {
    /// Only the enabled rules that apply to this workspace: global first, then its own.
    #[serde(default)]
    pub workspace_id: Option<String>,
    /// Only this scope (`global` or `workspace`), disabled rules included; not with
    /// `workspace_id`.
    #[serde(default)]
    pub scope: Option<String>,
}

/// `POST /instructions` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInstruction {
    /// `global` or `workspace`.
    #[serde(default)]
    pub scope: String,
    /// The workspace id, for (and only for) `workspace` scope.
    #[serde(default)]
    pub scope_target: Option<String>,
    /// At most 200 characters.
    #[serde(default)]
    pub title: String,
    /// At most 8192 characters.
    #[serde(default)]
    pub content: String,
    /// Default 0; higher first.
    #[serde(default)]
    pub priority: Option<i32>,
    /// Default true.
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// `201` of a create.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InstructionCreated {
    pub id: Uuid,
}

/// `PUT /instructions/:id` body: scope and target never change; absent fields stay.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateInstruction {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub priority: Option<i32>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// `200` of an update or delete: `{status: "updated" | "deleted"}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InstructionStatus {
    pub status: &'static str,
}

/// `GET /workspaces/:id/instructions/resolve`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResolvedInstructions {
    pub workspace_id: Uuid,
    /// Markdown: `## Platform-Wide Rules` then `## Role-Specific Rules`, a `### title` per
    /// rule; empty when none apply.
    pub instructions: String,
}
