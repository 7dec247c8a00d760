//! Who may talk to whom: the hierarchy rule every A2A path applies (the proxy, `delegate`,
//! discovery, the event stream), and the caller ids the platform reserves for itself.
//!
//! Owns: the rule, as a pure function of two lineages. Must not know: how a lineage is read
//! (the service reads it from the tree in one statement) or what a refusal looks like on the
//! wire.

use uuid::Uuid;

/// How far up the tree an ancestor still counts (the original walks at most 32 levels).
pub const MAX_HOPS: usize = 32;

/// Caller-id prefixes reserved for the platform's own senders: a caller header starting with
/// one is refused (403) before anything else is looked at.
pub const RESERVED_CALLER_PREFIXES: &[&str] = &["webhook:", "system:", "test:", "channel:"];

/// Whether `caller` (an `X-Workspace-ID` value) uses a reserved prefix.
pub fn is_reserved_caller(caller: &str) -> bool {
    RESERVED_CALLER_PREFIXES.iter().any(|p| caller.starts_with(p))
}

/// A workspace's place in the tree: its id and its ancestors, nearest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lineage {
    pub id: Uuid,
    /// Parent first, then the parent's parent, and so on (at least [`MAX_HOPS`] of them when
    /// the tree is that deep).
    pub ancestors: Vec<Uuid>,
}

impl Lineage {
    /// A root workspace.
    pub fn root(id: Uuid) -> Self {
        Self {
            id,
            ancestors: Vec::new(),
        }
    }

    pub fn parent(&self) -> Option<Uuid> {
        self.ancestors.first().copied()
    }

    /// Whether `other` is one of this workspace's first [`MAX_HOPS`] ancestors.
    pub fn descends_from(&self, other: Uuid) -> bool {
        self.ancestors.iter().take(MAX_HOPS).any(|a| *a == other)
    }
}

/// Whether `a` and `b` may communicate: the same workspace, siblings (the same parent, or both
/// roots), or one an ancestor of the other within [`MAX_HOPS`] levels (parent and child
/// included). Symmetric.
pub fn can_communicate(a: &Lineage, b: &Lineage) -> bool {
    a.id == b.id || a.parent() == b.parent() || a.descends_from(b.id) || b.descends_from(a.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// root ─ a ─ a1 ─ a11, root ─ b, and an unrelated root `other`.
    struct Tree {
        root: Lineage,
        a: Lineage,
        a1: Lineage,
        a11: Lineage,
        b: Lineage,
        other: Lineage,
    }

    fn tree() -> Tree {
        let (root, a, a1, a11, b, other) = (
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
        );
        Tree {
            root: Lineage::root(root),
            a: Lineage {
                id: a,
                ancestors: vec![root],
            },
            a1: Lineage {
                id: a1,
                ancestors: vec![a, root],
            },
            a11: Lineage {
                id: a11,
                ancestors: vec![a1, a, root],
            },
            b: Lineage {
                id: b,
                ancestors: vec![root],
            },
            other: Lineage::root(other),
        }
    }

    #[test]
    fn the_pairs_the_original_allows() {
        let t = tree();
        let allowed = [
            (&t.a, &t.a, "self"),
            (&t.a, &t.b, "siblings"),
            (&t.root, &t.other, "two roots are siblings"),
            (&t.root, &t.a, "parent and child"),
            (&t.a1, &t.a, "child and parent"),
            (&t.root, &t.a11, "ancestor and descendant"),
            (&t.a11, &t.root, "descendant and ancestor"),
        ];
        for (x, y, why) in allowed {
            assert!(can_communicate(x, y), "{why}");
            assert!(can_communicate(y, x), "{why} (reversed)");
        }
        let refused = [
            (&t.a1, &t.b, "a nephew and its uncle"),
            (&t.a11, &t.b, "cousins twice removed"),
            (&t.a, &t.other, "a child and an unrelated root"),
            (&t.a11, &t.other, "a grandchild and an unrelated root"),
        ];
        for (x, y, why) in refused {
            assert!(!can_communicate(x, y), "{why}");
            assert!(!can_communicate(y, x), "{why} (reversed)");
        }
    }

    #[test]
    fn ancestors_count_only_within_the_hop_limit() {
        let top = Uuid::new_v4();
        let mut chain: Vec<Uuid> = (0..MAX_HOPS).map(|_| Uuid::new_v4()).collect();
        chain.push(top);
        let deep = Lineage {
            id: Uuid::new_v4(),
            ancestors: chain,
        };
        // `top` is MAX_HOPS + 1 levels up: too far.
        assert!(!can_communicate(&deep, &Lineage::root(top)));
        let near = deep.ancestors[MAX_HOPS - 1];
        let near_lineage = Lineage {
            id: near,
            ancestors: deep.ancestors[MAX_HOPS..].to_vec(),
        };
        assert!(can_communicate(&deep, &near_lineage));
    }

    #[test]
    fn reserved_callers_are_recognised() {
        for c in ["webhook:github", "system:sweeper", "test:x", "channel:slack"] {
            assert!(is_reserved_caller(c), "{c}");
        }
        assert!(!is_reserved_caller(&Uuid::new_v4().to_string()));
        assert!(!is_reserved_caller("systems"));
    }
}
