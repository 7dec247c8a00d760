//! The memory contract's vocabularies: namespace kinds, memory kinds and sources, plugin
//! capabilities.
//!
//! Must not know: any plugin's storage.

use crate::vocab::vocabulary;

vocabulary! {
    /// What a memory namespace belongs to (Memory Plugin v1 `NamespaceKind`).
    pub enum NamespaceKind ("namespace kind") {
        Workspace => "workspace",
        Team => "team",
        Org => "org",
        Custom => "custom",
    }
}

vocabulary! {
    /// What a memory is (Memory Plugin v1 `MemoryKind`).
    pub enum MemoryKind ("memory kind") {
        Fact => "fact",
        Summary => "summary",
        Checkpoint => "checkpoint",
    }
}

vocabulary! {
    /// Who wrote a memory (Memory Plugin v1 `MemorySource`).
    pub enum MemorySource ("memory source") {
        Agent => "agent",
        Runtime => "runtime",
        User => "user",
    }
}

vocabulary! {
    /// Optional features a memory plugin reports from `/v1/health`.
    pub enum MemoryCapability ("memory plugin capability") {
        /// Semantic search over supplied embeddings.
        Embedding => "embedding",
        /// Full-text search for query strings.
        Fts => "fts",
        /// Expired memories are never returned.
        Ttl => "ttl",
        /// Pinned memories rank first.
        Pin => "pin",
        /// `propagation` is stored and returned verbatim.
        Propagation => "propagation",
    }
}

impl NamespaceKind {
    /// The kind a namespace name's prefix stands for (`team:acme` → `Team`); unknown prefixes
    /// are `Custom`.
    pub fn of(name: &crate::NamespaceName) -> Self {
        <Self as crate::Vocabulary>::parse(name.kind()).unwrap_or(Self::Custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NamespaceName, Vocabulary};

    #[test]
    fn kinds_follow_the_prefix() {
        let kind = |s: &str| NamespaceKind::of(&NamespaceName::new(s).unwrap());
        assert_eq!(kind("team:acme"), NamespaceKind::Team);
        assert_eq!(kind("workspace:1"), NamespaceKind::Workspace);
        assert_eq!(kind("project:x"), NamespaceKind::Custom);
        assert_eq!(MemoryKind::sql_list(MemoryKind::ALL), "'fact','summary','checkpoint'");
    }
}
