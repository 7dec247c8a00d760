//! Memory's operator paths and the writes that do not come from an agent's tool call: the
//! admin export (every namespace of the tree, paged, streamed) and import (idempotent by id,
//! `dry_run`, `on_conflict`), editing a memory over HTTP, and seeding a new workspace's
//! `initial_memories`.
//!
//! Owns: which namespaces the tree has and whose they are, the export's paging (one plugin
//! search per page per namespace, never a call per memory), an import's plan (existing ids
//! read 100 at a time, namespaces created when missing) and its report. Must not know: HTTP, or
//! how the plugin stores memories (it speaks Memory Plugin v1 and its listing extension).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use futures_util::stream::{self, Stream, StreamExt};
use molecule_api::memories::{EditedMemory, ExportedMemory, ImportError, ImportReport, InitialMemory};
use molecule_domain::{ActivityType, NamespaceKind};
use molecule_memory_contract::client::ClientError;
use molecule_memory_contract::{
    ErrorCode, MAX_SEARCH_LIMIT, Memory, MemoryKind, MemorySource, MemoryWrite, NamespaceUpsert, SearchRequest,
    validate_namespace_name,
};
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::memory::{Commit, MemoryError, MemoryLayer, MemoryResult, into_service, kind_of, scope_of};
use molecule_secrets::redact::redact;
use molecule_tree::error::{Result, ServiceError};
use molecule_tree::workspaces::TreeNode;

/// Largest `initial_memories` entry, in bytes (the original truncated there; we refuse).
pub const MAX_INITIAL_MEMORY_BYTES: usize = 100_000;
/// Most `initial_memories` entries one workspace may carry.
pub const MAX_INITIAL_MEMORIES: usize = 1000;
/// Concurrent plugin writes of one import.
const IMPORT_CONCURRENCY: usize = 8;
/// Failures an import report details (all are counted).
const MAX_ERROR_DETAILS: usize = 100;
/// Where import keeps an entry's `created_at` (the plugin stamps its own).
const ORIGINAL_CREATED_AT: &str = "original_created_at";

/// What import does with an id the plugin already holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnConflict {
    #[default]
    Skip,
    Overwrite,
}

impl OnConflict {
    pub fn parse(raw: Option<&str>) -> Result<Self> {
        match raw.map(str::trim) {
            None | Some("" | "skip") => Ok(Self::Skip),
            Some("overwrite") => Ok(Self::Overwrite),
            Some(other) => Err(ServiceError::invalid(
                "on_conflict",
                format!("must be skip or overwrite (got {other:?})"),
            )),
        }
    }
}

/// The tree's namespaces and who owns each.
pub struct Tree {
    nodes: HashMap<Uuid, TreeNode>,
    /// Namespace → owning workspace, for every workspace's `workspace:`, `team:` and `org:`.
    owners: BTreeMap<String, Uuid>,
}

impl Tree {
    pub fn new(nodes: Vec<TreeNode>) -> Self {
        let nodes: HashMap<Uuid, TreeNode> = nodes.into_iter().map(|n| (n.id, n)).collect();
        let mut tree = Self {
            nodes,
            owners: BTreeMap::new(),
        };
        let ids: Vec<Uuid> = tree.nodes.keys().copied().collect();
        for id in ids {
            for ns in [
                tree.namespace(id, NamespaceKind::Workspace),
                tree.namespace(id, NamespaceKind::Team),
                tree.namespace(id, NamespaceKind::Org),
            ]
            .into_iter()
            .flatten()
            {
                let owner = ns.split_once(':').and_then(|(_, o)| o.parse().ok()).unwrap_or(id);
                tree.owners.insert(ns, owner);
            }
        }
        tree
    }

    /// The root above `id` (50 levels at most, like the resolver; a cycle stops there).
    fn root(&self, id: Uuid) -> Uuid {
        let mut at = id;
        for _ in 0..50 {
            match self.nodes.get(&at).and_then(|n| n.parent_id) {
                Some(p) if self.nodes.contains_key(&p) => at = p,
                _ => break,
            }
        }
        at
    }

    /// The namespace of `kind` that workspace `id` writes (the resolver's rule: team is the
    /// parent's, or its own for a root; org is the root's).
    pub fn namespace(&self, id: Uuid, kind: NamespaceKind) -> Option<String> {
        let node = self.nodes.get(&id)?;
        Some(match kind {
            NamespaceKind::Workspace => format!("workspace:{id}"),
            NamespaceKind::Team => format!("team:{}", node.parent_id.unwrap_or(id)),
            NamespaceKind::Org => format!("org:{}", self.root(id)),
            NamespaceKind::Custom => return None,
        })
    }

    fn owner_of(&self, namespace: &str) -> Option<&TreeNode> {
        self.owners.get(namespace).and_then(|id| self.nodes.get(id))
    }
}

/// Where an export is: the namespaces still to read, the page token of the current one, and
/// the memories read but not yet sent.
struct ExportCursor {
    layer: MemoryLayer,
    tree: Tree,
    namespaces: VecDeque<String>,
    page_token: Option<String>,
    last_first_id: Option<Uuid>,
    ready: VecDeque<Memory>,
}

impl ExportCursor {
    /// The next memory, reading the next page (or namespace) when the buffer is empty.
    async fn next(mut self) -> MemoryResult<Option<(ExportedMemory, Self)>> {
        loop {
            if let Some(m) = self.ready.pop_front() {
                let entry = self.entry(m);
                return Ok(Some((entry, self)));
            }
            let Some(namespace) = self.namespaces.front().cloned() else {
                return Ok(None);
            };
            let page = self
                .layer
                .client
                .search(&SearchRequest {
                    namespaces: vec![namespace.clone()],
                    limit: Some(MAX_SEARCH_LIMIT),
                    page_token: self.page_token.take(),
                    ..SearchRequest::default()
                })
                .await?;
            let full = page.memories.len() >= MAX_SEARCH_LIMIT as usize;
            let first = page.memories.first().map(|m| m.id);
            if first.is_some() && first == self.last_first_id {
                return Err(MemoryError::CannotPage { namespace });
            }
            match page.next_page_token {
                Some(token) => {
                    self.page_token = Some(token);
                    self.last_first_id = first;
                }
                None if full => return Err(MemoryError::CannotPage { namespace }),
                None => {
                    self.namespaces.pop_front();
                    self.last_first_id = None;
                }
            }
            self.ready.extend(page.memories);
        }
    }

    fn entry(&self, m: Memory) -> ExportedMemory {
        let owner = self.tree.owner_of(&m.namespace);
        let created_at = m
            .propagation
            .as_ref()
            .and_then(|p| p.get(ORIGINAL_CREATED_AT))
            .and_then(|v| v.as_str())
            .and_then(|s| time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok())
            .unwrap_or(m.created_at);
        ExportedMemory {
            id: Some(m.id),
            content: redact(&m.content).text,
            scope: Some(scope_of(&m.namespace).to_owned()),
            kind: Some(m.kind),
            source: Some(m.source),
            pin: Some(m.pin),
            expires_at: m.expires_at,
            propagation: m.propagation,
            created_at: Some(created_at),
            workspace_name: owner.map(|o| o.name.clone()),
            workspace_id: owner.map(|o| o.id),
            namespace: Some(m.namespace),
        }
    }
}

/// One import entry, checked and placed.
struct Planned {
    index: usize,
    namespace: String,
    write: MemoryWrite,
}

impl crate::Memory {
    /// `GET /admin/memories/export`: every memory of every namespace the tree has
    /// (`workspace:`, `team:` and `org:` of each workspace, removed ones included), namespace by
    /// namespace, 100 per plugin search, content redacted again. The stream ends with an error
    /// (never silently short) if the plugin fails or cannot page.
    pub async fn export_memories(&self) -> Result<impl Stream<Item = MemoryResult<ExportedMemory>> + use<>> {
        let layer = self.memory().map_err(into_service)?.clone();
        let tree = Tree::new(self.workspaces.tree_nodes().await?);
        let namespaces = tree.owners.keys().cloned().collect();
        let cursor = ExportCursor {
            layer,
            tree,
            namespaces,
            page_token: None,
            last_first_id: None,
            ready: VecDeque::new(),
        };
        Ok(stream::try_unfold(cursor, ExportCursor::next))
    }

    /// `POST /admin/memories/import`: see [`ImportReport`]. Entries are checked first (each
    /// failure is reported with its index, the rest still go in), placed in a namespace
    /// (theirs, or the legacy scope's of the named workspace), redacted, then written by id.
    pub async fn import_memories(
        &self,
        entries: Vec<serde_json::Value>,
        dry_run: bool,
        on_conflict: OnConflict,
    ) -> Result<ImportReport> {
        let layer = self.memory().map_err(into_service)?.clone();
        let tree = Tree::new(self.workspaces.tree_nodes().await?);
        let mut report = ImportReport {
            total: entries.len(),
            dry_run,
            ..ImportReport::default()
        };
        let mut failures: Vec<ImportError> = Vec::new();
        let mut by_namespace: BTreeMap<String, Vec<Planned>> = BTreeMap::new();
        for (index, raw) in entries.into_iter().enumerate() {
            match plan(&tree, index, raw, &mut report.redactions) {
                Ok(p) => by_namespace.entry(p.namespace.clone()).or_default().push(p),
                Err(error) => failures.push(ImportError { index, error }),
            }
        }
        report.namespaces = by_namespace.len();
        for (namespace, planned) in by_namespace {
            let existing = match existing_ids(&layer, &namespace, &planned).await {
                Ok(e) => e,
                Err(e) => {
                    let error = format!("reading {namespace}: {e}");
                    failures.extend(planned.iter().map(|p| ImportError {
                        index: p.index,
                        error: error.clone(),
                    }));
                    continue;
                }
            };
            let mut to_write = Vec::new();
            for p in planned {
                let held = p.write.id.is_some_and(|id| existing.contains(&id));
                match (held, on_conflict) {
                    (true, OnConflict::Skip) => report.skipped += 1,
                    (true, OnConflict::Overwrite) => to_write.push((p, true)),
                    (false, _) => to_write.push((p, false)),
                }
            }
            if dry_run {
                for (_, held) in &to_write {
                    if *held {
                        report.overwritten += 1;
                    } else {
                        report.imported += 1;
                    }
                }
                continue;
            }
            // The first write creates the namespace if need be; the rest go concurrently.
            let mut rest = to_write.into_iter();
            let mut results = Vec::new();
            if let Some((first, held)) = rest.next() {
                let r = write_creating(&layer, &first.namespace, &first.write).await;
                results.push((first.index, held, r));
            }
            let more: Vec<_> = stream::iter(rest)
                .map(|(p, held)| {
                    let layer = &layer;
                    async move { (p.index, held, write_creating(layer, &p.namespace, &p.write).await) }
                })
                .buffer_unordered(IMPORT_CONCURRENCY)
                .collect()
                .await;
            results.extend(more);
            for (index, held, r) in results {
                match r {
                    Ok(()) if held => report.overwritten += 1,
                    Ok(()) => report.imported += 1,
                    Err(e) => failures.push(ImportError {
                        index,
                        error: e.to_string(),
                    }),
                }
            }
        }
        failures.sort_by_key(|f| f.index);
        report.errors = failures.len();
        report.error_details = failures.into_iter().take(MAX_ERROR_DETAILS).collect();
        tracing::info!(
            total = report.total,
            imported = report.imported,
            overwritten = report.overwritten,
            skipped = report.skipped,
            errors = report.errors,
            dry_run,
            "memory import"
        );
        Ok(report)
    }

    /// `PATCH /workspaces/:id/memories/:memory_id`: new content for a memory in a namespace the
    /// workspace may write, redacted again; kind, pin, expiry and propagation are kept. Equal
    /// content after redaction changes nothing. Reads the memory through the plugin's `ids`
    /// listing extension (a plugin without it answers as if the memory were not there).
    pub async fn edit_memory(&self, ws: Uuid, memory_id: Uuid, content: String) -> Result<EditedMemory> {
        if content.trim().is_empty() {
            return Err(ServiceError::invalid("content", "must not be empty"));
        }
        let m = self.memory().map_err(into_service)?;
        let writable: Vec<String> = self
            .memory_namespaces(ws, true)
            .await
            .map_err(into_service)?
            .into_iter()
            .map(|n| n.name.to_string())
            .collect();
        let found = m
            .client
            .search(&SearchRequest {
                namespaces: writable,
                ids: Some(vec![memory_id]),
                limit: Some(1),
                ..SearchRequest::default()
            })
            .await
            .map_err(|e| into_service(e.into()))?
            .memories
            .into_iter()
            .find(|mem| mem.id == memory_id)
            .ok_or_else(|| ServiceError::NotFound("memory not found".into()))?;
        let content = if found.namespace.starts_with("org:") {
            content.replace("[MEMORY ", "[_MEMORY ")
        } else {
            content
        };
        let redacted = redact(&content);
        if redacted.text == found.content {
            return Ok(EditedMemory {
                id: memory_id,
                memory_namespace: found.namespace,
                changed: false,
            });
        }
        let write = MemoryWrite {
            id: Some(memory_id),
            kind: found.kind,
            source: found.source,
            expires_at: found.expires_at,
            pin: found.pin,
            propagation: found.propagation.clone(),
            ..MemoryWrite::fact(redacted.text.clone())
        };
        m.client
            .commit(&found.namespace, &write)
            .await
            .map_err(|e| into_service(e.into()))?;
        let digest = crate::memory::hex(&Sha256::digest(redacted.text.as_bytes()));
        self.audit(
            ws,
            ActivityType::MemoryWrite,
            Some(memory_id),
            &found.namespace,
            format!("edit_memory {memory_id} in {}", found.namespace),
            json!({ "memory_id": memory_id, "namespace": found.namespace, "content_sha256": digest, "redactions": redacted.counts }),
        )
        .await;
        Ok(EditedMemory {
            id: memory_id,
            memory_namespace: found.namespace,
            changed: true,
        })
    }

    /// Checks `initial_memories` before a workspace is created: memory is on, each entry has
    /// content within [`MAX_INITIAL_MEMORY_BYTES`] and a scope the new workspace can write
    /// (GLOBAL only for a root).
    pub fn check_initial_memories(&self, memories: &[InitialMemory], root: bool) -> Result<()> {
        if memories.is_empty() {
            return Ok(());
        }
        if !self.memory_enabled() {
            return Err(ServiceError::invalid(
                "initial_memories",
                "memory is not configured on this server (set MEMORY_PLUGIN_URL), so nothing could hold them",
            ));
        }
        if memories.len() > MAX_INITIAL_MEMORIES {
            return Err(ServiceError::invalid(
                "initial_memories",
                format!("at most {MAX_INITIAL_MEMORIES} entries (got {})", memories.len()),
            ));
        }
        for (i, m) in memories.iter().enumerate() {
            if m.content.trim().is_empty() {
                return Err(ServiceError::invalid(
                    "initial_memories",
                    format!("initial_memories[{i}].content must not be empty"),
                ));
            }
            if m.content.contains('\0') {
                return Err(ServiceError::invalid(
                    "initial_memories",
                    format!("initial_memories[{i}].content must not contain NUL characters"),
                ));
            }
            if m.content.len() > MAX_INITIAL_MEMORY_BYTES {
                return Err(ServiceError::invalid(
                    "initial_memories",
                    format!(
                        "initial_memories[{i}].content is {} bytes; at most {MAX_INITIAL_MEMORY_BYTES}",
                        m.content.len()
                    ),
                ));
            }
            match initial_kind(m.scope.as_deref()) {
                Some(NamespaceKind::Org) if !root => {
                    return Err(ServiceError::invalid(
                        "initial_memories",
                        format!(
                            "initial_memories[{i}].scope GLOBAL is for root workspaces only (this one has a parent)"
                        ),
                    ));
                }
                Some(_) => {}
                None => {
                    return Err(ServiceError::invalid(
                        "initial_memories",
                        format!(
                            "initial_memories[{i}].scope must be LOCAL, TEAM or GLOBAL (got {:?})",
                            m.scope.as_deref().unwrap_or_default()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Writes a new workspace's checked `initial_memories` (as the runtime, redacted, audited
    /// like any commit). On a failure the ones already written are forgotten again and the
    /// error says which entry failed.
    pub async fn seed_initial_memories(&self, ws: Uuid, memories: &[InitialMemory]) -> Result<()> {
        let mut written: Vec<(Uuid, String)> = Vec::new();
        for (i, m) in memories.iter().enumerate() {
            let kind = initial_kind(m.scope.as_deref()).unwrap_or(NamespaceKind::Workspace);
            let outcome = async {
                let namespace = self.writable_of_kind(ws, kind).await?;
                let done = self
                    .commit_memory(
                        ws,
                        Commit {
                            content: m.content.clone(),
                            namespace: Some(namespace),
                            source: Some(MemorySource::Runtime),
                            ..Commit::default()
                        },
                    )
                    .await?;
                MemoryResult::Ok((done.id, done.namespace))
            }
            .await;
            match outcome {
                Ok(w) => written.push(w),
                Err(e) => {
                    for (id, namespace) in written {
                        let _ = self.forget_memory(ws, id, Some(namespace)).await;
                    }
                    return Err(match e {
                        MemoryError::Invalid(m) => ServiceError::invalid(
                            "initial_memories",
                            format!("initial_memories[{i}]: {m}; the workspace was not created"),
                        ),
                        e => ServiceError::NotReady(format!(
                            "initial_memories[{i}] could not be stored, so the workspace was not created: {e}"
                        )),
                    });
                }
            }
        }
        Ok(())
    }

    async fn writable_of_kind(&self, ws: Uuid, kind: NamespaceKind) -> MemoryResult<String> {
        self.memory_namespaces(ws, true)
            .await?
            .into_iter()
            .find(|n| n.kind == kind)
            .map(|n| n.name.to_string())
            .ok_or_else(|| MemoryError::Forbidden(format!("workspace {ws} has no writable {kind:?} namespace")))
    }
}

/// The namespace kind of an `initial_memories` scope (default LOCAL); `None` when unknown.
fn initial_kind(scope: Option<&str>) -> Option<NamespaceKind> {
    match scope.map(|s| s.trim().to_ascii_uppercase()).as_deref() {
        None | Some("" | "LOCAL") => Some(NamespaceKind::Workspace),
        Some("TEAM") => Some(NamespaceKind::Team),
        Some("GLOBAL") => Some(NamespaceKind::Org),
        Some(_) => None,
    }
}

/// An entry with a plugin namespace is placed by it; the labels an export writes beside it
/// (`scope`, `workspace_id`, `workspace_name`) must then agree with it, so an edited file that
/// means another place is refused rather than written where it does not say. The name is
/// checked when the owning workspace exists here (an export from another platform names
/// workspaces this one does not have).
fn placed_consistently(tree: &Tree, namespace: &str, entry: &ExportedMemory) -> std::result::Result<(), String> {
    if let Some(scope) = entry.scope.as_deref()
        && !scope.trim().eq_ignore_ascii_case(scope_of(namespace))
    {
        return Err(format!(
            "scope {scope:?} does not match namespace {namespace} (which reads as {}); drop scope or fix it",
            scope_of(namespace)
        ));
    }
    let owner_id = match kind_of(namespace) {
        NamespaceKind::Custom => None,
        _ => namespace.split_once(':').and_then(|(_, id)| id.parse::<Uuid>().ok()),
    };
    if let Some(id) = entry.workspace_id {
        match owner_id {
            Some(owner) if owner == id => {}
            Some(owner) => {
                return Err(format!(
                    "workspace_id {id} does not own namespace {namespace} (workspace {owner} does)"
                ));
            }
            None => {
                return Err(format!(
                    "workspace_id {id}: namespace {namespace} belongs to no workspace"
                ));
            }
        }
    }
    if let Some(name) = entry.workspace_name.as_deref()
        && let Some(owner) = tree.owner_of(namespace)
        && owner.name != name
    {
        return Err(format!(
            "workspace_name {name:?} is not the name of namespace {namespace}'s workspace ({:?})",
            owner.name
        ));
    }
    Ok(())
}

/// Checks one import entry and places it; the error is what the report says of it.
fn plan(
    tree: &Tree,
    index: usize,
    raw: serde_json::Value,
    redactions: &mut BTreeMap<String, usize>,
) -> std::result::Result<Planned, String> {
    let entry: ExportedMemory = serde_json::from_value(raw).map_err(|e| format!("not a memory entry: {e}"))?;
    if entry.content.trim().is_empty() {
        return Err("content must not be empty".into());
    }
    let namespace = match entry.namespace.as_deref().map(str::trim) {
        Some(n) if validate_namespace_name("namespace", n).is_ok() => {
            placed_consistently(tree, n, &entry)?;
            n.to_owned()
        }
        // The original's entries: a label (`general`) and a scope of a named workspace.
        _ => {
            let owner = match (entry.workspace_id, entry.workspace_name.as_deref()) {
                (Some(id), _) => tree.nodes.get(&id).ok_or_else(|| format!("no workspace {id}"))?,
                (None, Some(name)) => tree
                    .nodes
                    .values()
                    .filter(|n| n.name == name)
                    .min_by_key(|n| n.id)
                    .ok_or_else(|| format!("no workspace named {name:?}"))?,
                (None, None) => {
                    return Err(
                        "give namespace (a plugin namespace such as workspace:<id>) or workspace_id/workspace_name with scope"
                            .into(),
                    );
                }
            };
            let kind = initial_kind(entry.scope.as_deref())
                .ok_or_else(|| format!("scope must be LOCAL, TEAM or GLOBAL (got {:?})", entry.scope))?;
            tree.namespace(owner.id, kind)
                .ok_or_else(|| format!("no {kind:?} namespace for workspace {}", owner.id))?
        }
    };
    let redacted = redact(&entry.content);
    for (label, n) in &redacted.counts {
        *redactions.entry((*label).to_owned()).or_default() += n;
    }
    let mut propagation = entry.propagation;
    if let Some(at) = entry.created_at {
        let p = propagation.get_or_insert_with(Default::default);
        if !p.contains_key(ORIGINAL_CREATED_AT)
            && let Ok(text) = at.format(&time::format_description::well_known::Rfc3339)
        {
            p.insert(ORIGINAL_CREATED_AT.into(), json!(text));
        }
    }
    // No id: one derived from where and what, so the same file imported twice is one copy.
    let id = entry.id.unwrap_or_else(|| {
        let digest = Sha256::digest(format!("{namespace}\n{}", redacted.text).as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        uuid::Builder::from_custom_bytes(bytes).into_uuid()
    });
    let write = MemoryWrite {
        id: Some(id),
        kind: entry.kind.unwrap_or(MemoryKind::Fact),
        source: entry.source.unwrap_or(MemorySource::Agent),
        expires_at: entry.expires_at,
        pin: entry.pin.unwrap_or(false),
        propagation,
        ..MemoryWrite::fact(redacted.text)
    };
    write.validate().map_err(|e| e.to_string())?;
    Ok(Planned {
        index,
        namespace,
        write,
    })
}

/// Which of `planned`'s ids `namespace` already holds: one listing per 100 ids.
async fn existing_ids(layer: &MemoryLayer, namespace: &str, planned: &[Planned]) -> MemoryResult<BTreeSet<Uuid>> {
    let ids: Vec<Uuid> = planned.iter().filter_map(|p| p.write.id).collect();
    let mut held = BTreeSet::new();
    for chunk in ids.chunks(MAX_SEARCH_LIMIT as usize) {
        let found = layer
            .client
            .search(&SearchRequest {
                namespaces: vec![namespace.to_owned()],
                ids: Some(chunk.to_vec()),
                limit: Some(MAX_SEARCH_LIMIT),
                ..SearchRequest::default()
            })
            .await?;
        // A plugin without the `ids` extension lists other memories: keep only those asked for.
        held.extend(found.memories.iter().map(|m| m.id).filter(|id| chunk.contains(id)));
    }
    Ok(held)
}

/// Commits `write`, creating `namespace` (kind by prefix) when the plugin says it is missing.
pub async fn write_creating(
    layer: &MemoryLayer,
    namespace: &str,
    write: &MemoryWrite,
) -> std::result::Result<(), ClientError> {
    match layer.client.commit(namespace, write).await {
        Err(e) if e.code() == Some(ErrorCode::NotFound) => {
            layer
                .client
                .upsert_namespace(
                    namespace,
                    &NamespaceUpsert {
                        kind: kind_of(namespace),
                        expires_at: None,
                        metadata: None,
                    },
                )
                .await?;
            layer.client.commit(namespace, write).await.map(|_| ())
        }
        other => other.map(|_| ()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: u128, parent: Option<u128>) -> TreeNode {
        TreeNode {
            id: Uuid::from_u128(id),
            name: format!("ws{id}"),
            parent_id: parent.map(Uuid::from_u128),
        }
    }

    #[test]
    fn the_tree_names_each_workspace_namespaces_and_their_owners() {
        let tree = Tree::new(vec![node(1, None), node(2, Some(1)), node(3, Some(2))]);
        let grandchild = Uuid::from_u128(3);
        assert_eq!(
            tree.namespace(grandchild, NamespaceKind::Team).unwrap(),
            format!("team:{}", Uuid::from_u128(2))
        );
        assert_eq!(
            tree.namespace(grandchild, NamespaceKind::Org).unwrap(),
            format!("org:{}", Uuid::from_u128(1))
        );
        // Three workspaces, three teams (each parent's and the root's own), one org.
        let kinds: Vec<&str> = tree.owners.keys().map(|k| k.split(':').next().unwrap()).collect();
        assert_eq!(kinds.iter().filter(|k| **k == "workspace").count(), 3);
        assert_eq!(kinds.iter().filter(|k| **k == "team").count(), 2);
        assert_eq!(kinds.iter().filter(|k| **k == "org").count(), 1);
        assert_eq!(
            tree.owner_of(&format!("team:{}", Uuid::from_u128(2))).unwrap().name,
            "ws2"
        );
    }

    #[test]
    fn an_entry_without_a_namespace_is_placed_by_its_workspace_and_scope() {
        let tree = Tree::new(vec![node(1, None), node(2, Some(1))]);
        let mut counts = BTreeMap::new();
        let legacy =
            json!({"content": "deploy on fridays", "scope": "TEAM", "namespace": "general", "workspace_name": "ws2"});
        let p = plan(&tree, 0, legacy.clone(), &mut counts).unwrap();
        assert_eq!(p.namespace, format!("team:{}", Uuid::from_u128(1)));
        // Same entry, same id: importing a file twice is one copy.
        assert_eq!(plan(&tree, 1, legacy, &mut counts).unwrap().write.id, p.write.id);
        let e = plan(
            &tree,
            2,
            json!({"content": "x", "scope": "LOCAL", "workspace_name": "nobody"}),
            &mut counts,
        );
        assert_eq!(e.err().unwrap(), "no workspace named \"nobody\"");
        let e = plan(&tree, 3, json!({"content": "x", "colour": "red"}), &mut counts);
        assert!(e.err().unwrap().contains("unknown field `colour`"));
        let secret = json!({"content": "key AKIAABCDEFGHIJKLMNOP", "namespace": "workspace:x"});
        let p = plan(&tree, 4, secret, &mut counts).unwrap();
        assert!(!p.write.content.contains("AKIA"));
        assert_eq!(counts.values().sum::<usize>(), 1);
    }

    #[test]
    fn labels_beside_a_plugin_namespace_must_agree_with_it() {
        let tree = Tree::new(vec![node(1, None), node(2, Some(1))]);
        let (one, two) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let mut counts = BTreeMap::new();
        let mut try_plan = |entry: serde_json::Value| plan(&tree, 0, entry, &mut counts).map(|p| p.namespace);
        // What an export writes plans back to the same place.
        let exported = json!({"content": "x", "namespace": format!("team:{one}"), "scope": "TEAM",
                              "workspace_id": one, "workspace_name": "ws1"});
        assert_eq!(try_plan(exported).unwrap(), format!("team:{one}"));
        let e = try_plan(json!({"content": "x", "namespace": format!("team:{one}"), "scope": "LOCAL"}));
        assert!(
            e.unwrap_err()
                .starts_with("scope \"LOCAL\" does not match namespace team:")
        );
        let e = try_plan(json!({"content": "x", "namespace": format!("workspace:{two}"), "workspace_id": one}));
        assert!(e.unwrap_err().contains("does not own namespace"));
        let e = try_plan(json!({"content": "x", "namespace": "custom:notes", "workspace_id": one}));
        assert!(e.unwrap_err().contains("belongs to no workspace"));
        let e = try_plan(json!({"content": "x", "namespace": format!("workspace:{two}"), "workspace_name": "ws1"}));
        assert!(e.unwrap_err().starts_with("workspace_name \"ws1\" is not the name"));
        // A workspace this platform does not have: its name cannot be checked, its id can.
        let elsewhere = Uuid::from_u128(9);
        let foreign = json!({"content": "x", "namespace": format!("workspace:{elsewhere}"),
                             "workspace_id": elsewhere, "workspace_name": "theirs"});
        assert_eq!(try_plan(foreign).unwrap(), format!("workspace:{elsewhere}"));
    }
}
