//! Canvas bodies (`/canvas/viewport`): the original canvas's shapes (B §5.1).

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
