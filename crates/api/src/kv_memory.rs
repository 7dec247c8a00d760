//! Key/value memory bodies (`/workspaces/:id/memory*`): the original's shapes (A §6.2).

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::ToSchema;

/// An entry.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KvEntry {
    pub key: String,
    /// Any JSON value, as written.
    #[schema(value_type = Object)]
    pub value: Value,
    /// 1 on create, one more on every write.
    pub version: i64,
    /// Absent when the entry does not expire.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// Present (even as `null`) or absent: a missing `value` is refused, a `null` one is stored.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// `POST /workspaces/:id/memory` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutKv {
    /// 1 to 256 characters, no `/`.
    #[serde(default)]
    pub key: String,
    /// Required: any JSON value (`null` included), at most 256 KiB.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Object)]
    pub value: Option<Value>,
    /// Seconds to live (0 or less: expired at once); absent: no expiry (a write clears an
    /// earlier one).
    #[serde(default)]
    pub ttl_seconds: Option<i64>,
    /// Write only over this version (409 otherwise); 0: only if the key does not exist.
    #[serde(default)]
    pub if_match_version: Option<i64>,
}

/// `200` of a write.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KvWritten {
    /// Always `ok`.
    pub status: &'static str,
    pub key: String,
    pub version: i64,
}

/// `200` of a delete.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KvDeleted {
    /// Always `deleted`.
    pub status: &'static str,
}
