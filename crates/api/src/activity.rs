//! Activity bodies: what an agent posts, and a row as listed.

use molecule_domain::{ActivityStatus, ActivityType};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// `POST /workspaces/:id/activity` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewActivity {
    /// a2a_send, a2a_receive, task_update, agent_log, skill_promotion, memory_write or error.
    pub activity_type: String,
    /// Must be the workspace itself when given.
    pub source_id: Option<Uuid>,
    pub target_id: Option<Uuid>,
    pub method: Option<String>,
    pub summary: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub request_body: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub response_body: Option<Value>,
    pub duration_ms: Option<i32>,
    /// ok (default), error or timeout.
    pub status: Option<String>,
    pub error_detail: Option<String>,
    /// A repeated key returns the first row instead of adding one.
    pub idempotency_key: Option<String>,
}

/// An activity row as listed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Activity {
    pub id: Uuid,
    pub workspace_id: Uuid,
    #[schema(value_type = String)]
    pub activity_type: ActivityType,
    pub source_id: Option<Uuid>,
    pub target_id: Option<Uuid>,
    pub method: Option<String>,
    pub summary: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub request_body: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub response_body: Option<Value>,
    pub duration_ms: Option<i32>,
    #[schema(value_type = String)]
    pub status: ActivityStatus,
    pub error_detail: Option<String>,
    /// The tools the agent used answering a message (`result.metadata.tool_trace`), on
    /// `a2a_receive` rows written by the proxy.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub tool_trace: Option<Value>,
    pub idempotency_key: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Appended {
    pub id: Uuid,
    /// True when an earlier row with the same idempotency key was returned.
    pub idempotent_hit: bool,
}

/// A file attached to an agent's message to its user.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Attachment {
    /// e.g. `workspace:/workspace/.molecule/chat-uploads/<hex>-report.pdf`.
    pub uri: String,
    pub name: String,
    #[serde(rename = "mimeType", skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// `POST /workspaces/:id/notify` body: a message to the workspace's user.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
}
