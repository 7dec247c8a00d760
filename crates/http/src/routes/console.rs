//! The operator console's routes (`/console`): pages, not API, so not in the OpenAPI document.
//!
//! Sign-in trades the admin token for a session cookie (HttpOnly, `SameSite=Strict`, path
//! `/console`, `Secure` over HTTPS, signed; see `molecule_console::session`); the token is
//! never put in a page, a URL or script-readable storage. Nothing but the sign-in page and its
//! two assets is served without a live session: a page request is redirected to sign-in.
//! Every state-changing request must be same-origin (`Origin`, `Sec-Fetch-Site`) and carry the
//! session's CSRF token. Every answer carries a strict Content-Security-Policy (no inline
//! script or style), `nosniff`, `no-referrer`, and pages are not cached.
//!
//! Must not know: the sessions' table, the HTML.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use molecule_console::pages::{self, Filter, FleetRow, PendingRow};
use molecule_console::session::{COOKIE, SESSION_TTL, Session, Sessions};
use molecule_domain::Vocabulary;
use molecule_tree::tokens::TokenDigest;

use crate::errors::ApiError;
use crate::state::AppState;

/// The console's Content-Security-Policy: its own script, style and requests only.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Registers the console's routes on the application.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/console", web::get().to(fleet))
        .route("/console/sign-in", web::get().to(sign_in_page))
        .route("/console/sign-in", web::post().to(sign_in))
        .route("/console/sign-in/link", web::get().to(sign_in_link))
        .route("/console/sign-out", web::post().to(sign_out))
        .route(
            "/console/approvals/{workspace_id}/{approval_id}",
            web::post().to(decide),
        )
        .route("/console/assets/{name}", web::get().to(asset));
}

fn harden(mut resp: HttpResponse) -> HttpResponse {
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

fn page(status: StatusCode, html: String) -> HttpResponse {
    harden(
        HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(html),
    )
}

fn redirect(to: &'static str) -> HttpResponse {
    harden(HttpResponse::SeeOther().insert_header((header::LOCATION, to)).finish())
}

pub(crate) fn sessions(state: &AppState) -> Option<Sessions> {
    state
        .auth
        .console_key
        .map(|key| Sessions::new(state.pool.clone(), &key, SESSION_TTL))
}

async fn current(req: &HttpRequest, state: &AppState) -> Result<Option<(Sessions, Session)>, ApiError> {
    let (Some(sessions), Some(cookie)) = (sessions(state), cookie_value(req)) else {
        return Ok(None);
    };
    Ok(sessions.check(&cookie).await?.map(|s| (sessions, s)))
}

/// The console cookie's value, from any `Cookie` header.
fn cookie_value(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE && !value.is_empty()).then(|| value.to_owned())
        })
}

/// A state-changing request from another site: a browser says so in `Sec-Fetch-Site`, or its
/// `Origin` names another host.
fn cross_site(req: &HttpRequest) -> bool {
    let fetch_site = req.headers().get("Sec-Fetch-Site").and_then(|v| v.to_str().ok());
    if matches!(fetch_site, Some("cross-site" | "same-site")) {
        return true;
    }
    let Some(origin) = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let host = req.connection_info().host().to_owned();
    origin
        .split_once("://")
        .is_none_or(|(_, rest)| !rest.eq_ignore_ascii_case(&host))
}

/// The answer to a sign-in: the session cookie, and on to the fleet.
fn signed_in(req: &HttpRequest, value: &str) -> HttpResponse {
    let secure = req.connection_info().scheme() == "https";
    harden(
        HttpResponse::SeeOther()
            .insert_header((header::LOCATION, "/console"))
            .insert_header((header::SET_COOKIE, cookie(value, SESSION_TTL.as_secs() as i64, secure)))
            .finish(),
    )
}

fn cookie(value: &str, max_age: i64, secure: bool) -> String {
    format!(
        "{COOKIE}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    )
}

async fn sign_in_page(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if current(&req, &state).await?.is_some() {
        return Ok(redirect("/console"));
    }
    Ok(page(StatusCode::OK, pages::sign_in(None)))
}

#[derive(serde::Deserialize)]
struct SignInForm {
    #[serde(default)]
    token: String,
}

async fn sign_in(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<SignInForm>,
) -> Result<HttpResponse, ApiError> {
    if cross_site(&req) {
        return Ok(page(
            StatusCode::FORBIDDEN,
            pages::sign_in(Some("Refused: a cross-site request.")),
        ));
    }
    let (Some(sessions), Some(admin)) = (sessions(&state), state.auth.admin_token.as_ref()) else {
        return Ok(page(
            StatusCode::SERVICE_UNAVAILABLE,
            pages::sign_in(Some(
                "ADMIN_TOKEN is not set on this server: the console cannot sign anyone in.",
            )),
        ));
    };
    if !admin.matches(&TokenDigest::of(form.token.trim())) {
        tracing::info!("console sign-in refused: wrong token");
        return Ok(page(
            StatusCode::UNAUTHORIZED,
            pages::sign_in(Some("That token is not the admin token.")),
        ));
    }
    let issued = sessions.sign_in("admin").await?;
    tracing::info!(session_id = %issued.session.id, actor = "admin", "console sign-in");
    Ok(signed_in(&req, &issued.cookie))
}

#[derive(serde::Deserialize)]
struct LinkQuery {
    #[serde(default)]
    code: String,
}

/// A one-time link (`POST /admin/console/sign-in-links`): used once, it signs in as its actor.
async fn sign_in_link(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<LinkQuery>,
) -> Result<HttpResponse, ApiError> {
    let Some(sessions) = sessions(&state) else {
        return Ok(page(
            StatusCode::SERVICE_UNAVAILABLE,
            pages::sign_in(Some("ADMIN_TOKEN is not set on this server.")),
        ));
    };
    let Some(issued) = sessions.redeem_link(&query.code).await? else {
        return Ok(page(
            StatusCode::UNAUTHORIZED,
            pages::sign_in(Some(
                "That sign-in link was used already or has expired; sign in with the token.",
            )),
        ));
    };
    tracing::info!(session_id = %issued.session.id, actor = %issued.session.actor, "console sign-in by link");
    Ok(signed_in(&req, &issued.cookie))
}

#[derive(serde::Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn sign_out(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ApiError> {
    let Some((sessions, session)) = current(&req, &state).await? else {
        return Ok(redirect("/console/sign-in"));
    };
    if cross_site(&req) || !Sessions::csrf_matches(&session, &form.csrf) {
        return Ok(harden(HttpResponse::Forbidden().json(
            serde_json::json!({ "error": "refused: a cross-site request or a missing CSRF token" }),
        )));
    }
    sessions.sign_out(session.id).await?;
    tracing::info!(session_id = %session.id, "console sign-out");
    let secure = req.connection_info().scheme() == "https";
    Ok(harden(
        HttpResponse::SeeOther()
            .insert_header((header::LOCATION, "/console/sign-in"))
            .insert_header((header::SET_COOKIE, cookie("", 0, secure)))
            .finish(),
    ))
}

#[derive(serde::Deserialize, Default)]
struct FilterQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    runtime: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    failed_children: Option<String>,
}

async fn fleet(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: Option<web::Query<FilterQuery>>,
) -> Result<HttpResponse, ApiError> {
    let query = query.map(web::Query::into_inner).unwrap_or_default();
    let filter = Filter {
        status: query.status.trim().to_owned(),
        runtime: query.runtime.trim().to_owned(),
        text: query.q.trim().to_owned(),
        failed_children: query
            .failed_children
            .is_some_and(|v| v == "1" || v == "on" || v == "true"),
    };
    let Some((_, session)) = current(&req, &state).await? else {
        return Ok(redirect("/console/sign-in"));
    };
    let rows: Vec<FleetRow> = state
        .services
        .tree()
        .list_workspaces()
        .await?
        .into_iter()
        .map(|w| FleetRow {
            id: w.id,
            name: w.name,
            status: w.status.as_str().to_owned(),
            runtime: w.runtime.as_str().to_owned(),
            parent_id: w.parent_id,
            last_sample_error: w.last_sample_error,
        })
        .collect();
    let pending: Vec<PendingRow> = state
        .services
        .approvals()
        .pending()
        .await?
        .into_iter()
        .map(|(a, workspace_name)| PendingRow {
            id: a.id,
            workspace_id: a.workspace_id,
            workspace_name,
            action: a.action,
            reason: a.reason,
        })
        .collect();
    let statuses: Vec<&str> = molecule_domain::WorkspaceStatus::ALL
        .iter()
        .map(|s| s.as_str())
        .collect();
    Ok(page(
        StatusCode::OK,
        pages::fleet(&session.actor, &rows, &pending, &filter, &statuses, &session.csrf),
    ))
}

#[derive(serde::Deserialize)]
struct DecideForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
}

/// Approve or deny a pending approval from the fleet page's banner, as the operator
/// (`decided_by`: `console:<actor>`).
async fn decide(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    form: web::Form<DecideForm>,
) -> Result<HttpResponse, ApiError> {
    let Some((_, session)) = current(&req, &state).await? else {
        return Ok(redirect("/console/sign-in"));
    };
    if cross_site(&req) || !Sessions::csrf_matches(&session, &form.csrf) {
        return Ok(harden(HttpResponse::Forbidden().json(
            serde_json::json!({ "error": "refused: a cross-site request or a missing CSRF token" }),
        )));
    }
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "approval not found");
    let (Ok(workspace_id), Ok(id)) = (path.0.parse(), path.1.parse()) else {
        return Err(not_found());
    };
    state
        .services
        .approvals()
        .decide(
            workspace_id,
            id,
            &form.decision,
            molecule_approvals::Decider::Operator {
                name: Some(format!("console:{}", session.actor)),
            },
        )
        .await?;
    Ok(redirect("/console"))
}

async fn asset(path: web::Path<String>) -> HttpResponse {
    let (body, kind) = match path.as_str() {
        "console.css" => (pages::CSS, "text/css; charset=utf-8"),
        "console.js" => (pages::JS, "text/javascript; charset=utf-8"),
        _ => return harden(HttpResponse::NotFound().json(serde_json::json!({ "error": "no such asset" }))),
    };
    harden(
        HttpResponse::Ok()
            .content_type(kind)
            .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
            .body(body),
    )
}
