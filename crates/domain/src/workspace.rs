use crate::vocab::vocabulary;

vocabulary! {
    /// Where a workspace is in its life. The Postgres type `workspace_status` is tested against
    /// [`crate::Vocabulary::ALL`] of this enum; there is no other list.
    pub enum WorkspaceStatus ("workspace status") {
        /// Row inserted; a backend is starting it (insert default).
        Provisioning => "provisioning",
        /// Fresh heartbeat or registration.
        Online => "online",
        /// Heartbeat TTL expired or the workload is gone.
        Offline => "offline",
        /// Heartbeating but unhealthy (error rate, or a wedged runtime).
        Degraded => "degraded",
        /// Provisioning failed; `last_sample_error` says why.
        Failed => "failed",
        /// Soft-deleted tombstone. Never revived by register or heartbeat.
        Removed => "removed",
        /// Stopped by an operator.
        Paused => "paused",
        /// Stopped for idleness.
        Hibernated => "hibernated",
        /// External workspace created without a URL; waits for its agent to register.
        AwaitingAgent => "awaiting_agent",
    }
}

impl WorkspaceStatus {
    /// Statuses that registration and heartbeats must never move out of.
    pub const STICKY: &'static [Self] = &[Self::Removed, Self::Paused, Self::Hibernated];

    pub fn is_sticky(self) -> bool {
        Self::STICKY.contains(&self)
    }
}

vocabulary! {
    /// How an agent receives A2A messages.
    pub enum DeliveryMode ("delivery mode") {
        /// The platform POSTs to the agent's URL.
        Push => "push",
        /// The agent reads its inbox.
        Poll => "poll",
    }
}

/// The reason a workspace failed. It cannot be empty, so "failed without a reason" cannot be
/// written: every API that sets [`WorkspaceStatus::Failed`] takes one of these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureReason(String);

/// Longest reason kept (8 KiB, as the original's bootstrap watcher); longer text is cut on a
/// character boundary.
pub const FAILURE_REASON_MAX_BYTES: usize = 8 * 1024;

impl FailureReason {
    /// `None` when `reason` is empty or only whitespace.
    pub fn new(reason: impl Into<String>) -> Option<Self> {
        let reason = reason.into();
        let trimmed = reason.trim();
        if trimmed.is_empty() {
            return None;
        }
        let mut end = trimmed.len().min(FAILURE_REASON_MAX_BYTES);
        while !trimmed.is_char_boundary(end) {
            end -= 1;
        }
        Some(Self(trimmed[..end].to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for FailureReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Vocabulary;

    #[test]
    fn every_status_round_trips_through_its_spelling() {
        for s in WorkspaceStatus::ALL {
            assert_eq!(WorkspaceStatus::parse(s.as_str()), Ok(*s));
            let json = serde_json::to_string(s).unwrap();
            assert_eq!(serde_json::from_str::<WorkspaceStatus>(&json).unwrap(), *s);
        }
        assert_eq!(WorkspaceStatus::ALL.len(), 9);
    }

    #[test]
    fn unknown_status_lists_allowed_values() {
        let err = "hibernating".parse::<WorkspaceStatus>().unwrap_err();
        assert!(err.to_string().contains("awaiting_agent"), "{err}");
    }

    #[test]
    fn failure_reason_rejects_blank_and_caps_length() {
        assert!(FailureReason::new("  \n").is_none());
        assert_eq!(FailureReason::new(" boom ").unwrap().as_str(), "boom");
        let long = "é".repeat(FAILURE_REASON_MAX_BYTES);
        let r = FailureReason::new(long).unwrap();
        assert!(r.as_str().len() <= FAILURE_REASON_MAX_BYTES);
    }

    #[test]
    fn sql_list_renders_quoted_values() {
        assert_eq!(DeliveryMode::sql_list(DeliveryMode::ALL), "'push','poll'");
    }
}
