//! The schedule vocabularies: where a schedule came from, and how its last run went.
//!
//! Must not know: the `workspace_schedules` table, cron syntax.

use crate::vocab::vocabulary;

vocabulary! {
    /// Who owns a schedule: an org template's import (re-imports update it) or the API
    /// (imports never touch it).
    pub enum ScheduleSource ("schedule source") {
        Template => "template",
        Runtime => "runtime",
    }
}

vocabulary! {
    /// The outcome of a schedule's last run (`last_status`).
    pub enum ScheduleRunStatus ("schedule run status") {
        /// The prompt was delivered (or queued for a busy agent).
        Ok => "ok",
        /// It could not be delivered; `last_error` says why.
        Error => "error",
        /// Not sent: the agent stayed busy past the wait (the original's policy).
        Skipped => "skipped",
        /// Delivered, but the agent has answered nothing several times in a row.
        Stale => "stale",
    }
}

vocabulary! {
    /// A schedule as the admin health view judges it.
    pub enum ScheduleHealthStatus ("schedule health") {
        /// Enabled, and never ran.
        NeverRun => "never_run",
        /// Enabled, and its last run is older than twice the gap between its next two slots.
        Stale => "stale",
        Ok => "ok",
        /// Switched off: not judged (the original called a disabled schedule stale).
        Disabled => "disabled",
    }
}
