//! Workspace statuses, delivery modes, failure reasons, status changes and the heartbeat
//! transition rule.
//!
//! Must not know: the `workspaces` table.

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

    /// Whether a workspace may move from `from` to `to`. Every status write checks it (one
    /// row at a time in `molecule-tree`'s `row::transition`; the bulk writes' source sets are
    /// tested against it). The rules:
    /// - nothing leaves `removed` (a purge deletes the row; it writes no status);
    /// - anything else may be removed, paused, failed, hibernated or provisioned again;
    /// - `online` and `degraded` (registration, heartbeats) never revive a paused or
    ///   hibernated workspace: a resume or a wake provisions it first;
    /// - `offline` (the liveness sweep, a dead workload) comes only from a live status;
    /// - `awaiting_agent` only from where an external agent can be waiting;
    /// - staying where it is is always allowed (a rewrite of the same status).
    pub fn allowed(from: Self, to: Self) -> bool {
        use WorkspaceStatus::*;
        if from == Removed {
            return false;
        }
        if from == to {
            return true;
        }
        match to {
            Removed | Paused | Failed | Hibernated | Provisioning => true,
            Online | Degraded => !matches!(from, Paused | Hibernated),
            Offline => matches!(from, Online | Degraded | Provisioning | AwaitingAgent),
            AwaitingAgent => matches!(from, Provisioning | Online | Degraded | Offline | Failed),
        }
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

/// A status write. `Failed` cannot be built without a [`FailureReason`], so a workspace can
/// never be marked failed without saying why: the wrong call does not compile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusChange {
    Provisioning,
    Online,
    Offline,
    Degraded,
    Removed,
    Paused,
    Hibernated,
    AwaitingAgent,
    Failed(FailureReason),
}

impl StatusChange {
    /// The change to `s`, for every status but `failed` (which needs a [`FailureReason`]).
    pub fn to(s: WorkspaceStatus) -> Option<Self> {
        Some(match s {
            WorkspaceStatus::Provisioning => Self::Provisioning,
            WorkspaceStatus::Online => Self::Online,
            WorkspaceStatus::Offline => Self::Offline,
            WorkspaceStatus::Degraded => Self::Degraded,
            WorkspaceStatus::Removed => Self::Removed,
            WorkspaceStatus::Paused => Self::Paused,
            WorkspaceStatus::Hibernated => Self::Hibernated,
            WorkspaceStatus::AwaitingAgent => Self::AwaitingAgent,
            WorkspaceStatus::Failed => return None,
        })
    }

    pub fn status(&self) -> WorkspaceStatus {
        match self {
            Self::Provisioning => WorkspaceStatus::Provisioning,
            Self::Online => WorkspaceStatus::Online,
            Self::Offline => WorkspaceStatus::Offline,
            Self::Degraded => WorkspaceStatus::Degraded,
            Self::Removed => WorkspaceStatus::Removed,
            Self::Paused => WorkspaceStatus::Paused,
            Self::Hibernated => WorkspaceStatus::Hibernated,
            Self::AwaitingAgent => WorkspaceStatus::AwaitingAgent,
            Self::Failed(_) => WorkspaceStatus::Failed,
        }
    }

    pub fn reason(&self) -> Option<&FailureReason> {
        match self {
            Self::Failed(r) => Some(r),
            _ => None,
        }
    }
}

/// What a heartbeat reports about health, for [`heartbeat_transition`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeartbeatHealth {
    pub error_rate: f64,
    /// `runtime_state == "wedged"`.
    pub wedged: bool,
    /// The agent declared capability `status_mgmt`: it manages degraded/online itself.
    pub self_managed: bool,
}

/// Error rate at or above which an online workspace becomes degraded.
pub const DEGRADED_ERROR_RATE: f64 = 0.5;
/// Error rate below which a degraded workspace recovers.
pub const RECOVERED_ERROR_RATE: f64 = 0.1;

/// The status a heartbeat moves a workspace to, or `None` to leave it. Heartbeats never move
/// failed, paused, hibernated, awaiting_agent or removed workspaces.
pub fn heartbeat_transition(current: WorkspaceStatus, h: HeartbeatHealth) -> Option<WorkspaceStatus> {
    use WorkspaceStatus::*;
    match current {
        Online if h.wedged => Some(Degraded),
        Online if !h.self_managed && h.error_rate >= DEGRADED_ERROR_RATE => Some(Degraded),
        Degraded if !h.self_managed && !h.wedged && h.error_rate < RECOVERED_ERROR_RATE => Some(Online),
        Offline | Provisioning => Some(if h.wedged { Degraded } else { Online }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Vocabulary;

    #[test]
    fn removed_is_terminal_and_sticky_statuses_are_not_revived_by_heartbeats() {
        use WorkspaceStatus::*;
        for to in WorkspaceStatus::ALL {
            assert!(!WorkspaceStatus::allowed(Removed, *to), "removed -> {to:?}");
        }
        for from in [Paused, Hibernated] {
            assert!(!WorkspaceStatus::allowed(from, Online));
            assert!(!WorkspaceStatus::allowed(from, Degraded));
            assert!(WorkspaceStatus::allowed(from, Provisioning), "resume/wake");
        }
        assert!(
            WorkspaceStatus::allowed(Failed, Online),
            "an agent of a failed provision may register"
        );
        assert!(!WorkspaceStatus::allowed(Paused, Offline));
        assert!(WorkspaceStatus::allowed(Online, Removed));
    }

    #[test]
    fn every_heartbeat_move_is_allowed() {
        for from in WorkspaceStatus::ALL {
            for (wedged, self_managed, rate) in [
                (false, false, 0.0),
                (true, false, 0.0),
                (false, false, 0.9),
                (false, true, 0.9),
            ] {
                let h = HeartbeatHealth {
                    error_rate: rate,
                    wedged,
                    self_managed,
                };
                if let Some(to) = heartbeat_transition(*from, h) {
                    assert!(WorkspaceStatus::allowed(*from, to), "{from:?} -> {to:?}");
                }
            }
        }
    }

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
    fn heartbeats_move_only_live_statuses() {
        let healthy = HeartbeatHealth {
            error_rate: 0.0,
            wedged: false,
            self_managed: false,
        };
        let sick = HeartbeatHealth {
            error_rate: 0.7,
            ..healthy
        };
        use WorkspaceStatus::*;
        assert_eq!(heartbeat_transition(Online, sick), Some(Degraded));
        assert_eq!(heartbeat_transition(Online, healthy), None);
        assert_eq!(heartbeat_transition(Degraded, healthy), Some(Online));
        assert_eq!(
            heartbeat_transition(
                Degraded,
                HeartbeatHealth {
                    error_rate: 0.2,
                    ..healthy
                }
            ),
            None
        );
        assert_eq!(heartbeat_transition(Offline, healthy), Some(Online));
        assert_eq!(heartbeat_transition(Provisioning, healthy), Some(Online));
        assert_eq!(
            heartbeat_transition(
                Online,
                HeartbeatHealth {
                    wedged: true,
                    ..healthy
                }
            ),
            Some(Degraded)
        );
        assert_eq!(
            heartbeat_transition(
                Online,
                HeartbeatHealth {
                    self_managed: true,
                    ..sick
                }
            ),
            None
        );
        for sticky in [Failed, Paused, Hibernated, AwaitingAgent, Removed] {
            assert_eq!(heartbeat_transition(sticky, healthy), None, "{sticky}");
            assert_eq!(heartbeat_transition(sticky, sick), None, "{sticky}");
        }
    }

    #[test]
    fn sql_list_renders_quoted_values() {
        assert_eq!(DeliveryMode::sql_list(DeliveryMode::ALL), "'push','poll'");
    }
}

/// How deep the workspace tree may go, and where every walk up or down it stops (so a cycle
/// written behind the platform's back cannot loop). One number for the tree, org import and
/// the memory namespace resolver.
pub const MAX_TREE_DEPTH: i32 = 50;

/// A workspace's name: trimmed, 1..=255 characters, no control characters and none of the
/// original's template metacharacters (`{}[]|>*&!`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkspaceName(String);

/// Why a name was refused; the text says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkspaceNameError {
    #[error("must not be empty")]
    Empty,
    #[error("is {0} characters; at most {max} are allowed", max = WorkspaceName::MAX_CHARS)]
    TooLong(usize),
    #[error("must not contain control characters (newlines, tabs, …)")]
    Control,
    #[error("must not contain {0:?} (forbidden: {{}}[]|>*&!)")]
    Forbidden(char),
}

impl WorkspaceName {
    pub const MAX_CHARS: usize = 255;
    const FORBIDDEN: &'static [char] = &['{', '}', '[', ']', '|', '>', '*', '&', '!'];

    pub fn parse(raw: &str) -> Result<Self, WorkspaceNameError> {
        let v = raw.trim();
        if v.is_empty() {
            return Err(WorkspaceNameError::Empty);
        }
        let len = v.chars().count();
        if len > Self::MAX_CHARS {
            return Err(WorkspaceNameError::TooLong(len));
        }
        if v.chars().any(char::is_control) {
            return Err(WorkspaceNameError::Control);
        }
        if let Some(c) = v.chars().find(|c| Self::FORBIDDEN.contains(c)) {
            return Err(WorkspaceNameError::Forbidden(c));
        }
        Ok(Self(v.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::fmt::Display for WorkspaceName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod name_tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_checked() {
        assert_eq!(
            WorkspaceName::parse("  ok name ").map(WorkspaceName::into_string),
            Ok("ok name".into())
        );
        assert_eq!(WorkspaceName::parse("   "), Err(WorkspaceNameError::Empty));
        assert_eq!(WorkspaceName::parse("bad\nname"), Err(WorkspaceNameError::Control));
        assert_eq!(WorkspaceName::parse("a{b}"), Err(WorkspaceNameError::Forbidden('{')));
        assert_eq!(
            WorkspaceName::parse(&"x".repeat(256)),
            Err(WorkspaceNameError::TooLong(256))
        );
        assert!(WorkspaceName::parse(&"é".repeat(255)).is_ok(), "characters, not bytes");
    }
}
