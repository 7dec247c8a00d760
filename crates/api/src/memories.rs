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

/// `PATCH /workspaces/:id/memories/:memory_id` body: the new content, redacted again.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditMemory {
    pub content: String,
}

/// What an edit did: `changed: false` when the redacted content equals what is stored.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EditedMemory {
    pub id: Uuid,
    pub memory_namespace: String,
    pub changed: bool,
}

/// One `initial_memories` entry of `POST /workspaces` (and of an org template's nodes).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InitialMemory {
    /// At most 100 000 bytes; secrets are redacted before it is stored.
    pub content: String,
    /// LOCAL (default), TEAM, or GLOBAL (root workspaces only).
    #[serde(default)]
    pub scope: Option<String>,
}

/// One memory of `GET /admin/memories/export`, and what `POST /admin/memories/import` reads.
/// The original's fields (`id, content, scope, namespace, created_at, workspace_name`) keep
/// their meaning; the rest carry what the plugin holds, so a round trip loses nothing.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportedMemory {
    /// The memory's id; import upserts by it (absent: one is derived from the namespace and
    /// content, so importing the same file twice still writes one copy).
    #[serde(default)]
    pub id: Option<Uuid>,
    pub content: String,
    /// LOCAL, TEAM or GLOBAL (by the namespace's prefix). On import it places an entry whose
    /// `namespace` is not a plugin namespace (the original's `general` labels), with
    /// `workspace_id` or `workspace_name`; beside a plugin namespace it must agree with it.
    #[serde(default)]
    pub scope: Option<String>,
    /// The plugin namespace (`workspace:<id>`, `team:<id>`, `org:<id>` or custom).
    #[serde(default)]
    pub namespace: Option<String>,
    /// fact (default), summary or checkpoint.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub kind: Option<molecule_domain::MemoryKind>,
    /// agent (default), runtime or user.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub source: Option<molecule_domain::MemorySource>,
    #[serde(default)]
    pub pin: Option<bool>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<time::OffsetDateTime>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub propagation: Option<serde_json::Map<String, serde_json::Value>>,
    /// When it was first written. The plugin stamps its own time on import, so import keeps
    /// this one as `propagation.original_created_at`, and export gives that back here.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub created_at: Option<time::OffsetDateTime>,
    /// The workspace the namespace belongs to. Beside a plugin namespace, import refuses an
    /// entry whose `workspace_id` is not the namespace's owner, or whose `workspace_name` is
    /// not that owner's name (checked when the owner exists on this platform).
    #[serde(default)]
    pub workspace_name: Option<String>,
    #[serde(default)]
    pub workspace_id: Option<Uuid>,
}

/// `POST /admin/memories/import` query.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// Check and count, write nothing.
    #[serde(default)]
    pub dry_run: Option<bool>,
    /// What to do with an id the plugin already holds: `skip` (default) or `overwrite`.
    #[serde(default)]
    pub on_conflict: Option<String>,
}

/// One entry an import could not take.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImportError {
    /// Position in the posted array.
    pub index: usize,
    pub error: String,
}

/// `POST /admin/memories/import` answer (the original's four counts, and the detail).
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct ImportReport {
    pub total: usize,
    /// Written as new memories (in a dry run: would be).
    pub imported: usize,
    /// Ids the plugin held, written over (`on_conflict=overwrite`).
    pub overwritten: usize,
    /// Ids the plugin held, left as they were (`on_conflict=skip`).
    pub skipped: usize,
    pub errors: usize,
    pub dry_run: bool,
    /// Secrets redacted, by class.
    #[schema(value_type = Object)]
    pub redactions: std::collections::BTreeMap<String, usize>,
    /// The first 100 failures.
    pub error_details: Vec<ImportError>,
    /// Namespaces written to (created when missing).
    pub namespaces: usize,
}

/// A namespace as `GET /workspaces/:id/v2/namespaces` lists it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct V2Namespace {
    /// `workspace:<id>`, `team:<id>`, `org:<id>` or a custom name.
    pub name: String,
    /// `workspace`, `team`, `org` or `custom`.
    pub kind: String,
    /// For people: `Workspace (<name>)`, `Team (<name>)`, `Org (<name>)`.
    pub label: String,
}

/// `GET /workspaces/:id/v2/namespaces`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct V2Namespaces {
    pub readable: Vec<V2Namespace>,
    pub writable: Vec<V2Namespace>,
}

/// A memory as `GET /workspaces/:id/v2/memories` answers it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct V2Memory {
    pub id: Uuid,
    pub namespace: String,
    pub content: String,
    /// `fact`, `summary` or `checkpoint`.
    pub kind: String,
    /// Who wrote it (`agent`, `user`, `runtime`, …).
    pub source: String,
    pub pin: bool,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub expires_at: Option<time::OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
    /// Relevance, for a query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// The workspace it was propagated from, when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_workspace_id: Option<String>,
}

/// `GET /workspaces/:id/v2/memories`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct V2Memories {
    pub memories: Vec<V2Memory>,
}
