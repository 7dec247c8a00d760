//! `canvas`: what the original canvas (a separate app) reads and writes here, so it can be
//! pointed at this server: the shared viewport (the `canvas_viewport` table, its one owner).
//!
//! Owns: the viewport (`x`, `y`, `zoom`): finite numbers, `zoom` above 0 and at most
//! [`MAX_ZOOM`]; one global row; `{0, 0, 1}` until one is saved.
//!
//! Must not know: HTTP, the canvas app.

use diesel::OptionalExtension;
use diesel::sql_types::Double;
use diesel_async::RunQueryDsl;
use molecule_db::Pool;
use molecule_tree::{Result, ServiceError};

/// The largest zoom accepted.
pub const MAX_ZOOM: f64 = 100.0;
/// The largest |x| or |y| accepted.
pub const MAX_OFFSET: f64 = 1e9;

/// The canvas viewport.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Viewport {
    pub x: f64,
    pub y: f64,
    pub zoom: f64,
}

impl Default for Viewport {
    fn default() -> Self {
        Self {
            x: 0.0,
            y: 0.0,
            zoom: 1.0,
        }
    }
}

#[derive(diesel::QueryableByName)]
struct Row {
    #[diesel(sql_type = Double)]
    x: f64,
    #[diesel(sql_type = Double)]
    y: f64,
    #[diesel(sql_type = Double)]
    zoom: f64,
}

/// The saved viewport, or the default before any was saved.
pub async fn viewport(pool: &Pool) -> Result<Viewport> {
    let mut conn = pool.get().await?;
    let row: Option<Row> = diesel::sql_query("SELECT x, y, zoom FROM canvas_viewport")
        .get_result(&mut conn)
        .await
        .optional()?;
    Ok(row.map_or_else(Viewport::default, |r| Viewport {
        x: r.x,
        y: r.y,
        zoom: r.zoom,
    }))
}

/// Saves the viewport; the field at fault is named.
pub async fn save_viewport(pool: &Pool, v: Viewport) -> Result<()> {
    for (field, value) in [("x", v.x), ("y", v.y)] {
        if !value.is_finite() || value.abs() > MAX_OFFSET {
            return Err(ServiceError::invalid(
                field,
                format!("must be a number within ±{MAX_OFFSET}"),
            ));
        }
    }
    if !(v.zoom.is_finite() && v.zoom > 0.0 && v.zoom <= MAX_ZOOM) {
        return Err(ServiceError::invalid(
            "zoom",
            format!("must be above 0 and at most {MAX_ZOOM}"),
        ));
    }
    let mut conn = pool.get().await?;
    diesel::sql_query(
        "INSERT INTO canvas_viewport (x, y, zoom) VALUES ($1, $2, $3) \
         ON CONFLICT (id) DO UPDATE SET x = EXCLUDED.x, y = EXCLUDED.y, zoom = EXCLUDED.zoom, saved_at = now()",
    )
    .bind::<Double, _>(v.x)
    .bind::<Double, _>(v.y)
    .bind::<Double, _>(v.zoom)
    .execute(&mut conn)
    .await?;
    Ok(())
}
