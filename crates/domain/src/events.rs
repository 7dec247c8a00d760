//! The event type vocabulary (persisted and live-only events).
//!
//! Must not know: how events are stored or streamed.

use crate::vocab::vocabulary;

vocabulary! {
    /// Structure events, by the original's names. Persisted ones are written to `events` and
    /// replayable; the rest are live-only (delivered over WebSocket/SSE, never stored).
    pub enum EventType ("event type") {
        WorkspaceProvisioning => "WORKSPACE_PROVISIONING",
        WorkspaceOnline => "WORKSPACE_ONLINE",
        WorkspaceOffline => "WORKSPACE_OFFLINE",
        WorkspaceDegraded => "WORKSPACE_DEGRADED",
        WorkspaceProvisionFailed => "WORKSPACE_PROVISION_FAILED",
        WorkspacePaused => "WORKSPACE_PAUSED",
        WorkspaceResumed => "WORKSPACE_RESUMED",
        WorkspaceHibernated => "WORKSPACE_HIBERNATED",
        WorkspaceRemoved => "WORKSPACE_REMOVED",
        WorkspacePurged => "WORKSPACE_PURGED",
        WorkspaceAwaitingAgent => "WORKSPACE_AWAITING_AGENT",
        WorkspaceUpdated => "WORKSPACE_UPDATED",
        WorkspaceReparented => "WORKSPACE_REPARENTED",
        WorkspaceCollapsed => "WORKSPACE_COLLAPSED",
        AgentCardUpdated => "AGENT_CARD_UPDATED",
        TokenMinted => "TOKEN_MINTED",
        TokenRevoked => "TOKEN_REVOKED",
        /// An external workspace's tokens were revoked and one minted (`/external/rotate`).
        ExternalCredentialsRotated => "EXTERNAL_CREDENTIALS_ROTATED",
        /// A secret was set (`{key, scope}`; never the value).
        SecretSaved => "SECRET_SAVED",
        /// A secret was deleted (`{key, scope}`).
        SecretDeleted => "SECRET_DELETED",
        LeakSuspect => "LEAK_SUSPECT",
        LeakResolved => "LEAK_RESOLVED",
        /// A reconciler pass that stopped something or failed to: its counts.
        ReconcilerReport => "RECONCILER_REPORT",
        DelegationSent => "DELEGATION_SENT",
        DelegationStatus => "DELEGATION_STATUS",
        DelegationComplete => "DELEGATION_COMPLETE",
        DelegationFailed => "DELEGATION_FAILED",
        /// A schedule's prompt was sent (or could not be): `{schedule_id, schedule_name, status}`.
        CronExecuted => "CRON_EXECUTED",
        /// An agent asked for a decision: `{approval_id, action, reason, task_id, expires_at}`.
        ApprovalRequested => "APPROVAL_REQUESTED",
        /// On the requester's parent: `{approval_id, from_workspace_id, action, reason}`.
        ApprovalEscalated => "APPROVAL_ESCALATED",
        /// The original's canvas events: `{approval_id, decision, decided_by}`.
        ApprovalApproved => "APPROVAL_APPROVED",
        ApprovalDenied => "APPROVAL_DENIED",
        /// Every end of a request (approved, denied, expired, withdrawn), on the requester:
        /// `{approval_id, status, decided_by}`, what a waiting agent listens for.
        ApprovalDecided => "APPROVAL_DECIDED",
        /// The requester took its request back: `{approval_id}`.
        ApprovalWithdrawn => "APPROVAL_WITHDRAWN",
        /// A model was assigned to a workspace: `{agent_id, model}`.
        AgentAssigned => "AGENT_ASSIGNED",
        /// `{agent_id, model, old_model}`.
        AgentReplaced => "AGENT_REPLACED",
        /// `{agent_id, model}`.
        AgentRemoved => "AGENT_REMOVED",
        /// On both workspaces: `{agent_id, model, target_workspace_id}` on the source,
        /// `{agent_id, model, source_workspace_id}` on the target.
        AgentMoved => "AGENT_MOVED",
        /// A chat message went through a channel: `{channel_id, channel_type, direction}`
        /// (`inbound` adds `username`).
        ChannelMessage => "CHANNEL_MESSAGE",
        // live-only
        WorkspaceHeartbeat => "WORKSPACE_HEARTBEAT",
        TaskUpdated => "TASK_UPDATED",
        ActivityLogged => "ACTIVITY_LOGGED",
        /// The agent's answer to a message the operator/canvas sent through the proxy.
        A2aResponse => "A2A_RESPONSE",
        AgentMessage => "AGENT_MESSAGE",
    }
}

impl EventType {
    /// Live-only events: delivered to listeners, never written to `events`.
    pub const LIVE_ONLY: &'static [Self] = &[
        Self::WorkspaceHeartbeat,
        Self::TaskUpdated,
        Self::ActivityLogged,
        Self::A2aResponse,
        Self::AgentMessage,
    ];

    pub fn is_persisted(self) -> bool {
        !Self::LIVE_ONLY.contains(&self)
    }
}
