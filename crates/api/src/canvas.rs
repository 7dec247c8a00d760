//! Canvas and console bodies: the viewport (`/canvas/viewport`, the original canvas's shape,
//! B §5.1) and a console sign-in link.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The shared canvas viewport; `PUT` takes the same shape (all three fields required).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Viewport {
    pub x: f64,
    pub y: f64,
    /// Above 0, at most 100.
    pub zoom: f64,
}

/// `POST /admin/console/sign-in-links`: a one-time console sign-in link (ten minutes, once).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SignInLink {
    pub url: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: time::OffsetDateTime,
}
