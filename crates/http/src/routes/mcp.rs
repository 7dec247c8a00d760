//! `POST /workspaces/:id/mcp`: the platform's MCP tools (`molecule-mcp`) served by the
//! official SDK's Streamable HTTP service (rmcp's own `StreamableHttpService`, called from an
//! actix handler), and the original's `GET …/mcp/stream`.
//!
//! Owns: the mount, workspace auth and the per-token rate limit in front of it (429 with
//! `Retry-After`), handing the authenticated workspace to the tools, and the one adaptation
//! the original's clients need (they send no `Accept` header; the SDK's transport requires
//! both JSON and event-stream to be acceptable). Must not know: the tools or the protocol
//! (rmcp owns JSON-RPC, versions and sessions: every request is served statelessly, answered
//! as JSON).
//!
//! Not mounted through `rmcp-actix-web`: its bridge spawns a task and a channel for every
//! request body, and streams even a JSON answer back chunked, behind a path-normalizing
//! middleware. Here the body is read in the handler (up to 4 MiB, else 413), every header but
//! `Authorization` and `Cookie` is passed on, and a JSON answer goes back whole, with its
//! length. rmcp's service and its checks are the same; only the glue is ours.

use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, COOKIE};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use molecule_mcp::{McpCaller, McpSettings, RateLimits, WorkspaceTools};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use crate::auth::{Caller, authorize, path_workspace_id};
use crate::errors::ApiError;
use crate::state::AppState;

/// How often the legacy stream sends a keep-alive comment.
const STREAM_PING: Duration = Duration::from_secs(30);

/// The largest JSON-RPC body a call may send (rmcp's own default, 4 MiB).
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// rmcp's Streamable HTTP service over the tools (its tower-style `handle`, called per request).
type Rmcp = StreamableHttpService<WorkspaceTools, LocalSessionManager>;

/// Authenticates the workspace, takes one call from its token's budget and puts the caller
/// where the handler reads it.
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
        let caller = authorize(&state, req.request(), id).await?;
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
            next.call(req).await.map(ServiceResponse::map_into_boxed_body)
        }
        Err(e) => Ok(req.error_response(e)),
    }
}

/// One MCP request: the body read here (up to [`MAX_BODY_BYTES`]), handed to rmcp as an
/// `http` 1.x request with the authenticated caller in its extensions, and rmcp's answer sent
/// back: a JSON answer as one body with its length, an event stream as a stream.
async fn handle(req: HttpRequest, payload: web::Payload, rmcp: web::Data<Rmcp>) -> Result<HttpResponse, ApiError> {
    use http_body_util::BodyExt;

    let body = super::limited_body(payload, MAX_BODY_BYTES, "an MCP request").await?;
    let request = bridge(&req, body)?;
    let (parts, body) = rmcp.handle(request).await.into_parts();
    let status = StatusCode::from_u16(parts.status.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut out = HttpResponse::build(status);
    for (name, value) in &parts.headers {
        out.append_header((name.as_str(), value.as_bytes()));
    }
    if http_body::Body::size_hint(&body).exact().is_some() {
        // A whole body (JSON, or one of rmcp's refusals): collecting it cannot fail.
        let bytes = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(never) => match never {},
        };
        Ok(out.body(bytes))
    } else {
        Ok(out.streaming(http_body_util::BodyDataStream::new(body)))
    }
}

/// The actix request as rmcp's `http` 1.x request: method, path, headers (without
/// `Authorization` and `Cookie`, which no tool may see or forward), `Accept` widened for the
/// original's clients (they send none; rmcp requires both JSON and event-stream to be
/// acceptable), and the caller the guard put in the extensions.
fn bridge(req: &HttpRequest, body: web::Bytes) -> Result<http1::Request<http_body_util::Full<web::Bytes>>, ApiError> {
    let bad = |what: &str| ApiError::new(StatusCode::BAD_REQUEST, format!("cannot read the request's {what}"));
    let mut request = http1::Request::new(http_body_util::Full::new(body));
    *request.method_mut() = http1::Method::from_bytes(req.method().as_str().as_bytes()).map_err(|_| bad("method"))?;
    *request.uri_mut() = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .parse()
        .map_err(|_| bad("path"))?;
    let headers = request.headers_mut();
    for (name, value) in req.headers() {
        if name == AUTHORIZATION || name == COOKIE {
            continue;
        }
        let name = http1::HeaderName::from_bytes(name.as_str().as_bytes()).map_err(|_| bad("headers"))?;
        let value = http1::HeaderValue::from_bytes(value.as_bytes()).map_err(|_| bad("headers"))?;
        headers.append(name, value);
    }
    let accepts_both = headers
        .get(http1::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json") && v.contains("text/event-stream"));
    if !accepts_both {
        headers.insert(
            http1::header::ACCEPT,
            http1::HeaderValue::from_static("application/json, text/event-stream"),
        );
    }
    let caller = req.extensions().get::<McpCaller>().copied().ok_or_else(|| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "MCP request without an authenticated caller",
        )
    })?;
    request.extensions_mut().insert(caller);
    Ok(request)
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
    let config = StreamableHttpServerConfig::default()
        // Every request stands alone (the original's clients never kept a session), answered
        // as one JSON body.
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_max_request_body_bytes(MAX_BODY_BYTES)
        // Agents reach the platform under whatever name their network gives it (a Docker
        // host alias, an EC2 address); every call carries a workspace token, checked above.
        .disable_allowed_hosts();
    let rmcp: Rmcp = StreamableHttpService::new(
        move || Ok(tools.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    web::scope("/workspaces/{id}/mcp")
        .app_data(web::Data::new(rmcp))
        .route("", web::route().to(handle))
        .route("/", web::route().to(handle))
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
