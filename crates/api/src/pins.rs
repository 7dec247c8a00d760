//! Runtime image pin bodies.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// A pin as listed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Pin {
    pub template_name: String,
    pub digest: String,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    pub updated_by: Option<String>,
    pub notes: Option<String>,
}

/// `PUT /admin/runtime-image-pins/:template` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct PinRequest {
    /// `sha256:` followed by 64 lower-case hex digits.
    pub digest: String,
    pub notes: Option<String>,
    pub updated_by: Option<String>,
}
