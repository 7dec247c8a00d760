//! The event envelope, as streamed and replayed.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// The wire envelope: `{"id","event","workspace_id","timestamp","payload"}`. `id` is set for
/// persisted events (the replay cursor) and absent for live-only ones; `actor` says who caused
/// a persisted event (`admin`, `console:<who>`, `workspace:<id>`, `loop:<name>`), absent when
/// the platform's own detached work did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Event {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    pub event: String,
    pub workspace_id: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    #[schema(value_type = Object)]
    pub payload: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}
