//! Agent memory: the use-cases behind the MCP memory tools (and, later, the HTTP memory
//! endpoints). Scope comes from the calling workspace alone: every read is intersected with
//! what the namespace resolver says it may read, every write re-checks `can_write`, and a
//! namespace named in the arguments only narrows that set, never widens it.
//!
//! Owns: the order of checks and the error texts agents see, redaction before anything reaches
//! the plugin, upserting a namespace before its first memory, the org wrap on reads, and the
//! audit rows (`memory_write`, `memory_summary_write`, `memory_delete`, and
//! `memory_write_global` with the content's sha256 for `org:*` writes). Must not know: how the
//! plugin stores memories (it speaks Memory Plugin v1 through the contract's client), MCP or
//! HTTP.

use std::sync::Arc;

use molecule_domain::{ActivityStatus, ActivityType, NamespaceKind, Vocabulary};
use molecule_memory_contract::client::{ClientError, PluginClient};
use molecule_memory_contract::{
    ForgetRequest, Memory, MemoryKind, MemorySource, MemoryWrite, MemoryWriteResponse, NamespaceUpsert, SearchRequest,
};
use molecule_namespace::{NamespaceError, ResolvedNamespace};

use crate::scopes::{ResolveError, Resolver};
use serde_json::json;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use molecule_secrets::redact::redact;
use molecule_tree::activity::ActivityRow;

/// What an agent is told when memory is off.
pub const NOT_CONFIGURED: &str = "memory plugin is not configured (set MEMORY_PLUGIN_URL)";
/// A summary without `expires_at` lives this long (the original's default).
const SUMMARY_TTL: time::Duration = time::Duration::days(30);
/// Legacy `recall_memory` returns at most this many.
const RECALL_LIMIT: u32 = 50;

/// The memory plugin's client and the resolver over the live tree.
#[derive(Debug, Clone)]
pub struct MemoryLayer {
    pub client: Arc<PluginClient>,
    pub resolver: Resolver,
    scopes: ScopeCache,
}

/// How long a workspace's resolved namespaces are trusted.
const SCOPE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// Each workspace's readable namespaces as the resolver last said, for up to [`SCOPE_TTL`]:
/// a busy agent's memory calls cost one tree read a second, not one a call. An entry is
/// dropped as soon as the bus reports a change (any replica's) of the workspace or of the
/// workspaces its namespaces are named after (its parent and its root), so a re-parented or
/// removed workspace is seen at once; only a change to an ancestor between its parent and
/// its root waits out the TTL.
#[derive(Debug, Clone, Default)]
struct ScopeCache(Arc<std::sync::Mutex<ScopeMap>>);

/// Workspace → (when read, its readable namespaces).
type ScopeMap = std::collections::HashMap<Uuid, (tokio::time::Instant, Arc<Vec<ResolvedNamespace>>)>;

impl ScopeCache {
    fn map(&self) -> std::sync::MutexGuard<'_, ScopeMap> {
        // A poisoned lock only means a thread panicked between two map operations, each of
        // which leaves the map valid.
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Why a memory call did not succeed; the text is what the agent reads.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    #[error("{NOT_CONFIGURED}")]
    NotConfigured,
    /// An argument is wrong (names the argument).
    #[error("{0}")]
    Invalid(String),
    /// The workspace may not read or write that namespace.
    #[error("{0}")]
    Forbidden(String),
    #[error("memory not found")]
    NotFound,
    /// The plugin refused or could not be reached (the breaker's state included); the
    /// client's text names the plugin.
    #[error("{0}")]
    Plugin(#[source] ClientError),
    #[error("workspace {0} not found")]
    WorkspaceNotFound(Uuid),
    /// The workspace tree could not be read.
    #[error("memory scopes could not be resolved: {0}")]
    Tree(#[source] molecule_tree::ServiceError),
    /// The plugin cannot page a listing, so an export would leave memories out.
    #[error(
        "memory plugin sent a full page of {namespace} without next_page_token (or the same page twice): it cannot page listings, so the export stops rather than leave memories out"
    )]
    CannotPage { namespace: String },
}

impl From<ResolveError> for MemoryError {
    fn from(e: ResolveError) -> Self {
        match e {
            ResolveError::Namespace(n) => n.into(),
            ResolveError::Tree(t) => Self::Tree(t),
        }
    }
}

impl From<NamespaceError> for MemoryError {
    fn from(e: NamespaceError) -> Self {
        match e {
            NamespaceError::WorkspaceNotFound(id) => Self::WorkspaceNotFound(id),
        }
    }
}

impl From<ClientError> for MemoryError {
    fn from(e: ClientError) -> Self {
        match e {
            // Refused before sending: the caller's input breaks the contract (a NUL, a bad
            // name), so it is the caller's to fix, not the plugin's failure.
            ClientError::Invalid(invalid) => Self::Invalid(invalid.to_string()),
            e if e.code() == Some(molecule_memory_contract::ErrorCode::NotFound) => Self::NotFound,
            e => Self::Plugin(e),
        }
    }
}

pub type MemoryResult<T> = std::result::Result<T, MemoryError>;

/// `commit_memory_v2`'s arguments (also what the legacy and summary tools reduce to).
#[derive(Debug, Clone, Default)]
pub struct Commit {
    pub content: String,
    pub namespace: Option<String>,
    pub kind: Option<MemoryKind>,
    pub expires_at: Option<String>,
    pub pin: Option<bool>,
    /// Who wrote it (default: the agent).
    pub source: Option<MemorySource>,
    /// Kept with the memory, opaque to the plugin (the HTTP endpoints' label).
    pub propagation: Option<molecule_memory_contract::JsonObject>,
}

/// `search_memory`'s arguments.
#[derive(Debug, Clone, Default)]
pub struct Search {
    pub query: Option<String>,
    pub namespaces: Vec<String>,
    pub kinds: Vec<MemoryKind>,
    pub limit: Option<u32>,
}

/// Legacy scopes (`commit_memory`, `recall_memory`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyScope {
    Local,
    Team,
}

impl LegacyScope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "LOCAL",
            Self::Team => "TEAM",
        }
    }
}

/// The legacy scope a namespace reads as.
pub fn scope_of(namespace: &str) -> &'static str {
    match namespace.split(':').next() {
        Some("team") => "TEAM",
        Some("org") => "GLOBAL",
        _ => "LOCAL",
    }
}

pub fn kind_of(namespace: &str) -> NamespaceKind {
    namespace
        .split(':')
        .next()
        .and_then(|p| NamespaceKind::parse(p).ok())
        .unwrap_or(NamespaceKind::Custom)
}

fn parse_expiry(raw: &str) -> MemoryResult<OffsetDateTime> {
    OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
        .map_err(|_| MemoryError::Invalid(format!("invalid expires_at: must be RFC3339 (got {raw:?})")))
}

/// `org:*` content as agents read it: marked as shared, so a model does not take it for its own.
pub fn wrap_org(memory: &mut Memory) {
    if memory.namespace.starts_with("org:") {
        memory.content = format!(
            "[MEMORY id={} scope=ORG ns={}]: {}",
            memory.id, memory.namespace, memory.content
        );
    }
}

impl MemoryLayer {
    pub fn new(client: Arc<PluginClient>, resolver: Resolver) -> Self {
        Self {
            client,
            resolver,
            scopes: ScopeCache::default(),
        }
    }

    pub fn client(&self) -> &PluginClient {
        &self.client
    }
}

impl crate::Memory {
    /// Turns memory on: the tools and endpoints reach `client`, scoped by the live tree.
    pub fn with_memory(mut self, client: Arc<PluginClient>) -> Self {
        self.memory = Some(MemoryLayer::new(client, Resolver::new(self.workspaces.clone())));
        self
    }

    pub fn memory(&self) -> MemoryResult<&MemoryLayer> {
        self.memory.as_ref().ok_or(MemoryError::NotConfigured)
    }

    /// Whether memory is configured (other tools work without it).
    pub fn memory_enabled(&self) -> bool {
        self.memory.is_some()
    }

    /// The namespaces `ws` may read (all) or write (`writable_only`), in the resolver's order.
    pub async fn memory_namespaces(&self, ws: Uuid, writable_only: bool) -> MemoryResult<Vec<ResolvedNamespace>> {
        let all = self.readable_scopes(ws).await?;
        Ok(all.iter().filter(|n| !writable_only || n.writable).cloned().collect())
    }

    /// The resolver's readable set for `ws`, through the scope cache.
    pub async fn readable_scopes(&self, ws: Uuid) -> MemoryResult<Arc<Vec<ResolvedNamespace>>> {
        let m = self.memory()?;
        let changed_since = |read_at: tokio::time::Instant, scopes: &[ResolvedNamespace]| {
            let owners = std::iter::once(ws).chain(
                scopes
                    .iter()
                    .filter_map(|n| n.name.as_str().split_once(':').and_then(|(_, id)| id.parse().ok())),
            );
            owners
                .into_iter()
                .any(|id| self.bus.last_change_at(id).is_some_and(|c| c >= read_at))
        };
        if let Some((read_at, scopes)) = m.scopes.map().get(&ws).cloned()
            && read_at.elapsed() < SCOPE_TTL
            && !changed_since(read_at, &scopes)
        {
            return Ok(scopes);
        }
        let read_at = tokio::time::Instant::now();
        let scopes = Arc::new(m.resolver.readable(ws).await?);
        let mut map = m.scopes.map();
        if map.len() >= 10_000 {
            map.retain(|_, (at, _)| at.elapsed() < SCOPE_TTL);
        }
        map.insert(ws, (read_at, scopes.clone()));
        Ok(scopes)
    }

    /// Drops every cached memory scope (after this replica moved or removed a workspace).
    pub fn forget_memory_scopes(&self) {
        if let Some(m) = &self.memory {
            m.scopes.map().clear();
        }
    }

    /// Whether `ws` may write `namespace` (its writable set, through the scope cache).
    pub async fn may_write(&self, ws: Uuid, namespace: &str) -> MemoryResult<bool> {
        Ok(self
            .readable_scopes(ws)
            .await?
            .iter()
            .any(|n| n.writable && n.name.as_str() == namespace))
    }

    /// `commit_memory_v2`: blank check, `can_write`, expiry, redaction, commit (upserting the
    /// namespace when the plugin says it is missing), org audit, activity row.
    pub async fn commit_memory(&self, ws: Uuid, input: Commit) -> MemoryResult<MemoryWriteResponse> {
        self.commit_as(ws, input, ActivityType::MemoryWrite, None).await
    }

    /// `commit_summary`: a `summary` that expires after 30 days unless told otherwise. Unlike
    /// the original, the namespace is upserted (its missing upsert failed on fresh namespaces)
    /// and a bad `expires_at` is refused rather than ignored.
    pub async fn commit_summary(
        &self,
        ws: Uuid,
        content: String,
        namespace: Option<String>,
        expires_at: Option<String>,
    ) -> MemoryResult<MemoryWriteResponse> {
        let default_expiry = OffsetDateTime::now_utc() + SUMMARY_TTL;
        let input = Commit {
            content,
            namespace,
            kind: Some(MemoryKind::Summary),
            expires_at,
            ..Commit::default()
        };
        self.commit_as(ws, input, ActivityType::MemorySummaryWrite, Some(default_expiry))
            .await
    }

    async fn commit_as(
        &self,
        ws: Uuid,
        input: Commit,
        activity: ActivityType,
        default_expiry: Option<OffsetDateTime>,
    ) -> MemoryResult<MemoryWriteResponse> {
        let m = self.memory()?;
        if input.content.trim().is_empty() {
            return Err(MemoryError::Invalid("content is required".into()));
        }
        let namespace = input.namespace.unwrap_or_else(|| format!("workspace:{ws}"));
        if !self.may_write(ws, &namespace).await? {
            return Err(MemoryError::Forbidden(format!(
                "workspace {ws} cannot write to namespace {namespace}"
            )));
        }
        let expires_at = match input.expires_at.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(raw) => Some(parse_expiry(raw)?),
            None => default_expiry,
        };
        let redacted = redact(&input.content);
        if redacted.total() > 0 {
            tracing::info!(workspace_id = %ws, namespace, redactions = ?redacted.counts, "secrets redacted from a memory");
        }
        // An id of our own: a commit retried after an upsert (or by the caller) is the same
        // memory, never a second one.
        let write = MemoryWrite {
            id: Some(Uuid::new_v4()),
            kind: input.kind.unwrap_or(MemoryKind::Fact),
            source: input.source.unwrap_or(MemorySource::Agent),
            expires_at,
            pin: input.pin.unwrap_or(false),
            propagation: input.propagation,
            ..MemoryWrite::fact(redacted.text.clone())
        };
        // The namespace is created before its first memory: the commit says when it is
        // missing (404), and only then is it upserted (an upsert on every write would reset
        // an operator's expiry and metadata on it, and cost a call).
        let written = match m.client.commit(&namespace, &write).await {
            Err(e) if e.code() == Some(molecule_memory_contract::ErrorCode::NotFound) => {
                m.client
                    .upsert_namespace(
                        &namespace,
                        &NamespaceUpsert {
                            kind: kind_of(&namespace),
                            expires_at: None,
                            metadata: None,
                        },
                    )
                    .await?;
                m.client.commit(&namespace, &write).await?
            }
            other => other?,
        };
        let redactions = json!(redacted.counts);
        if namespace.starts_with("org:") {
            let digest = hex(&Sha256::digest(redacted.text.as_bytes()));
            self.audit(
                ws,
                ActivityType::MemoryWriteGlobal,
                Some(written.id),
                &namespace,
                format!("ORG memory written: id={} namespace={namespace}", written.id),
                json!({ "memory_id": written.id, "namespace": namespace, "content_sha256": digest, "redactions": redactions }),
            )
            .await;
        }
        let verb = if activity == ActivityType::MemorySummaryWrite {
            "commit_summary"
        } else {
            "commit_memory"
        };
        self.audit(
            ws,
            activity,
            Some(written.id),
            &namespace,
            format!("{verb} to {namespace}"),
            json!({ "memory_id": written.id, "namespace": namespace, "redactions": redactions }),
        )
        .await;
        Ok(written)
    }

    /// `search_memory`: the readable namespaces, narrowed to those named (a name the workspace
    /// cannot read is refused, never silently dropped), org content wrapped.
    pub async fn search_memory(&self, ws: Uuid, input: Search) -> MemoryResult<Vec<Memory>> {
        let mut memories = self.search_unwrapped(ws, input).await?;
        memories.iter_mut().for_each(wrap_org);
        Ok(memories)
    }

    /// `search_memory` without the org wrap (the HTTP listing shows content as stored).
    async fn search_unwrapped(&self, ws: Uuid, input: Search) -> MemoryResult<Vec<Memory>> {
        let m = self.memory()?;
        if let Some(limit) = input.limit
            && !(1..=molecule_memory_contract::MAX_SEARCH_LIMIT).contains(&limit)
        {
            return Err(MemoryError::Invalid(format!(
                "limit must be between 1 and {} (got {limit})",
                molecule_memory_contract::MAX_SEARCH_LIMIT
            )));
        }
        let readable = self.readable_scopes(ws).await?;
        let namespaces: Vec<String> = if input.namespaces.is_empty() {
            readable.iter().map(|n| n.name.to_string()).collect()
        } else {
            let mut out = Vec::new();
            for requested in &input.namespaces {
                if !readable.iter().any(|n| n.name.as_str() == requested) {
                    return Err(MemoryError::Forbidden(format!(
                        "workspace {ws} cannot read namespace {requested}"
                    )));
                }
                if !out.contains(requested) {
                    out.push(requested.clone());
                }
            }
            out
        };
        let found = m
            .client
            .search(&SearchRequest {
                namespaces,
                query: input.query.filter(|q| !q.trim().is_empty()),
                kinds: (!input.kinds.is_empty()).then_some(input.kinds),
                limit: input.limit,
                ..SearchRequest::default()
            })
            .await?;
        Ok(found.memories)
    }

    /// `forget_memory`: only from a namespace the workspace may write.
    pub async fn forget_memory(&self, ws: Uuid, memory_id: Uuid, namespace: Option<String>) -> MemoryResult<()> {
        let m = self.memory()?;
        let namespace = namespace.unwrap_or_else(|| format!("workspace:{ws}"));
        if !self.may_write(ws, &namespace).await? {
            return Err(MemoryError::Forbidden(format!(
                "workspace {ws} cannot write to namespace {namespace}"
            )));
        }
        m.client
            .forget(
                memory_id,
                &ForgetRequest {
                    requested_by_namespace: namespace.clone(),
                },
            )
            .await?;
        self.audit(
            ws,
            ActivityType::MemoryDelete,
            Some(memory_id),
            &namespace,
            format!("forget_memory {memory_id} from {namespace}"),
            json!({ "memory_id": memory_id, "namespace": namespace }),
        )
        .await;
        Ok(())
    }

    /// The legacy scope's writable namespace.
    pub async fn legacy_namespace(&self, ws: Uuid, scope: LegacyScope) -> MemoryResult<String> {
        let writable = self.memory_namespaces(ws, true).await?;
        let kind = match scope {
            LegacyScope::Local => NamespaceKind::Workspace,
            LegacyScope::Team => NamespaceKind::Team,
        };
        writable
            .into_iter()
            .find(|n| n.kind == kind)
            .map(|n| n.name.to_string())
            .ok_or_else(|| {
                MemoryError::Forbidden(format!("workspace {ws} has no writable {} namespace", scope.as_str()))
            })
    }

    /// Legacy `recall_memory`: no scope reads everything readable; LOCAL the workspace's own;
    /// TEAM its own and its team's. At most 50, org content wrapped.
    pub async fn recall_memory(
        &self,
        ws: Uuid,
        query: Option<String>,
        scope: Option<LegacyScope>,
    ) -> MemoryResult<Vec<Memory>> {
        let readable = self.memory_namespaces(ws, false).await?;
        let namespaces = readable
            .into_iter()
            .filter(|n| match scope {
                None => true,
                Some(LegacyScope::Local) => n.kind == NamespaceKind::Workspace,
                Some(LegacyScope::Team) => matches!(n.kind, NamespaceKind::Workspace | NamespaceKind::Team),
            })
            .map(|n| n.name.to_string())
            .collect();
        self.search_memory(
            ws,
            Search {
                query,
                namespaces,
                kinds: Vec::new(),
                limit: Some(RECALL_LIMIT),
            },
        )
        .await
    }

    /// `POST /workspaces/:id/memories`: a memory in the legacy scope's namespace, written as
    /// the user; GLOBAL (the org namespace) only from a root workspace, with `[MEMORY ` escaped
    /// so stored text cannot pose as the org wrap.
    pub async fn remember(
        &self,
        ws: Uuid,
        input: molecule_api::memories::NewMemory,
    ) -> molecule_tree::Result<molecule_api::memories::StoredMemory> {
        let scope = input.scope.trim().to_ascii_uppercase();
        let label = input
            .namespace
            .as_deref()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .unwrap_or("general")
            .to_owned();
        if label.chars().count() > 50 {
            return Err(molecule_tree::ServiceError::invalid(
                "namespace",
                "at most 50 characters",
            ));
        }
        if input.content.trim().is_empty() {
            return Err(molecule_tree::ServiceError::invalid("content", "must not be empty"));
        }
        let kind = match scope.as_str() {
            "LOCAL" => NamespaceKind::Workspace,
            "TEAM" => NamespaceKind::Team,
            "GLOBAL" => NamespaceKind::Org,
            _ => {
                return Err(molecule_tree::ServiceError::invalid(
                    "scope",
                    format!("must be LOCAL, TEAM or GLOBAL (got {:?})", input.scope),
                ));
            }
        };
        let writable = self.memory_namespaces(ws, true).await.map_err(into_service)?;
        let Some(namespace) = writable
            .into_iter()
            .find(|n| n.kind == kind)
            .map(|n| n.name.to_string())
        else {
            return Err(molecule_tree::ServiceError::Forbidden(if kind == NamespaceKind::Org {
                "only root workspaces can write GLOBAL memories".into()
            } else {
                format!("workspace {ws} has no writable {scope} namespace")
            }));
        };
        let content = if kind == NamespaceKind::Org {
            input.content.replace("[MEMORY ", "[_MEMORY ")
        } else {
            input.content
        };
        let mut propagation = molecule_memory_contract::JsonObject::new();
        propagation.insert("label".into(), json!(label));
        let written = self
            .commit_memory(
                ws,
                Commit {
                    content,
                    namespace: Some(namespace.clone()),
                    source: Some(MemorySource::User),
                    propagation: Some(propagation),
                    ..Commit::default()
                },
            )
            .await
            .map_err(into_service)?;
        Ok(molecule_api::memories::StoredMemory {
            id: written.id,
            scope,
            namespace: label,
            memory_namespace: namespace,
        })
    }

    /// `GET /workspaces/:id/memories`: what the workspace may read (narrowed by a legacy
    /// scope), newest or best match first, at most `limit` (1..=100, default 50), as stored.
    pub async fn list_memories(
        &self,
        ws: Uuid,
        query: Option<String>,
        scope: Option<&str>,
        limit: Option<u32>,
    ) -> molecule_tree::Result<Vec<molecule_api::memories::MemoryItem>> {
        let limit = limit.unwrap_or(RECALL_LIMIT);
        if !(1..=molecule_memory_contract::MAX_SEARCH_LIMIT).contains(&limit) {
            return Err(molecule_tree::ServiceError::invalid(
                "limit",
                "must be between 1 and 100",
            ));
        }
        let kind = match scope.map(|s| s.trim().to_ascii_uppercase()).as_deref() {
            None | Some("") => None,
            Some("LOCAL") => Some(NamespaceKind::Workspace),
            Some("TEAM") => Some(NamespaceKind::Team),
            Some("GLOBAL") => Some(NamespaceKind::Org),
            Some(other) => {
                return Err(molecule_tree::ServiceError::invalid(
                    "scope",
                    format!("must be LOCAL, TEAM or GLOBAL (got {other:?})"),
                ));
            }
        };
        let readable = self.memory_namespaces(ws, false).await.map_err(into_service)?;
        let namespaces = readable
            .into_iter()
            .filter(|n| kind.is_none_or(|k| n.kind == k))
            .map(|n| n.name.to_string())
            .collect();
        let found = self
            .search_unwrapped(
                ws,
                Search {
                    query,
                    namespaces,
                    kinds: Vec::new(),
                    limit: Some(limit),
                },
            )
            .await
            .map_err(into_service)?;
        Ok(found
            .into_iter()
            .map(|m| molecule_api::memories::MemoryItem {
                id: m.id,
                scope: scope_of(&m.namespace).to_owned(),
                namespace: m
                    .propagation
                    .as_ref()
                    .and_then(|p| p.get("label"))
                    .and_then(|l| l.as_str())
                    .unwrap_or("general")
                    .to_owned(),
                memory_namespace: m.namespace,
                content: m.content,
                created_at: m.created_at,
            })
            .collect())
    }

    /// `DELETE /workspaces/:id/memories/:memory_id`: from whichever namespace the workspace may
    /// write holds it; 404 when none does.
    pub async fn forget_anywhere(&self, ws: Uuid, memory_id: Uuid) -> molecule_tree::Result<()> {
        let writable = self.memory_namespaces(ws, true).await.map_err(into_service)?;
        for n in writable {
            match self.forget_memory(ws, memory_id, Some(n.name.to_string())).await {
                Ok(()) => return Ok(()),
                // Not in this namespace (404), or held by another one (the plugin's 403).
                Err(MemoryError::NotFound) => {}
                Err(MemoryError::Plugin(e)) if e.code() == Some(molecule_memory_contract::ErrorCode::Forbidden) => {}
                Err(e) => return Err(into_service(e)),
            }
        }
        Err(molecule_tree::ServiceError::NotFound("memory not found".into()))
    }

    /// After a purge: deletes the purged workspaces' namespaces (`workspace:`, and `team:` and
    /// `org:` named after them, which only the purged subtree could read), memories included.
    /// Best effort: a failure is logged with the namespace, and an absent one is fine.
    pub async fn purge_memory(&self, ids: &[Uuid]) {
        let Some(m) = self.memory.as_ref() else { return };
        for id in ids {
            for prefix in ["workspace", "team", "org"] {
                let namespace = format!("{prefix}:{id}");
                match m.client.delete_namespace(&namespace).await {
                    Ok(()) => {
                        tracing::info!(workspace_id = %id, namespace, "purged workspace's memory namespace deleted")
                    }
                    Err(e) if e.code() == Some(molecule_memory_contract::ErrorCode::NotFound) => {}
                    Err(e) => {
                        tracing::warn!(workspace_id = %id, namespace, error = %e, "purged workspace's memory namespace not deleted")
                    }
                }
            }
        }
    }

    /// An audit row (and its `ACTIVITY_LOGGED`); a failure is logged, never the caller's.
    pub async fn audit(
        &self,
        ws: Uuid,
        ty: ActivityType,
        target: Option<Uuid>,
        namespace: &str,
        summary: String,
        request_body: serde_json::Value,
    ) {
        let row = ActivityRow {
            source_id: Some(ws),
            target_id: target,
            method: Some(namespace),
            summary: Some(&summary),
            request_body: Some(&request_body),
            ..ActivityRow::new(ws, ty, ActivityStatus::Ok)
        };
        if let Err(e) = self.workspaces.log_platform_activity(row).await {
            tracing::warn!(workspace_id = %ws, activity_type = ty.as_str(), error = %e.chain(), "memory audit row not written");
        }
    }
}

/// A memory failure as the HTTP layer reports it: not configured or the plugin failing is 503
/// (retry once it is back), refusals keep their status.
pub fn into_service(e: MemoryError) -> molecule_tree::ServiceError {
    match e {
        MemoryError::NotConfigured | MemoryError::Plugin(_) => molecule_tree::ServiceError::NotReady(e.to_string()),
        MemoryError::Invalid(m) => molecule_tree::ServiceError::Invalid {
            field: "body",
            message: m,
        },
        MemoryError::Forbidden(m) => molecule_tree::ServiceError::Forbidden(m),
        MemoryError::NotFound => molecule_tree::ServiceError::NotFound("memory not found".into()),
        MemoryError::WorkspaceNotFound(id) => {
            molecule_tree::ServiceError::NotFound(format!("workspace {id} not found"))
        }
        MemoryError::Tree(source) => source,
        MemoryError::CannotPage { .. } => molecule_tree::ServiceError::NotReady(e.to_string()),
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_and_kinds_follow_the_prefix() {
        assert_eq!(scope_of("workspace:x"), "LOCAL");
        assert_eq!(scope_of("team:x"), "TEAM");
        assert_eq!(scope_of("org:x"), "GLOBAL");
        assert_eq!(kind_of("org:x"), NamespaceKind::Org);
        assert_eq!(kind_of("project:x"), NamespaceKind::Custom);
    }

    #[test]
    fn a_bad_expiry_names_the_argument() {
        let e = parse_expiry("tomorrow").unwrap_err().to_string();
        assert_eq!(e, "invalid expires_at: must be RFC3339 (got \"tomorrow\")");
        assert!(parse_expiry("2030-01-01T00:00:00Z").is_ok());
    }
}
