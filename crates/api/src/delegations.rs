//! Delegation bodies: delegate, record and update requests, and the ledger row as a workspace
//! sees it.

use molecule_domain::{DelegationStatus, Vocabulary};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// `POST /workspaces/:id/delegate` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct DelegateRequest {
    pub target_id: Uuid,
    pub task: String,
    pub idempotency_key: Option<String>,
}

/// `POST /workspaces/:id/delegations/record` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct RecordRequest {
    pub target_id: Uuid,
    pub task: String,
    pub delegation_id: String,
}

/// `POST /workspaces/:id/delegations/:did/update` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct UpdateRequest {
    /// completed or failed.
    pub status: String,
    pub error: Option<String>,
    pub response_preview: Option<String>,
}

/// What a delegate or record call answered: `delegated` or `recorded` for a new delegation,
/// the ledger status for an idempotent hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DelegatedStatus {
    Delegated,
    Recorded,
    Existing(DelegationStatus),
}

impl Serialize for DelegatedStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            Self::Delegated => "delegated",
            Self::Recorded => "recorded",
            Self::Existing(status) => status.as_str(),
        })
    }
}

/// Which side of a delegation a workspace is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// This workspace is the caller.
    Sent,
    Received,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Delegated {
    pub delegation_id: String,
    /// `delegated` for a new delegation; the ledger status for an idempotent hit.
    #[schema(value_type = String)]
    pub status: DelegatedStatus,
    pub target_id: Uuid,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub idempotent_hit: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Updated {
    #[schema(value_type = String)]
    pub status: DelegationStatus,
    pub delegation_id: String,
    /// True when this call made the transition (and so notified the caller).
    pub applied: bool,
}

/// A ledger row as a workspace sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DelegationView {
    pub delegation_id: String,
    pub source_id: Uuid,
    pub target_id: Uuid,
    pub direction: Direction,
    pub summary: String,
    #[schema(value_type = String)]
    pub status: DelegationStatus,
    pub response_preview: Option<String>,
    pub error: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_heartbeat: Option<time::OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub deadline: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: time::OffsetDateTime,
    pub _ledger: bool,
}
