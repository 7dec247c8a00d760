//! The platform's tools as MCP (Model Context Protocol) tools, on the official `rmcp` SDK.
//!
//! Owns: the tool definitions (the original's names, input schemas, defaults and result
//! texts) with their annotations (read-only, destructive, idempotent), the server's identity
//! (`molecule-a2a` 1.0.0), and the per-token rate limit ([`RateLimits`], module `limits`). A tool acts as the
//! workspace the HTTP layer authenticated ([`McpCaller`], put in the request's extensions), and
//! never as a workspace named in its arguments. A failing tool answers an MCP tool error
//! (`isError: true`) carrying the reason; the transport never fails for it.
//!
//! Must not know: storage (memory goes through `molecule-memory`'s use-cases, which
//! call the plugin's client and the namespace resolver) or actix (`molecule-http` mounts
//! [`WorkspaceTools`] on rmcp's Streamable HTTP service).

mod limits;

use molecule_api::delegations::DelegateRequest;
use molecule_domain::{DelegationStatus, Vocabulary};
use molecule_memory::memory::{Commit, LegacyScope, MemoryError, Search, scope_of};
use molecule_memory_contract::MemoryKind;
use molecule_service::{ServiceError, Services};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler, schemars, tool, tool_handler, tool_router};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

pub use limits::{CALLS_PER_MINUTE, RateLimits};

/// The server's name and version, as the original announced them.
pub const SERVER_NAME: &str = "molecule-a2a";
pub const SERVER_VERSION: &str = "1.0.0";

/// The authenticated workspace a request acts for; the HTTP layer inserts it after checking
/// the workspace's token, and every tool reads it from there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct McpCaller(pub Uuid);

/// How long `delegate_task` waits for the callee's answer before handing back the task id.
pub const DELEGATE_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// What an operator decides about the tools.
#[derive(Debug, Clone, Default)]
pub struct McpSettings {
    /// Calls per minute per token.
    pub limits: RateLimits,
    /// `MOLECULE_MCP_ALLOW_SEND_MESSAGE`: whether `send_message_to_user` is offered.
    pub allow_send_message: bool,
}

/// The tools of one workspace-server; a request's caller comes from its extensions.
#[derive(Clone)]
pub struct WorkspaceTools {
    services: Services,
    /// Shared: the transport builds a service per request, and cloning the router itself
    /// would copy its table of routes every time.
    tool_router: std::sync::Arc<ToolRouter<Self>>,
}

impl std::fmt::Debug for WorkspaceTools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkspaceTools").finish_non_exhaustive()
    }
}

/// A memory's kind, as tools take it.
#[derive(Debug, Clone, Copy, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Fact,
    Summary,
    Checkpoint,
}

impl From<Kind> for MemoryKind {
    fn from(k: Kind) -> Self {
        match k {
            Kind::Fact => Self::Fact,
            Kind::Summary => Self::Summary,
            Kind::Checkpoint => Self::Checkpoint,
        }
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct CommitMemoryV2 {
    /// What to remember (secrets are redacted before it is stored).
    pub content: String,
    /// A namespace this workspace may write (default: its own, `workspace:<id>`).
    #[serde(default)]
    pub namespace: Option<String>,
    /// fact (default), summary or checkpoint.
    #[serde(default)]
    pub kind: Option<Kind>,
    /// RFC 3339 time after which the memory is no longer returned.
    #[serde(default)]
    pub expires_at: Option<String>,
    /// Rank first in listings.
    #[serde(default)]
    pub pin: Option<bool>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct SearchMemory {
    /// Full-text query; empty lists the newest.
    #[serde(default)]
    pub query: Option<String>,
    /// Narrow to these readable namespaces (default: all this workspace may read).
    #[serde(default)]
    pub namespaces: Option<Vec<String>>,
    /// Only these kinds.
    #[serde(default)]
    pub kinds: Option<Vec<Kind>>,
    /// 1..100 (default 20).
    #[serde(default)]
    pub limit: Option<u32>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct CommitSummary {
    pub content: String,
    #[serde(default)]
    pub namespace: Option<String>,
    /// RFC 3339 (default: 30 days from now).
    #[serde(default)]
    pub expires_at: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ForgetMemory {
    pub memory_id: String,
    /// The writable namespace holding it (default: this workspace's own).
    #[serde(default)]
    pub namespace: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct NoArguments {}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct Delegate {
    /// The peer to delegate to.
    pub workspace_id: String,
    /// What it should do.
    pub task: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct TaskStatus {
    /// The peer the task went to (kept for the original's clients; the task id decides).
    #[serde(default)]
    pub workspace_id: Option<String>,
    pub task_id: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct MessageToUser {
    pub message: String,
}

fn parse_id(raw: &str) -> Option<Uuid> {
    Uuid::parse_str(raw.trim()).ok()
}

fn delegate_request(target: Uuid, task: String) -> DelegateRequest {
    DelegateRequest {
        target_id: target,
        task,
        idempotency_key: None,
    }
}

/// A use-case's refusal as a tool error: its message (a 5xx's cause goes to the log only).
fn service_failed(tool: &str, ws: Uuid, e: &ServiceError) -> CallToolResult {
    match e {
        ServiceError::Unavailable(_) | ServiceError::Internal { .. } => {
            tracing::warn!(tool, workspace_id = %ws, error = %e.chain(), "tool failed");
        }
        _ => tracing::debug!(tool, workspace_id = %ws, error = %e, "tool refused"),
    }
    failed(e.to_string())
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct RequestApproval {
    /// What you want to do (at most 200 characters), e.g. `delete_branch`.
    pub action: String,
    /// Why, for the person (or parent agent) deciding.
    #[serde(default)]
    pub reason: Option<String>,
    /// Your task this belongs to.
    #[serde(default)]
    pub task_id: Option<String>,
    /// Anything the decider should see, as a JSON object.
    #[serde(default)]
    pub context: Option<serde_json::Map<String, Value>>,
    /// How long to wait for a decision, in seconds (default and most: the server's
    /// APPROVAL_TIMEOUT_MINUTES); then the request expires.
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct LegacyCommit {
    pub content: String,
    /// LOCAL (default) or TEAM.
    #[serde(default)]
    pub scope: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct LegacyRecall {
    #[serde(default)]
    pub query: Option<String>,
    /// LOCAL, TEAM, or empty for everything readable.
    #[serde(default)]
    pub scope: Option<String>,
}

/// `search_memory`'s answer.
#[derive(serde::Serialize)]
struct Found<'a> {
    memories: &'a [molecule_memory_contract::Memory],
}

fn text(s: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(s.into())])
}

/// A tool error: the agent reads `message`; the transport succeeds.
fn failed(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.into())])
}

fn memory_failed(tool: &str, ws: Uuid, e: &MemoryError) -> CallToolResult {
    match e {
        MemoryError::Plugin(_) | MemoryError::Tree(_) => {
            tracing::warn!(tool, workspace_id = %ws, error = %e, "memory tool failed");
        }
        _ => tracing::debug!(tool, workspace_id = %ws, error = %e, "memory tool refused"),
    }
    failed(e.to_string())
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

/// The workspace the HTTP layer authenticated for this request.
fn caller(ctx: &RequestContext<RoleServer>) -> Result<Uuid, McpError> {
    ctx.extensions
        .get::<http1::request::Parts>()
        .and_then(|parts| parts.extensions.get::<McpCaller>())
        .map(|c| c.0)
        .ok_or_else(|| McpError::invalid_request("no authenticated workspace on this request", None))
}

fn legacy_scope(raw: Option<&str>, allow_all: bool) -> Result<Option<LegacyScope>, String> {
    match raw.map(str::trim).unwrap_or_default().to_ascii_uppercase().as_str() {
        "" if allow_all => Ok(None),
        "" | "LOCAL" => Ok(Some(LegacyScope::Local)),
        "TEAM" => Ok(Some(LegacyScope::Team)),
        "GLOBAL" => Err("GLOBAL scope is not permitted via the MCP bridge - use LOCAL or TEAM".into()),
        other if allow_all => Err(format!("unknown scope: {other}")),
        _ => Err("scope must be LOCAL or TEAM".into()),
    }
}

#[tool_router]
impl WorkspaceTools {
    /// The tools; `send_message_to_user` only when `allow_send_message`.
    pub fn new(services: Services, allow_send_message: bool) -> Self {
        let mut tool_router = Self::tool_router();
        if !allow_send_message {
            tool_router.remove_route("send_message_to_user");
        }
        Self {
            services,
            tool_router: std::sync::Arc::new(tool_router),
        }
    }

    /// The workspaces this one may talk to directly (parent, siblings, children).
    #[tool(annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true))]
    async fn list_peers(
        &self,
        Parameters(_): Parameters<NoArguments>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let ws = caller(&ctx)?;
        Ok(match self.services.messaging().peers(ws, None).await {
            Ok(peers) => text(pretty(&json!(peers))),
            Err(e) => service_failed("list_peers", ws, &e),
        })
    }

    /// This workspace as the platform sees it.
    #[tool(annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true))]
    async fn get_workspace_info(
        &self,
        Parameters(_): Parameters<NoArguments>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let ws = caller(&ctx)?;
        Ok(match self.services.tree().get_workspace(ws).await {
            Ok(w) => text(pretty(&json!(w))),
            Err(e) => service_failed("get_workspace_info", ws, &e),
        })
    }

    /// Delegates a task to a peer and waits up to 30 s for its answer (then returns the task
    /// id to check later). Goes through the delegation ledger and the A2A proxy.
    #[tool(annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false))]
    async fn delegate_task(
        &self,
        Parameters(a): Parameters<Delegate>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let ws = caller(&ctx)?;
        let Some(target) = parse_id(&a.workspace_id) else {
            return Ok(failed(format!(
                "workspace_id must be a UUID (got {:?})",
                a.workspace_id
            )));
        };
        let mut events = self.services.bus().subscribe();
        let sent = match self
            .services
            .messaging()
            .delegate(ws, delegate_request(target, a.task))
            .await
        {
            Ok(d) => d,
            Err(e) => return Ok(service_failed("delegate_task", ws, &e)),
        };
        let id = sent.delegation_id;
        // Wait for the delegation's end on the event bus (any replica settles it), then read
        // the ledger; past the wait, the ledger says where it stands.
        let _ = tokio::time::timeout(DELEGATE_WAIT, async {
            loop {
                match events.recv().await {
                    Ok(ev)
                        if matches!(ev.event.as_str(), "DELEGATION_COMPLETE" | "DELEGATION_FAILED")
                            && ev.payload["delegation_id"] == id.as_str() =>
                    {
                        return;
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        })
        .await;
        Ok(match self.services.messaging().delegation(ws, &id).await {
            Ok(d) if d.status == DelegationStatus::Completed => text(d.response_preview.unwrap_or_default()),
            Ok(d) if d.status.is_terminal() => failed(format!(
                "delegation {id} {}: {}",
                d.status.as_str(),
                d.error.unwrap_or_default()
            )),
            Ok(d) => text(
                json!({ "task_id": id, "status": d.status.as_str(), "target_id": target,
                        "message": format!("no answer within {} s; call check_task_status with this task_id", DELEGATE_WAIT.as_secs()) })
                .to_string(),
            ),
            Err(e) => service_failed("delegate_task", ws, &e),
        })
    }

    /// Delegates a task to a peer without waiting: returns its task id.
    #[tool(annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false))]
    async fn delegate_task_async(
        &self,
        Parameters(a): Parameters<Delegate>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let ws = caller(&ctx)?;
        let Some(target) = parse_id(&a.workspace_id) else {
            return Ok(failed(format!(
                "workspace_id must be a UUID (got {:?})",
                a.workspace_id
            )));
        };
        Ok(
            match self
                .services
                .messaging()
                .delegate(ws, delegate_request(target, a.task))
                .await
            {
                Ok(d) => {
                    text(json!({ "task_id": d.delegation_id, "status": "dispatched", "target_id": target }).to_string())
                }
                Err(e) => service_failed("delegate_task_async", ws, &e),
            },
        )
    }

    /// Where a delegated task stands (its answer once completed).
    #[tool(annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true))]
    async fn check_task_status(
        &self,
        Parameters(a): Parameters<TaskStatus>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let ws = caller(&ctx)?;
        Ok(match self.services.messaging().delegation(ws, a.task_id.trim()).await {
            Ok(d) => text(
                json!({ "task_id": d.delegation_id, "status": d.status.as_str(), "target_id": d.target_id,
                        "response": d.response_preview, "error": d.error })
                .to_string(),
            ),
            Err(e) => service_failed("check_task_status", ws, &e),
        })
    }

    /// Sends a message to this workspace's user (the canvas).
    #[tool(annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false))]
    async fn send_message_to_user(
        &self,
        Parameters(a): Parameters<MessageToUser>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let ws = caller(&ctx)?;
        Ok(match self.services.tree().notify_user(ws, &a.message).await {
            Ok(_) => text(json!({ "sent": true }).to_string()),
            Err(e) => service_failed("send_message_to_user", ws, &e),
        })
    }

    /// Asks for approval before an action and waits for the decision: your parent workspace
    /// (or an ancestor) or the operator decides. Returns `{approval_id, status, decided_by}`
    /// with `status` one of `approved`, `denied`, `expired` (nobody decided in time) or
    /// `withdrawn`. Act only on `approved`.
    #[tool(annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false))]
    async fn request_approval(
        &self,
        Parameters(a): Parameters<RequestApproval>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let ws = caller(&ctx)?;
        let approvals = self.services.approvals();
        let made = match approvals
            .request(
                ws,
                molecule_approvals::NewApproval {
                    action: a.action,
                    task_id: a.task_id,
                    reason: a.reason,
                    context: a.context.map(Value::Object),
                    timeout_seconds: a.timeout_seconds,
                },
            )
            .await
        {
            Ok(made) => made,
            Err(e) => return Ok(service_failed("request_approval", ws, &e)),
        };
        Ok(match approvals.wait(ws, made.id).await {
            Ok(done) => text(
                json!({ "approval_id": done.id, "status": done.status.as_str(), "decided_by": done.decided_by })
                    .to_string(),
            ),
            Err(e) => service_failed("request_approval", ws, &e),
        })
    }

    /// Stores a memory in a namespace this workspace may write.
    #[tool(annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false))]
    async fn commit_memory_v2(
        &self,
        Parameters(a): Parameters<CommitMemoryV2>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let ws = caller(&ctx)?;
        let input = Commit {
            content: a.content,
            namespace: a.namespace,
            kind: a.kind.map(Into::into),
            expires_at: a.expires_at,
            pin: a.pin,
            ..Commit::default()
        };
        Ok(match self.services.memory().commit_memory(ws, input).await {
            Ok(w) => text(json!({ "id": w.id, "namespace": w.namespace }).to_string()),
            Err(e) => memory_failed("commit_memory_v2", ws, &e),
        })
    }

    /// Searches the namespaces this workspace may read (org memories come marked as shared).
    #[tool(annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true))]
    async fn search_memory(
        &self,
        Parameters(a): Parameters<SearchMemory>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let ws = caller(&ctx)?;
        let input = Search {
            query: a.query,
            namespaces: a.namespaces.unwrap_or_default(),
            kinds: a.kinds.unwrap_or_default().into_iter().map(Into::into).collect(),
            limit: a.limit,
        };
        Ok(match self.services.memory().search_memory(ws, input).await {
            // Serialized straight from the memories: a `Value` tree of twenty of them cost
            // more than the rest of the answer.
            Ok(memories) => match serde_json::to_string(&Found { memories: &memories }) {
                Ok(body) => text(body),
                Err(e) => failed(format!("search_memory: cannot encode the answer: {e}")),
            },
            Err(e) => memory_failed("search_memory", ws, &e),
        })
    }

    /// Stores a summary (expires after 30 days unless expires_at says otherwise).
    #[tool(annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false))]
    async fn commit_summary(
        &self,
        Parameters(a): Parameters<CommitSummary>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let ws = caller(&ctx)?;
        Ok(
            match self
                .services
                .memory()
                .commit_summary(ws, a.content, a.namespace, a.expires_at)
                .await
            {
                Ok(w) => text(json!({ "id": w.id, "namespace": w.namespace }).to_string()),
                Err(e) => memory_failed("commit_summary", ws, &e),
            },
        )
    }

    /// The namespaces this workspace may write.
    #[tool(annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true))]
    async fn list_writable_namespaces(
        &self,
        Parameters(_): Parameters<NoArguments>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        self.namespaces(&ctx, true).await
    }

    /// The namespaces this workspace may read.
    #[tool(annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true))]
    async fn list_readable_namespaces(
        &self,
        Parameters(_): Parameters<NoArguments>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        self.namespaces(&ctx, false).await
    }

    /// Deletes one memory from a namespace this workspace may write.
    #[tool(annotations(read_only_hint = false, destructive_hint = true, idempotent_hint = true))]
    async fn forget_memory(
        &self,
        Parameters(a): Parameters<ForgetMemory>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let ws = caller(&ctx)?;
        let Ok(id) = Uuid::parse_str(a.memory_id.trim()) else {
            return Ok(failed(format!("memory_id must be a UUID (got {:?})", a.memory_id)));
        };
        Ok(match self.services.memory().forget_memory(ws, id, a.namespace).await {
            Ok(()) => text(json!({ "forgotten": true }).to_string()),
            Err(e) => memory_failed("forget_memory", ws, &e),
        })
    }

    /// Legacy: stores a memory in LOCAL (this workspace) or TEAM scope. GLOBAL is refused.
    #[tool(annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false))]
    async fn commit_memory(
        &self,
        Parameters(a): Parameters<LegacyCommit>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let ws = caller(&ctx)?;
        let scope = match legacy_scope(a.scope.as_deref(), false) {
            Ok(Some(s)) => s,
            Ok(None) => LegacyScope::Local,
            Err(msg) => return Ok(failed(msg)),
        };
        let result = async {
            let namespace = self.services.memory().legacy_namespace(ws, scope).await?;
            let input = Commit {
                content: a.content,
                namespace: Some(namespace),
                ..Commit::default()
            };
            self.services.memory().commit_memory(ws, input).await
        }
        .await;
        Ok(match result {
            Ok(w) => text(json!({ "id": w.id, "scope": scope.as_str() }).to_string()),
            Err(e) => memory_failed("commit_memory", ws, &e),
        })
    }

    /// Legacy: recalls memories (LOCAL, TEAM, or everything readable when no scope is given).
    #[tool(annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true))]
    async fn recall_memory(
        &self,
        Parameters(a): Parameters<LegacyRecall>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let ws = caller(&ctx)?;
        let scope = match legacy_scope(a.scope.as_deref(), true) {
            Ok(s) => s,
            Err(msg) => return Ok(failed(msg)),
        };
        Ok(match self.services.memory().recall_memory(ws, a.query, scope).await {
            Ok(found) if found.is_empty() => text("No memories found."),
            Ok(found) => {
                let rows: Vec<Value> = found
                    .iter()
                    .map(|m| {
                        json!({ "id": m.id, "content": m.content, "scope": scope_of(&m.namespace),
                                "created_at": m.created_at.format(&time_format()).unwrap_or_default() })
                    })
                    .collect();
                text(pretty(&Value::Array(rows)))
            }
            Err(e) => memory_failed("recall_memory", ws, &e),
        })
    }
}

/// `2006-01-02T15:04:05Z`, as the original printed recall times.
fn time_format() -> Vec<time::format_description::BorrowedFormatItem<'static>> {
    time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z").to_vec()
}

impl WorkspaceTools {
    async fn namespaces(&self, ctx: &RequestContext<RoleServer>, writable: bool) -> Result<CallToolResult, McpError> {
        let ws = caller(ctx)?;
        Ok(match self.services.memory().memory_namespaces(ws, writable).await {
            Ok(list) => text(pretty(&json!(list))),
            Err(e) => memory_failed("list_namespaces", ws, &e),
        })
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for WorkspaceTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(SERVER_NAME, SERVER_VERSION))
            .with_instructions(
                "Memory and messaging tools of the molecule platform. Every tool acts as the \
                 workspace whose token authenticated the request.",
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_scopes_refuse_global_with_the_original_text() {
        assert_eq!(
            legacy_scope(Some("global"), false).unwrap_err(),
            "GLOBAL scope is not permitted via the MCP bridge - use LOCAL or TEAM"
        );
        assert_eq!(
            legacy_scope(Some("x"), false).unwrap_err(),
            "scope must be LOCAL or TEAM"
        );
        assert_eq!(legacy_scope(Some("x"), true).unwrap_err(), "unknown scope: X");
        assert_eq!(legacy_scope(None, true).unwrap(), None);
        assert_eq!(legacy_scope(None, false).unwrap(), Some(LegacyScope::Local));
        assert_eq!(legacy_scope(Some("team"), true).unwrap(), Some(LegacyScope::Team));
    }

    #[test]
    fn every_tool_is_listed_with_annotations() {
        let tools = WorkspaceTools::tool_router().list_all();
        let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "check_task_status",
                "commit_memory",
                "commit_memory_v2",
                "commit_summary",
                "delegate_task",
                "delegate_task_async",
                "forget_memory",
                "get_workspace_info",
                "list_peers",
                "list_readable_namespaces",
                "list_writable_namespaces",
                "recall_memory",
                "request_approval",
                "search_memory",
                "send_message_to_user"
            ]
        );
        for t in &tools {
            let a = t.annotations.as_ref().expect("annotations");
            assert!(a.read_only_hint.is_some() && a.destructive_hint.is_some() && a.idempotent_hint.is_some());
        }
    }
}
