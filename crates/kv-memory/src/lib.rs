//! `molecule-kv-memory`: a workspace's key/value memory (`/workspaces/:id/memory*`).
//!
//! Owns: the `workspace_memory` table (`store`): versioned entries, a time-to-live per write
//! (a write without one clears it), compare-and-set writes (`if_match_version`: 409 on a
//! mismatch, `0` meaning create only, a race between two creates a 409 and never a 500),
//! expired entries invisible, never counted, and swept.
//!
//! Must not know: HTTP, the memory plugin (this is the original's older, plain store; the
//! namespaced memories live in `molecule-memory`).

pub mod store;

pub use store::{Entry, KvMemory, Put};
