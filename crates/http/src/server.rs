//! The actix application: the router with its OpenAPI document, middleware
//! (request ids, tenant guard, access log, request spans), binding and serving.
//!
//! Must not know: SQL or use-cases beyond calling them.

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{App, HttpResponse, web};
pub use molecule_serve::Server;
use utoipa::OpenApi as _;
use utoipa_actix_web::AppExt;

use crate::errors;
use crate::state::AppState;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "molecule workspace-server", description = "Control plane of the molecule agent platform."),
    modifiers(&BearerScheme)
)]
struct BaseDoc;

struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document, generated from the same registration as the router.
pub fn openapi() -> utoipa::openapi::OpenApi {
    App::new()
        .into_utoipa_app()
        .openapi(BaseDoc::openapi())
        .configure(crate::routes::api)
        .split_for_parts()
        .1
}

/// Paths answered without the tenant header even when `MOLECULE_ORG_ID` is set.
const TENANT_EXEMPT: &[&str] = &[
    "/health",
    "/readyz",
    "/registry/register",
    "/registry/heartbeat",
    "/registry/bootstrap",
];

/// The whole application: routes, JSON error handlers, tenant guard, access log.
pub fn app(
    state: AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let org = state.org_id.clone();
    let cors_origins = state.cors_origins.clone();
    let limits = state.limits.clone();
    let mcp_settings = state.mcp.clone();
    let mcp_services = state.services.clone();
    let data = web::Data::new(state);
    // MCP first: actix tries routes in order and each route with a path parameter costs a
    // regex match, and tool calls are the busiest path. Not in the OpenAPI document (JSON-RPC
    // over one path; rmcp owns its shapes). The stream route comes before the scope, which
    // would take `/mcp/stream` and answer 404.
    let (app, doc) = App::new()
        .route("/workspaces/{id}/mcp/stream", web::get().to(crate::routes::mcp::stream))
        .service(crate::routes::mcp::scope(mcp_services, mcp_settings))
        .into_utoipa_app()
        .openapi(BaseDoc::openapi())
        .app_data(data)
        .app_data(errors::json_config())
        .app_data(errors::query_config())
        .app_data(errors::path_config())
        .configure(crate::routes::api)
        .split_for_parts();
    let doc = web::Data::new(doc);
    app.app_data(doc)
        .route(
            "/openapi.json",
            web::get()
                .to(|doc: web::Data<utoipa::openapi::OpenApi>| async move { HttpResponse::Ok().json(doc.get_ref()) }),
        )
        .configure(crate::routes::console::configure)
        .default_service(web::to(errors::not_found))
        // Innermost: every request runs with an actor slot that its authentication fills in.
        .wrap(actix_web::middleware::from_fn(
            |req: ServiceRequest, next: actix_web::middleware::Next<_>| molecule_actor::scope(None, next.call(req)),
        ))
        // The console's API gate rewrites `/console/api/<path>` before routing.
        .wrap(actix_web::middleware::from_fn(crate::routes::console::api_gate))
        .wrap(actix_web::middleware::from_fn(
            move |req: ServiceRequest, next: actix_web::middleware::Next<_>| {
                let org = org.clone();
                async move {
                    if let Some(org) = org {
                        // Vendors' webhooks cannot carry the tenant header; each is
                        // authenticated by its own signature instead (the original 404'd them).
                        let exempt = TENANT_EXEMPT.contains(&req.path()) || req.path().starts_with("/webhooks/");
                        let matches =
                            req.headers().get("X-Molecule-Org-Id").and_then(|v| v.to_str().ok()) == Some(org.as_str());
                        if !exempt && !matches {
                            let resp = HttpResponse::NotFound().json(serde_json::json!({ "error": "not found" }));
                            return Ok(req.into_response(resp).map_into_right_body());
                        }
                    }
                    next.call(req).await.map(|r| r.map_into_left_body())
                }
            },
        ))
        // CORS before the tenant guard (as the original's order), then the security headers on
        // every answer, refusals included.
        // The rate limit inside CORS, so a 429 still reaches an allowed page readably.
        .wrap(actix_web::middleware::from_fn(
            move |req: ServiceRequest, next: actix_web::middleware::Next<_>| {
                crate::limits::limit(limits.clone(), credential_key, req, next)
            },
        ))
        .wrap(crate::browser::cors(cors_origins))
        .wrap(actix_web::middleware::from_fn(crate::browser::finish))
        // Outside everything that can refuse, so refusals and 429s are counted too.
        .wrap(actix_web::middleware::from_fn(crate::observe::observe))
        .wrap(actix_web::middleware::from_fn(errors::request_id_middleware))
        .wrap(actix_web::middleware::Logger::new("%r %s %Dms").log_target("molecule_http::access"))
        // Outermost: the request's span covers everything above, including the access line.
        .wrap(tracing_actix_web::TracingLogger::<molecule_serve::RequestSpan>::new())
}

/// The credential a request presents, named for the rate limiter (never the secret): a bearer
/// token by a prefix of its SHA-256, a console session by its id.
fn credential_key(req: &actix_web::HttpRequest) -> Option<String> {
    if let Some(token) = crate::auth::bearer(req) {
        return Some(format!("tok:{}", crate::auth::digest_hex(token)));
    }
    crate::routes::console::session_key(req).map(|s| format!("console:{s}"))
}

/// Binds the listener, with an error that names the knobs to change.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    molecule_serve::bind(addr, "PORT / MOLECULE_BIND_ADDR")
}

/// Starts serving workspace-server on `listener` (see [`molecule_serve::Server`]).
pub fn serve(listener: TcpListener, state: AppState, shutdown_timeout: Duration) -> std::io::Result<Server> {
    Server::start(listener, move || app(state.clone()), shutdown_timeout)
}
