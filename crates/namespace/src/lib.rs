//! `molecule-namespace`: which memory namespaces a workspace may read and write.
//!
//! Owns: the three namespaces derived from a workspace's lineage (the workspace, then its
//! ancestors, nearest first, as `molecule-tree`'s walk reads it) — `workspace:<self>`,
//! `team:<parent, or self at the root>`, `org:<top of the chain>` — and the ACL helpers
//! [`readable`], [`writable`], [`can_write`] and [`intersect_readable`]. Nothing is cached: a
//! re-parent takes effect with the next lineage.
//!
//! Must not know: how a lineage is read (the database), HTTP, the plugin's storage, secrets or
//! audit. Callers (the memory use-cases) enforce what it answers.

use molecule_domain::{NamespaceKind, NamespaceName};
use serde::Serialize;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    /// The lineage was empty: no such workspace.
    #[error("workspace {0} not found")]
    WorkspaceNotFound(Uuid),
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

/// One workspace of a lineage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub id: Uuid,
    pub name: String,
    pub parent_id: Option<Uuid>,
}

fn name(prefix: &str, id: Uuid) -> NamespaceName {
    // `<lower-case word>:<uuid>` always matches the namespace pattern and is far below 256
    // characters, so this cannot fail.
    #[allow(clippy::expect_used)]
    NamespaceName::new(format!("{prefix}:{id}")).expect("a uuid namespace is valid")
}

/// Everything the first workspace of `chain` (its lineage: itself, then its ancestors, nearest
/// first) may read, in a fixed order: its own namespace, its team's, its org's. The org
/// namespace is writable only by the root itself. `workspace` names it when the chain is empty.
pub fn readable(workspace: Uuid, chain: &[Link]) -> Result<Vec<ResolvedNamespace>, NamespaceError> {
    let Some(own) = chain.first() else {
        return Err(NamespaceError::WorkspaceNotFound(workspace));
    };
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

/// The readable namespaces the chain's workspace may also write.
pub fn writable(workspace: Uuid, chain: &[Link]) -> Result<Vec<ResolvedNamespace>, NamespaceError> {
    Ok(readable(workspace, chain)?.into_iter().filter(|n| n.writable).collect())
}

/// Whether the chain's workspace may write `namespace`.
pub fn can_write(workspace: Uuid, chain: &[Link], namespace: &str) -> Result<bool, NamespaceError> {
    Ok(writable(workspace, chain)?.iter().any(|n| n.name.as_str() == namespace))
}

/// `requested ∩ readable`, in the order requested (duplicates dropped); an empty request
/// means every readable namespace.
pub fn intersect_readable(
    workspace: Uuid,
    chain: &[Link],
    requested: &[String],
) -> Result<Vec<NamespaceName>, NamespaceError> {
    let readable = readable(workspace, chain)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn link(id: Uuid, name: &str, parent: Option<Uuid>) -> Link {
        Link {
            id,
            name: name.into(),
            parent_id: parent,
        }
    }

    #[test]
    fn namespaces_come_from_the_lineage_and_only_the_root_writes_org() {
        let (root, lead, dev) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let chain = [
            link(dev, "dev", Some(lead)),
            link(lead, "lead", Some(root)),
            link(root, "acme", None),
        ];
        let names: Vec<String> = readable(dev, &chain)
            .unwrap()
            .iter()
            .map(|n| n.name.to_string())
            .collect();
        assert_eq!(
            names,
            [
                format!("workspace:{dev}"),
                format!("team:{lead}"),
                format!("org:{root}")
            ]
        );
        assert!(!can_write(dev, &chain, &format!("org:{root}")).unwrap());
        assert!(can_write(dev, &chain, &format!("team:{lead}")).unwrap());
        let at_root = [link(root, "acme", None)];
        assert!(can_write(root, &at_root, &format!("org:{root}")).unwrap());
        assert_eq!(
            readable(root, &at_root).unwrap()[1].name.to_string(),
            format!("team:{root}")
        );
        let asked = [format!("org:{root}"), "team:other".into(), format!("org:{root}")];
        assert_eq!(intersect_readable(dev, &chain, &asked).unwrap().len(), 1);
        assert!(matches!(
            readable(dev, &[]),
            Err(NamespaceError::WorkspaceNotFound(id)) if id == dev
        ));
    }
}
