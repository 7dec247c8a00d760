//! The operator console's routes (`/console`): pages, not API, so not in the OpenAPI document.
//!
//! Sign-in trades the admin token for a session cookie (HttpOnly, `SameSite=Strict`, path
//! `/console`, `Secure` over HTTPS, signed; see `molecule_console::session`); the token is
//! never put in a page, a URL or script-readable storage. Nothing but the sign-in page and its
//! two assets is served without a live session: a page request is redirected to sign-in.
//! Every state-changing request must be same-origin (`Origin`, `Sec-Fetch-Site`) and carry the
//! session's CSRF token. Every answer carries a strict Content-Security-Policy (no inline
//! script or style), `nosniff`, `Referrer-Policy: same-origin`, and pages are not cached.
//!
//! Must not know: the sessions' table, the HTML.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode, Uri};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, ResponseError, web};
use molecule_console::pages::{self, Filter, FleetRow, PendingRow};
use molecule_console::session::{COOKIE, SESSION_TTL, Session, Sessions};
use molecule_domain::Vocabulary;
use molecule_tree::tokens::TokenDigest;

use crate::auth::ConsoleCaller;
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
        .route("/console/fleet/live", web::get().to(fleet_live))
        .route("/console/workspaces/{id}", web::get().to(workspace_page))
        .route("/console/delegations", web::get().to(delegations_page))
        .route("/console/system", web::get().to(system_page))
        .route(
            "/console/approvals/{workspace_id}/{approval_id}",
            web::post().to(decide),
        )
        .route("/console/assets/{name}", web::get().to(asset));
}

/// The prefix under which a signed-in console reaches the JSON API.
pub const API_PREFIX: &str = "/console/api/";

/// The console's door to the JSON API: `/console/api/<path>` is `/<path>` for a signed-in
/// operator, who then counts as the admin (see [`crate::auth::ConsoleCaller`]). The page's
/// script never holds a token: the session cookie (path `/console`) rides along. Refused
/// without a live session (401), from another origin (403, WebSocket upgrades included), and,
/// for anything but a read, without the session's CSRF token in `X-CSRF-Token` (403).
pub(crate) async fn api_gate(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(tail) = req.path().strip_prefix(API_PREFIX).map(|t| format!("/{t}")) else {
        return next.call(req).await.map(ServiceResponse::map_into_left_body);
    };
    let checked = async {
        let state = req
            .app_data::<web::Data<AppState>>()
            .cloned()
            .ok_or_else(|| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "application state missing"))?;
        let Some((_, session)) = current(req.request(), &state).await? else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "sign in to the console first (/console/sign-in)",
            ));
        };
        if cross_site(req.request()) {
            return Err(ApiError::new(StatusCode::FORBIDDEN, "refused: a cross-site request"));
        }
        let reads = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
        let csrf = req
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !reads && !Sessions::csrf_matches(&session, csrf) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "refused: a change needs the session's CSRF token in X-CSRF-Token",
            ));
        }
        let target = match req.uri().query() {
            Some(q) => format!("{tail}?{q}"),
            None => tail,
        };
        let uri: Uri = target
            .parse()
            .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "path: not a valid request path"))?;
        Ok((session, uri))
    }
    .await;
    match checked {
        Ok((session, uri)) => {
            req.head_mut().uri = uri.clone();
            req.match_info_mut().get_mut().update(&uri);
            req.extensions_mut().insert(ConsoleCaller { actor: session.actor });
            next.call(req).await.map(ServiceResponse::map_into_left_body)
        }
        Err(e) => {
            let resp = harden(e.error_response());
            Ok(req.into_response(resp).map_into_right_body())
        }
    }
}

/// The header a console change carries its CSRF token in.
pub const CSRF_HEADER: &str = "X-CSRF-Token";

fn harden(mut resp: HttpResponse) -> HttpResponse {
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Not `no-referrer`: under it a browser sends `Origin: null` with a form post.
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
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
    let found = sessions.check(&cookie).await?;
    if let Some(s) = &found {
        // What this request changes is the signed-in operator's doing.
        molecule_actor::identify(format!("console:{}", s.actor));
    }
    Ok(found.map(|s| (sessions, s)))
}

/// The console session a request names (the cookie's id part, not its secret), for the rate
/// limiter's key; unchecked.
pub(crate) fn session_key(req: &HttpRequest) -> Option<String> {
    cookie_value(req).and_then(|v| v.split('.').next().map(str::to_owned))
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

/// A state-changing request from another site. A browser that sends `Sec-Fetch-Site` is
/// believed (only `same-origin`, or `none` for what the user typed, pass); otherwise an
/// `Origin` must name this host (an opaque `null` origin does not).
fn cross_site(req: &HttpRequest) -> bool {
    if let Some(site) = req.headers().get("Sec-Fetch-Site") {
        return !matches!(site.to_str(), Ok("same-origin" | "none"));
    }
    let Some(origin) = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    !crate::browser::origin_is_host(origin, req.connection_info().host())
}

/// The refusal of a change from another site or without the session's CSRF token.
fn refused_change() -> HttpResponse {
    harden(
        HttpResponse::Forbidden()
            .json(serde_json::json!({ "error": "refused: a cross-site request or a missing CSRF token" })),
    )
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
        return Ok(refused_change());
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
    #[serde(default)]
    roots: Option<String>,
}

impl FilterQuery {
    fn filter(self) -> Filter {
        let on = |v: Option<String>| v.is_some_and(|v| v == "1" || v == "on" || v == "true");
        Filter {
            status: self.status.trim().to_owned(),
            runtime: self.runtime.trim().to_owned(),
            text: self.q.trim().to_owned(),
            failed_children: on(self.failed_children),
            roots: on(self.roots),
        }
    }
}

/// Every live workspace as the fleet shows it, and the pending approvals.
async fn fleet_rows(state: &AppState) -> Result<(Vec<FleetRow>, Vec<PendingRow>), ApiError> {
    let tree = state.services.tree();
    let (workspaces, backends, depths) = tokio::try_join!(
        tree.list_workspaces(),
        tree.backends(),
        state.services.messaging().queue_depths()
    )?;
    let rows = workspaces
        .into_iter()
        .map(|w| FleetRow {
            backend: backends.get(&w.id).cloned(),
            queue_depth: depths.get(&w.id).copied().unwrap_or(0),
            id: w.id,
            name: w.name,
            status: w.status.as_str().to_owned(),
            runtime: w.runtime.as_str().to_owned(),
            parent_id: w.parent_id,
            last_sample_error: w.last_sample_error,
            model: w.model,
            heartbeat_at: w.last_heartbeat_at.map(|t| t.unix_timestamp()),
            active_tasks: w.active_tasks,
        })
        .collect();
    let pending = state
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
    Ok((rows, pending))
}

async fn fleet(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: Option<web::Query<FilterQuery>>,
) -> Result<HttpResponse, ApiError> {
    let filter = query.map(web::Query::into_inner).unwrap_or_default().filter();
    let Some((_, session)) = current(&req, &state).await? else {
        return Ok(redirect("/console/sign-in"));
    };
    let (rows, pending) = fleet_rows(&state).await?;
    let statuses: Vec<&str> = molecule_domain::WorkspaceStatus::ALL
        .iter()
        .map(|s| s.as_str())
        .collect();
    Ok(page(
        StatusCode::OK,
        pages::fleet(signed(&session), &rows, &pending, &filter, &statuses),
    ))
}

/// The fleet page's live part alone, which its script fetches again when events arrive.
async fn fleet_live(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: Option<web::Query<FilterQuery>>,
) -> Result<HttpResponse, ApiError> {
    let filter = query.map(web::Query::into_inner).unwrap_or_default().filter();
    let Some((_, session)) = current(&req, &state).await? else {
        return Ok(redirect("/console/sign-in"));
    };
    let (rows, pending) = fleet_rows(&state).await?;
    Ok(page(
        StatusCode::OK,
        pages::fleet_live(&rows, &pending, &filter, &session.csrf),
    ))
}

fn signed(session: &Session) -> pages::Signed<'_> {
    pages::Signed {
        actor: &session.actor,
        csrf: &session.csrf,
    }
}

async fn delegations_page(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let Some((_, session)) = current(&req, &state).await? else {
        return Ok(redirect("/console/sign-in"));
    };
    Ok(page(StatusCode::OK, pages::delegations(signed(&session))))
}

async fn system_page(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let Some((_, session)) = current(&req, &state).await? else {
        return Ok(redirect("/console/sign-in"));
    };
    let persisted: Vec<&str> = molecule_domain::EventType::ALL
        .iter()
        .filter(|t| t.is_persisted())
        .map(|t| t.as_str())
        .collect();
    Ok(page(StatusCode::OK, pages::system(signed(&session), &persisted)))
}

/// A short, secret-free summary of an event's payload for the timeline.
fn summarize(payload: &serde_json::Value) -> String {
    let Some(map) = payload.as_object() else {
        return String::new();
    };
    let mut parts = Vec::new();
    for key in ["error", "reason", "status", "source", "url", "name", "runtime"] {
        if let Some(v) = map.get(key).and_then(|v| v.as_str()).filter(|v| !v.is_empty()) {
            let v: String = v.chars().take(200).collect();
            parts.push(format!("{key}: {v}"));
        }
    }
    parts.join(", ")
}

/// The workspace drawer, as its own page: status, reason, timeline, and the areas the
/// script fills through the API.
async fn workspace_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let Some((_, session)) = current(&req, &state).await? else {
        return Ok(redirect("/console/sign-in"));
    };
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "workspace not found");
    let id: uuid::Uuid = path.parse().map_err(|_| not_found())?;
    let tree = state.services.tree();
    let w = tree.get_workspace(id).await?;
    let parent = match w.parent_id {
        Some(p) => tree.get_workspace(p).await.ok().map(|p| (p.id, p.name)),
        None => None,
    };
    let backend = tree.backends().await?.remove(&id);
    let timeline = tree
        .recent_events(Some(id), 50)
        .await?
        .into_iter()
        .rev()
        .filter(|e| e.event != "WORKSPACE_HEARTBEAT")
        .map(|e| pages::TimelineRow {
            at: e
                .timestamp
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            event: e.event,
            detail: summarize(&e.payload),
        })
        .collect();
    let view = pages::WorkspaceView {
        id: w.id,
        name: w.name,
        status: w.status.as_str().to_owned(),
        runtime: w.runtime.as_str().to_owned(),
        model: w.model,
        backend,
        parent,
        last_sample_error: w.last_sample_error,
        timeline,
    };
    Ok(page(StatusCode::OK, pages::workspace(signed(&session), &view)))
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
        return Ok(refused_change());
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
        "xterm.js" => (pages::XTERM_JS, "text/javascript; charset=utf-8"),
        "xterm.css" => (pages::XTERM_CSS, "text/css; charset=utf-8"),
        _ => return harden(HttpResponse::NotFound().json(serde_json::json!({ "error": "no such asset" }))),
    };
    harden(
        HttpResponse::Ok()
            .content_type(kind)
            .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
            .body(body),
    )
}
