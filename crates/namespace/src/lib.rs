//! `molecule-namespace`: which memory namespaces a workspace may read and write.
//!
//! Owns: the walk up `parent_id` (one recursive CTE, capped at depth 50 so a cycle cannot hang
//! it; removed workspaces are not skipped), the three namespaces derived from it —
//! `workspace:<self>`, `team:<parent, or self at the root>`, `org:<top of the chain>` — and the
//! ACL helpers `readable`, `writable`, `can_write` and `intersect_readable`. Nothing is cached:
//! a re-parent takes effect on the next call.
//!
//! Must not know: HTTP, the plugin's storage, secrets or audit. Callers (the memory tools)
//! enforce what it answers.

use diesel::sql_types::{Integer, Nullable, Text, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use molecule_db::Pool;
use molecule_domain::{NamespaceKind, NamespaceName};
use serde::Serialize;
use uuid::Uuid;

/// How far up the tree the walk goes: deeper trees (or cycles) stop here (the tree's one
/// depth limit, from the domain).
pub use molecule_domain::MAX_TREE_DEPTH as MAX_DEPTH;

#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    #[error("workspace {0} not found")]
    WorkspaceNotFound(Uuid),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(#[from] diesel::result::Error),
}

/// One namespace a workspace can see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolvedNamespace {
    pub name: NamespaceName,
    pub kind: NamespaceKind,
    /// What it is for, in a sentence an agent can act on.
    pub description: String,
    pub writable: bool,
    /// The workspace the namespace is named after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

#[derive(Debug, Clone, diesel::QueryableByName)]
struct Link {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    parent_id: Option<Uuid>,
}

/// Computes namespaces from the live `workspaces` table.
#[derive(Clone)]
pub struct Resolver {
    pool: Pool,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver").finish_non_exhaustive()
    }
}

fn name(prefix: &str, id: Uuid) -> NamespaceName {
    // `<lower-case word>:<uuid>` always matches the namespace pattern and is far below 256
    // characters, so this cannot fail.
    #[allow(clippy::expect_used)]
    NamespaceName::new(format!("{prefix}:{id}")).expect("a uuid namespace is valid")
}

impl Resolver {
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    /// The workspace and its ancestors, nearest first.
    async fn chain(&self, workspace: Uuid) -> Result<Vec<Link>, NamespaceError> {
        let mut conn = self
            .pool
            .get()
            .await
            .map_err(|e| NamespaceError::Unavailable(e.to_string()))?;
        let chain: Vec<Link> = diesel::sql_query(
            "WITH RECURSIVE chain AS (
                 SELECT id, name, parent_id, 0 AS depth FROM workspaces WHERE id = $1
                 UNION ALL
                 SELECT w.id, w.name, w.parent_id, c.depth + 1
                   FROM workspaces w JOIN chain c ON w.id = c.parent_id
                  WHERE c.depth < $2
             )
             SELECT id, name, parent_id, depth FROM chain ORDER BY depth",
        )
        .bind::<SqlUuid, _>(workspace)
        .bind::<Integer, _>(MAX_DEPTH)
        .load(&mut conn)
        .await?;
        if chain.is_empty() {
            return Err(NamespaceError::WorkspaceNotFound(workspace));
        }
        Ok(chain)
    }

    /// Everything `workspace` may read, in a fixed order: its own namespace, its team's, its
    /// org's. The org namespace is writable only by the root itself.
    pub async fn readable(&self, workspace: Uuid) -> Result<Vec<ResolvedNamespace>, NamespaceError> {
        let chain = self.chain(workspace).await?;
        let own = &chain[0];
        let team = chain.get(1).unwrap_or(own);
        let top = chain.last().unwrap_or(own);
        let is_root = own.parent_id.is_none();
        Ok(vec![
            ResolvedNamespace {
                name: name("workspace", own.id),
                kind: NamespaceKind::Workspace,
                description: "private to this workspace".into(),
                writable: true,
                display_name: Some(own.name.clone()),
            },
            ResolvedNamespace {
                name: name("team", team.id),
                kind: NamespaceKind::Team,
                description: if is_root {
                    "shared with this workspace's direct children".into()
                } else {
                    "shared with the parent workspace and its other children".into()
                },
                writable: true,
                display_name: Some(team.name.clone()),
            },
            ResolvedNamespace {
                name: name("org", top.id),
                kind: NamespaceKind::Org,
                description: if is_root {
                    "shared with the whole organisation; only this root workspace writes it".into()
                } else {
                    "shared with the whole organisation; read-only here (only the root writes)".into()
                },
                writable: is_root,
                display_name: Some(top.name.clone()),
            },
        ])
    }

    /// The readable namespaces `workspace` may also write.
    pub async fn writable(&self, workspace: Uuid) -> Result<Vec<ResolvedNamespace>, NamespaceError> {
        Ok(self
            .readable(workspace)
            .await?
            .into_iter()
            .filter(|n| n.writable)
            .collect())
    }

    /// Whether `workspace` may write `namespace` right now (re-derived on every call).
    pub async fn can_write(&self, workspace: Uuid, namespace: &str) -> Result<bool, NamespaceError> {
        Ok(self
            .writable(workspace)
            .await?
            .iter()
            .any(|n| n.name.as_str() == namespace))
    }

    /// `requested ∩ readable`, in the order requested (duplicates dropped); an empty request
    /// means every readable namespace.
    pub async fn intersect_readable(
        &self,
        workspace: Uuid,
        requested: &[String],
    ) -> Result<Vec<NamespaceName>, NamespaceError> {
        let readable = self.readable(workspace).await?;
        if requested.is_empty() {
            return Ok(readable.into_iter().map(|n| n.name).collect());
        }
        let mut out: Vec<NamespaceName> = Vec::new();
        for r in requested {
            if let Some(n) = readable.iter().find(|n| n.name.as_str() == r)
                && !out.contains(&n.name)
            {
                out.push(n.name.clone());
            }
        }
        Ok(out)
    }
}
