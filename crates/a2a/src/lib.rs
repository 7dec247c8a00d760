//! Agent-to-agent messaging: the rules every A2A path applies, and the durable queue.
//!
//! Owns: `access` (who may talk to whom in the tree: `can_communicate` over two lineages, and
//! the reserved caller prefixes), `jsonrpc` (making a body a JSON-RPC 2.0 request, the v0.3 and
//! v1.0 method names, the forwarded protocol headers) and `queue` (the `a2a_queue` table: enqueue
//! with `messageId` idempotency, leased claims with `SKIP LOCKED`, release with an attempt cap,
//! the reaper). Must not know: actix (the routes live in `molecule-http`), backends (waking a
//! workspace goes through the service's `WorkloadHooks`), how a lineage is read (the service
//! reads the tree), or when the queue drains (the service drains it on heartbeats).

pub mod access;
pub mod jsonrpc;
pub mod queue;

pub use access::{Lineage, MAX_HOPS, can_communicate, is_reserved_caller};
