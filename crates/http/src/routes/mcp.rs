//! `POST /workspaces/:id/mcp`: the platform's MCP tools (`molecule-mcp`) served by the
//! official SDK through `rmcp-actix-web`, and the original's `GET …/mcp/stream`.
//!
//! Owns: the mount, workspace auth and the per-token rate limit in front of it (429 with
//! `Retry-After`), handing the authenticated workspace to the tools, and the one adaptation
//! the original's clients need (they send no `Accept` header; the SDK's transport requires
//! both JSON and event-stream to be acceptable). Must not know: the tools or the protocol
//! (rmcp owns JSON-RPC, versions and sessions: every request is served statelessly, answered
//! as JSON).

use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{ACCEPT, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use molecule_mcp::{McpCaller, McpSettings, RateLimits, WorkspaceTools};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp_actix_web::transport::StreamableHttpService;

use crate::auth::{Caller, authorize, bearer, path_workspace_id};
use crate::errors::ApiError;
use crate::server::AppState;

/// How often the legacy stream sends a keep-alive comment.
const STREAM_PING: Duration = Duration::from_secs(30);

/// Authenticates the workspace, takes one call from its token's budget and puts the caller
/// where the tools read it.
async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
    limits: RateLimits,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let checked = async {
        let state = req
            .app_data::<web::Data<AppState>>()
            .ok_or_else(|| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "application state missing"))?
            .clone();
        let id = path_workspace_id(req.match_info().get("id").unwrap_or_default())?;
        let caller = authorize(&state, bearer(req.request()), id).await?;
        // One budget per token: a workspace token by its id, the admin token as one key.
        let key = match caller {
            Caller::Workspace { token_id } => token_id,
            Caller::Admin => uuid::Uuid::nil(),
        };
        if let Err(wait) = limits.check(key) {
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "MCP rate limit: {} calls a minute per token (MOLECULE_MCP_CALLS_PER_MINUTE); retry in {} s",
                    limits.quota(),
                    wait.as_secs().max(1)
                ),
            );
            e.retry_after = Some(u32::try_from(wait.as_secs().max(1)).unwrap_or(u32::MAX));
            return Err(e);
        }
        Ok::<_, ApiError>(id)
    }
    .await;
    match checked {
        Ok(id) => {
            req.extensions_mut().insert(McpCaller(id));
            let mut req = req;
            let headers = req.headers_mut();
            let accepts_both = headers
                .get(ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("application/json") && v.contains("text/event-stream"));
            if !accepts_both {
                headers.insert(ACCEPT, HeaderValue::from_static("application/json, text/event-stream"));
            }
            next.call(req).await.map(ServiceResponse::map_into_boxed_body)
        }
        Err(e) => Ok(req.error_response(e)),
    }
}

/// The MCP scope at `/workspaces/{id}/mcp`.
pub fn scope(
    services: molecule_service::Services,
    settings: McpSettings,
) -> actix_web::Scope<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let limits = settings.limits;
    // Built once (the tool list and its schemas); each request gets a clone.
    let tools = WorkspaceTools::new(services, settings.allow_send_message);
    StreamableHttpService::builder()
        .service_factory(Arc::new(move || Ok(tools.clone())))
        .session_manager(Arc::new(LocalSessionManager::default()))
        // Every request stands alone (the original's clients never kept a session), answered
        // as one JSON body.
        .stateful_mode(false)
        .json_response(true)
        // Agents reach the platform under whatever name their network gives it (a Docker
        // host alias, an EC2 address); every call carries a workspace token, checked above.
        .allowed_hosts(Vec::new())
        .on_request_fn(|req: &HttpRequest, ext: &mut rmcp::model::Extensions| {
            if let Some(caller) = req.extensions().get::<McpCaller>() {
                ext.insert(*caller);
            }
        })
        .build()
        .scope_with_path("/workspaces/{id}/mcp")
        .wrap(actix_web::middleware::from_fn(move |req, next| {
            guard(req, next, limits.clone())
        }))
}

/// `GET /workspaces/:id/mcp/stream`: the 2024-11-05 SSE handshake the original served: the
/// endpoint to POST to, then a keep-alive comment every 30 s, until the client leaves or the
/// server shuts down.
pub async fn stream(auth: crate::auth::WorkspaceAuth, state: web::Data<AppState>) -> HttpResponse {
    use futures_util::StreamExt;
    let endpoint = format!("event: endpoint\ndata: /workspaces/{}/mcp\n\n", auth.workspace_id);
    let first = futures_util::stream::once(async move { Ok::<_, actix_web::Error>(web::Bytes::from(endpoint)) });
    let pings = futures_util::stream::unfold((), |()| async {
        tokio::time::sleep(STREAM_PING).await;
        Some((Ok(web::Bytes::from_static(b": ping\n\n")), ()))
    });
    let bus = state.services.bus().clone();
    let closing = Box::pin(async move { bus.closed().await });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(first.chain(pings).take_until(closing))
}
