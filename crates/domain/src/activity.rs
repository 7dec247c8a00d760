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
        CronRun => "cron_run",
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
    /// Outcome recorded on an activity row posted by an agent.
    pub enum ActivityStatus ("activity status") {
        Ok => "ok",
        Error => "error",
        Timeout => "timeout",
    }
}
