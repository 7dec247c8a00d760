//! The namespace resolver over the live tree: a workspace's lineage, read through
//! `molecule-tree`'s one walk, handed to `molecule-namespace`'s rules. Nothing is cached here
//! (the scope cache in `memory` sits in front of it), so a re-parent counts from the next call.
//!
//! Owns: reading the lineage for the rules. Must not know: the rules themselves, SQL.

use molecule_domain::NamespaceName;
use molecule_namespace::{Link, NamespaceError, ResolvedNamespace};
use uuid::Uuid;

/// Why a scope could not be resolved: the rules refused (no such workspace), or the tree
/// could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Namespace(#[from] NamespaceError),
    #[error("reading the workspace tree: {0}")]
    Tree(#[source] molecule_tree::ServiceError),
}

/// Resolves namespaces from the live `workspaces` tree.
#[derive(Clone)]
pub struct Resolver {
    tree: molecule_tree::Tree,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver").finish_non_exhaustive()
    }
}

impl Resolver {
    pub fn new(tree: molecule_tree::Tree) -> Self {
        Self { tree }
    }

    async fn chain(&self, workspace: Uuid) -> Result<Vec<Link>, ResolveError> {
        let nodes = self.tree.lineage(workspace).await.map_err(ResolveError::Tree)?;
        Ok(nodes
            .into_iter()
            .map(|n| Link {
                id: n.id,
                name: n.name,
                parent_id: n.parent_id,
            })
            .collect())
    }

    /// Everything `workspace` may read: its own namespace, its team's, its org's.
    pub async fn readable(&self, workspace: Uuid) -> Result<Vec<ResolvedNamespace>, ResolveError> {
        Ok(molecule_namespace::readable(workspace, &self.chain(workspace).await?)?)
    }

    /// The readable namespaces `workspace` may also write.
    pub async fn writable(&self, workspace: Uuid) -> Result<Vec<ResolvedNamespace>, ResolveError> {
        Ok(molecule_namespace::writable(workspace, &self.chain(workspace).await?)?)
    }

    /// Whether `workspace` may write `namespace` right now.
    pub async fn can_write(&self, workspace: Uuid, namespace: &str) -> Result<bool, ResolveError> {
        Ok(molecule_namespace::can_write(
            workspace,
            &self.chain(workspace).await?,
            namespace,
        )?)
    }

    /// `requested ∩ readable`, in the order requested; empty means every readable namespace.
    pub async fn intersect_readable(
        &self,
        workspace: Uuid,
        requested: &[String],
    ) -> Result<Vec<NamespaceName>, ResolveError> {
        Ok(molecule_namespace::intersect_readable(
            workspace,
            &self.chain(workspace).await?,
            requested,
        )?)
    }
}
