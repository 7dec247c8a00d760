//! Authentication extractors. Admin routes never fail open: without `ADMIN_TOKEN` they answer
//! 503. Workspace routes accept the admin token or a live token of that very workspace. Each
//! names the request's actor once it knows the caller (`molecule-actor`), so the events the
//! request records say who caused them.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, web};
use molecule_tree::tokens::TokenDigest;
use uuid::Uuid;

use crate::errors::ApiError;
use crate::state::AppState;

pub(crate) fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let token = value.strip_prefix("Bearer ")?.trim();
    (!token.is_empty()).then_some(token)
}

/// A short, stable name for a token that is not the token: the first 16 bytes of its SHA-256
/// in hex (the rate limiter's key).
pub(crate) fn digest_hex(token: &str) -> String {
    molecule_tree::tokens::hash(token)
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn state(req: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "server state missing"))
}

/// An operator signed in to the console. Only the console's API gate (`/console/api/…`, in
/// `routes::console`) puts this in a request, after checking the session cookie, the request's
/// origin and, for a change, its CSRF token; it then stands for the admin token. No request
/// that came in by another path can carry it.
#[derive(Debug, Clone)]
pub struct ConsoleCaller {
    /// Who signed in (`admin`, or a link's actor).
    pub actor: String,
}

/// The console operator behind this request, if it came through the console's API gate.
pub fn console_caller(req: &HttpRequest) -> Option<ConsoleCaller> {
    use actix_web::HttpMessage;
    req.extensions().get::<ConsoleCaller>().cloned()
}

fn is_admin(state: &AppState, token: &TokenDigest) -> bool {
    state
        .auth
        .admin_token
        .as_ref()
        .is_some_and(|admin| admin.matches(token))
}

/// The caller holds the admin token.
#[derive(Debug, Clone, Copy)]
pub struct AdminAuth;

impl FromRequest for AdminAuth {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready((|| {
            let state = state(req)?;
            if let Some(console) = console_caller(req) {
                molecule_actor::identify(format!("console:{}", console.actor));
                return Ok(AdminAuth);
            }
            if state.auth.admin_token.is_none() {
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "admin routes are disabled: set ADMIN_TOKEN on the server to enable them",
                ));
            }
            let token = bearer(req).ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "admin auth required: send Authorization: Bearer <ADMIN_TOKEN>",
                )
            })?;
            if !is_admin(&state, &TokenDigest::of(token)) {
                return Err(ApiError::new(StatusCode::UNAUTHORIZED, "invalid admin auth token"));
            }
            molecule_actor::identify("admin");
            Ok(AdminAuth)
        })())
    }
}

/// Who is acting on a workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Admin,
    Workspace { token_id: Uuid },
}

/// The caller may act on the workspace named by the `{id}` path segment.
#[derive(Debug, Clone, Copy)]
pub struct WorkspaceAuth {
    pub workspace_id: Uuid,
    pub caller: Caller,
}

impl WorkspaceAuth {
    pub fn is_admin(&self) -> bool {
        self.caller == Caller::Admin
    }
}

/// Checks the request's credential for workspace `id`: the admin token (or a console
/// session), or a live token of `id`.
pub(crate) async fn authorize(state: &AppState, req: &HttpRequest, id: Uuid) -> Result<Caller, ApiError> {
    if let Some(console) = console_caller(req) {
        molecule_actor::identify(format!("console:{}", console.actor));
        return Ok(Caller::Admin);
    }
    let token = bearer(req).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing workspace auth token: send Authorization: Bearer <token>",
        )
    })?;
    let token = TokenDigest::of(token);
    if is_admin(state, &token) {
        molecule_actor::identify("admin");
        return Ok(Caller::Admin);
    }
    let owner = state.services.tree().authorize_workspace_digest(&token, id).await?;
    molecule_actor::identify(format!("workspace:{id}"));
    Ok(Caller::Workspace {
        token_id: owner.token_id,
    })
}

/// The workspace id of an `{id}` path segment: 400 naming `id` when it is not a UUID.
pub(crate) fn path_workspace_id(raw: &str) -> Result<Uuid, ApiError> {
    raw.parse::<Uuid>().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("id: workspace id must be a UUID, got {raw:?}"),
        )
    })
}

impl FromRequest for WorkspaceAuth {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = state(&req)?;
            let raw = req.match_info().get("id").unwrap_or_default();
            let workspace_id = path_workspace_id(raw)?;
            let caller = authorize(&state, &req, workspace_id).await?;
            Ok(WorkspaceAuth { workspace_id, caller })
        })
    }
}
