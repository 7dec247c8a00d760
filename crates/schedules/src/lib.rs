//! `molecule-schedules`: cron schedules of workspace-server.
//!
//! Owns: the `workspace_schedules` table (`store`: create, list, update, delete, the claim of
//! due rows, what a fire records), and what a schedule's cron expression and timezone mean
//! (`spec`: five-field patterns, IANA zones, the next fire time across daylight-saving
//! changes).
//!
//! Must not know: HTTP, how a prompt reaches an agent (the scheduler loop in the binary fires
//! through messaging's proxy), or the tree beyond the rows it references.

pub mod spec;
pub mod store;

pub use spec::{Spec, SpecError};
