//! Messaging bodies: the A2A proxy's own answers (the agent's answer passes through as it is),
//! the queue as an operator sees it, and budgets.

use molecule_domain::{QueueStatus, WorkspaceStatus};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// How long a caller should wait before retrying a busy agent (seconds).
pub const BUSY_RETRY_AFTER_SECONDS: u32 = 30;
/// How long a caller should wait for a waking or restarting workspace (seconds).
pub const WAKING_RETRY_AFTER_SECONDS: u32 = 15;

/// `Retry-After` for a workspace whose agent has not registered yet (provisioning, or awaiting
/// an external agent): a transient state, which the original also answered 503.
pub const STARTING_RETRY_AFTER_SECONDS: u32 = 5;

/// 202: the agent was busy, so the message waits in the queue and is delivered when a heartbeat
/// reports a free slot.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Queued {
    /// Always true.
    pub queued: bool,
    pub queue_id: Uuid,
    /// Live items of the target, this one included.
    pub queue_depth: i64,
    pub message: String,
}

/// 503 answers of the proxy: the target cannot take a message now. Exactly one of `waking`,
/// `restarting` and `busy` is set, or none when it simply has no URL.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProxyUnavailable {
    pub error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waking: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restarting: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub busy: Option<bool>,
    /// Seconds; also sent as `Retry-After`.
    pub retry_after: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub status: Option<WorkspaceStatus>,
}

/// 502: the agent could not be reached, or its answer could not be read.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BadGateway {
    pub error: String,
    /// Set when the request reached the agent but its answer was lost: the agent may have acted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_confirmed: Option<bool>,
}

/// What the proxy answers.
#[derive(Debug, Clone)]
pub enum ProxyOutcome {
    /// The agent's own status, content type and body, passed through.
    Answered {
        status: u16,
        content_type: Option<String>,
        body: Vec<u8>,
    },
    Queued(Queued),
    Unavailable(ProxyUnavailable),
    BadGateway(BadGateway),
    /// The workspace's `monthly_spend` reached its `budget_limit`.
    BudgetExceeded,
}

impl ProxyOutcome {
    /// The HTTP status this outcome is answered with.
    pub fn status(&self) -> u16 {
        match self {
            Self::Answered { status, .. } => *status,
            Self::Queued(_) => 202,
            Self::Unavailable(_) => 503,
            Self::BadGateway(_) => 502,
            Self::BudgetExceeded => 402,
        }
    }
}

/// `GET /workspaces/:id/budget`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Budget {
    /// Cents per month; null: no limit.
    pub budget_limit: Option<i64>,
    /// Cents, as last reported by the agent's heartbeat.
    pub monthly_spend: i64,
    /// Messages are refused with 402 while true.
    pub exceeded: bool,
    /// Tokens reported in A2A answers (`result.usage`) this calendar month (UTC).
    pub tokens_this_month: TokenUsage,
}

#[derive(Debug, Clone, Copy, Default, Serialize, ToSchema)]
pub struct TokenUsage {
    pub input_tokens: i64,
    pub output_tokens: i64,
    /// Answers that reported usage.
    pub calls: i64,
}

/// `PATCH /workspaces/:id/budget`: `{"budget_limit": cents}`, or null to remove the limit.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetPatch {
    pub budget_limit: Option<i64>,
}

/// `POST /admin/a2a-queue/drop-stale` answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Dropped {
    pub dropped: i64,
}

/// One queue item as an operator sees it (no body: messages may carry secrets).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QueueItem {
    pub id: Uuid,
    /// Null: the operator/canvas.
    pub caller_id: Option<Uuid>,
    pub priority: i16,
    pub method: Option<String>,
    #[schema(value_type = String)]
    pub status: QueueStatus,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub delegation_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub enqueued_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// `GET /workspaces/:id/a2a-queue`: the depth, the live items in delivery order, then the most
/// recently finished ones.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QueueView {
    pub workspace_id: Uuid,
    /// Live items (queued or in delivery).
    pub depth: i64,
    pub items: Vec<QueueItem>,
}
