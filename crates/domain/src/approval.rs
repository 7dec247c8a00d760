//! The vocabularies of the operator's oversight: where an agent's request for a decision
//! stands, whom a platform instruction applies to, and where an agent assignment stands.
//!
//! Must not know: the tables that store them, who may decide.

use crate::vocab::vocabulary;

vocabulary! {
    /// An approval request's status. Only `pending` moves, and only once.
    pub enum ApprovalStatus ("approval status") {
        /// Waiting for the operator or an ancestor workspace.
        Pending => "pending",
        Approved => "approved",
        Denied => "denied",
        /// Nobody decided before its deadline (`expires_at`).
        Expired => "expired",
        /// The requester took it back.
        Withdrawn => "withdrawn",
    }
}

impl ApprovalStatus {
    /// The two outcomes a decider may choose.
    pub const DECISIONS: &'static [Self] = &[Self::Approved, Self::Denied];
}

vocabulary! {
    /// Whom a platform instruction applies to: every workspace, or one.
    pub enum InstructionScope ("instruction scope") {
        Global => "global",
        Workspace => "workspace",
    }
}

vocabulary! {
    /// An agent assignment's status: one `active` per workspace; the rest are history.
    pub enum AgentStatus ("agent status") {
        Active => "active",
        /// Another model took its place (`PATCH /workspaces/:id/agent`).
        Replaced => "replaced",
        /// Removed without a successor (`DELETE /workspaces/:id/agent`).
        Removed => "removed",
    }
}
