//! Canvas compatibility routes (`/canvas/viewport`), so the original canvas app can be pointed
//! at this server: the shared viewport, read openly (as the original) and saved with the admin
//! token (the original also took any workspace's token, letting an agent move the operators'
//! view).
//!
//! Must not know: the table.

use actix_web::{HttpRequest, post};
use actix_web::{HttpResponse, get, put, web};
use molecule_api::canvas::{SignInLink, Viewport};
use molecule_console::canvas;
use serde_json::json;

use crate::auth::AdminAuth;
use crate::errors::{ApiError, ErrorBody};
use crate::state::AppState;

/// The saved viewport; `{x:0, y:0, zoom:1}` before any was saved.
#[utoipa::path(tag = "canvas", responses((status = 200, body = Viewport), (status = 503, body = ErrorBody)))]
#[get("/canvas/viewport")]
pub async fn get_viewport(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let v = canvas::viewport(&state.pool).await?;
    Ok(HttpResponse::Ok().json(Viewport {
        x: v.x,
        y: v.y,
        zoom: v.zoom,
    }))
}

/// A one-time sign-in link for the operator console (ten minutes, once): `cargo xtask up` prints
/// one.
#[utoipa::path(
    tag = "console",
    responses((status = 201, body = SignInLink), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/admin/console/sign-in-links")]
pub async fn mint_sign_in_link(
    _admin: AdminAuth,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let sessions = super::console::sessions(&state).ok_or_else(|| {
        ApiError::new(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "ADMIN_TOKEN is not set",
        )
    })?;
    let (code, expires_at) = sessions.mint_link("admin").await?;
    let info = req.connection_info();
    Ok(HttpResponse::Created().json(SignInLink {
        url: format!("{}://{}/console/sign-in/link?code={code}", info.scheme(), info.host()),
        expires_at,
    }))
}

/// Save the viewport (one, shared by every operator).
#[utoipa::path(
    tag = "canvas",
    request_body = Viewport,
    responses((status = 200, description = "`{\"status\":\"saved\"}`"), (status = 400, description = "`x`, `y` or `zoom` is missing or out of range, named in the answer", body = ErrorBody), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[put("/canvas/viewport")]
pub async fn put_viewport(
    _admin: AdminAuth,
    state: web::Data<AppState>,
    body: web::Json<Viewport>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    canvas::save_viewport(
        &state.pool,
        canvas::Viewport {
            x: b.x,
            y: b.y,
            zoom: b.zoom,
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "status": "saved" })))
}
