//! Agent-to-agent messaging: the rules every A2A path applies. The messaging issue grows it
//! into the proxy's rules and the durable queue.
//!
//! Owns: `access` (who may talk to whom in the tree: `can_communicate` over two lineages, and
//! the reserved caller prefixes). Planned: the URL policy, JSON-RPC normalising across the v0.3
//! and v1.0 method names and headers, and the durable message queue table with its enqueue,
//! lease and drain statements. Must not know: actix (the routes live in `molecule-http`),
//! backends (waking a paused workspace goes through the service's `WorkloadHooks`), or how a
//! lineage is read (the service reads the tree).

pub mod access;

pub use access::{Lineage, MAX_HOPS, can_communicate, is_reserved_caller};
