//! Org template import bodies: the request, each node's result, and the listing of
//! templates.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// `POST /org/import` body: a template directory under the org templates root, or the YAML
/// itself.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct ImportRequest {
    /// Directory (under the org templates root) holding `org.yaml`.
    pub dir: Option<String>,
    /// The template's YAML text.
    pub template: Option<String>,
    /// Remove and recreate nodes that already exist (default: skip them).
    #[serde(default)]
    pub replace_if_exists: bool,
    /// Import even though `required_env` names variables no global secret (nor the org's
    /// `.env`) provides (default: 412 listing them).
    #[serde(default)]
    pub force: bool,
}

/// What an import did with one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NodeStatus {
    Created,
    /// A live workspace of that name already existed under the same parent.
    Skipped,
    /// An existing one was removed and created again (`replace_if_exists`).
    Replaced,
    Failed,
    /// `spawning: false`: neither it nor its subtree was created.
    NotSpawned,
}

/// What happened to one node.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NodeResult {
    /// Where the node is in the template, e.g. `workspaces[0].children[1]`.
    pub node: String,
    pub name: String,
    pub id: Option<Uuid>,
    pub parent_id: Option<Uuid>,
    pub status: NodeStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The node's keys this platform does not implement (schedules, channels, plugins, …):
    /// read, not acted on.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored: Vec<String>,
    /// The node's `channels:` written (upserted by type, secrets sealed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
    /// The node's `channels:` not written, each with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub channels_skipped: Vec<ChannelSkipped>,
}

/// A template channel import left out.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChannelSkipped {
    #[serde(rename = "type")]
    pub kind: String,
    /// `empty type`, `unknown adapter`, `missing env: [...]`, or the config's problem.
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Imported {
    pub org: Option<String>,
    /// The org's own keys this platform does not implement (`defaults.plugins`, …).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored: Vec<String>,
    pub workspaces: Vec<NodeResult>,
    pub count: usize,
    pub created: usize,
    pub skipped: usize,
    pub failed: usize,
}

impl Imported {
    /// 201 when nothing failed, 207 otherwise.
    pub fn http_status(&self) -> u16 {
        if self.failed == 0 { 201 } else { 207 }
    }
}

/// A template available under the org templates root.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TemplateSummary {
    pub dir: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub workspaces: usize,
}
