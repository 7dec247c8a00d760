//! `molecule-schedules`: cron schedules of workspace-server.
//!
//! Owns: the `workspace_schedules` table (`store`: create, list, update, delete, the claim of
//! due rows, what a fire records), what a schedule's cron expression and timezone mean
//! (`spec`: five-field patterns, IANA zones, the next fire time across daylight-saving
//! changes), firing (`fire`: the tick, run-now, the history row, the event, lateness), and an
//! org template's `schedules:` (`template`: checked, prompt files read inside the org).
//!
//! Must not know: HTTP, or how a prompt reaches an agent: the composer hands `fire` a
//! [`fire::Deliver`] (messaging's A2A proxy and queue). The tree's activity and events are
//! written through `molecule-tree`.

pub mod fire;
pub mod spec;
pub mod store;
pub mod template;

pub use fire::{Deliver, Fired, RunsOwnScheduler, Scheduler};
pub use spec::{Spec, SpecError};
pub use store::{Schedule, Schedules};
