//! `molecule-workspace-config`: a workspace's config blob and its agent assignments.
//!
//! Owns: the `workspace_config` table (`blob`: a JSON object per workspace, read whole and
//! merged key by key, a `null` value deleting its key) and the `agents` table (`agents`: the
//! model assigned to a workspace, at most one active, replaced, removed or moved to another
//! workspace in one transaction each, with `AGENT_ASSIGNED`, `AGENT_REPLACED`,
//! `AGENT_REMOVED` and `AGENT_MOVED` through the tree).
//!
//! Must not know: HTTP, tokens, who may move an agent where (the route checks the caller may
//! reach the target), what a runtime does with either.

pub mod agents;
pub mod blob;

pub use agents::{Agents, Assignment};
pub use blob::ConfigBlob;
