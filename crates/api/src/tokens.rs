//! Token bodies: a freshly minted token (the only copy of its plaintext) and a token as
//! listed.

use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// A freshly minted token. `token` is the only copy of the plaintext.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MintedToken {
    pub id: Uuid,
    pub auth_token: String,
    pub prefix: String,
}

/// A token as listed (never the plaintext).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenSummary {
    pub id: Uuid,
    pub prefix: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
}
