//! The vocabularies of the operator's oversight: where an agent's request for a decision
//! stands, and whom a platform instruction applies to.
//!
//! Must not know: the `approval_requests` and `platform_instructions` tables, who may decide.

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
