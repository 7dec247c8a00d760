//! The activity vocabularies: row types and outcome statuses (agents' and delegation rows').
//!
//! Must not know: the `activity_logs` table.

use crate::vocab::vocabulary;

vocabulary! {
    /// Kinds of `activity_logs` rows.
    pub enum ActivityType ("activity type") {
        A2aSend => "a2a_send",
        A2aReceive => "a2a_receive",
        TaskUpdate => "task_update",
        AgentLog => "agent_log",
        SkillPromotion => "skill_promotion",
        MemoryWrite => "memory_write",
        Error => "error",
        // written by the server only
        Delegation => "delegation",
        MemoryWriteGlobal => "memory_write_global",
        MemorySummaryWrite => "memory_summary_write",
        MemoryDelete => "memory_delete",
        CronRun => "cron_run",
        TerminalSession => "terminal_session",
    }
}

impl ActivityType {
    /// What agents may post through `POST /workspaces/:id/activity`.
    pub const AGENT_WRITABLE: &'static [Self] = &[
        Self::A2aSend,
        Self::A2aReceive,
        Self::TaskUpdate,
        Self::AgentLog,
        Self::SkillPromotion,
        Self::MemoryWrite,
        Self::Error,
    ];
}

vocabulary! {
    /// Outcome recorded on an activity row: agents post the first three; the server's
    /// delegation rows follow the delegation through the rest.
    pub enum ActivityStatus ("activity status") {
        Ok => "ok",
        Error => "error",
        Timeout => "timeout",
        // written by the server only (delegation rows)
        Pending => "pending",
        Dispatched => "dispatched",
        Queued => "queued",
        InProgress => "in_progress",
        Stuck => "stuck",
        Completed => "completed",
        Failed => "failed",
    }
}

impl ActivityStatus {
    /// What agents may post through `POST /workspaces/:id/activity`.
    pub const AGENT_WRITABLE: &'static [Self] = &[Self::Ok, Self::Error, Self::Timeout];

    /// The status a delegation row shows for a ledger status.
    pub fn of_delegation(status: crate::DelegationStatus) -> Self {
        use crate::DelegationStatus as D;
        match status {
            D::Queued => Self::Queued,
            D::Dispatched => Self::Dispatched,
            D::InProgress => Self::InProgress,
            D::Stuck => Self::Stuck,
            D::Completed => Self::Completed,
            D::Failed => Self::Failed,
        }
    }
}
