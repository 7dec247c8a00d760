//! Channel routes: the adapter catalogue (open), a workspace's channels (list, create, change,
//! delete, send, test: the workspace's own token or the admin's; a channel id is looked up
//! within the path's workspace only, so another workspace's is a 404), Discover (admin), and
//! the vendors' webhooks (open: each request is verified against the channel row's secret, a
//! failure is a 401 that names nothing), GitHub's among them.
//!
//! Must not know: the vendors' formats, the tables, how a message reaches an agent.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use molecule_api::channels::{
    AdapterInfo, Channel, ChannelCreated, CreateChannel, Discover, Discovered, PatchChannel, SendText, WebhookAnswer,
};
use molecule_channels::adapter::Headers;
use molecule_channels::github::GithubOutcome;
use molecule_channels::{Channels, InboundOutcome, MAX_BODY_BYTES};
use molecule_domain::{ChannelType, Vocabulary};
use serde_json::json;
use uuid::Uuid;

use crate::auth::{AdminAuth, WorkspaceAuth};
use crate::errors::{ApiError, ErrorBody};
use crate::state::AppState;

/// A channel id from the path: anything but a UUID names no channel (404, as an unknown one).
fn channel_id(raw: &str) -> Result<Uuid, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "channel not found"))
}

/// The adapters and their config schemas, by display name.
#[utoipa::path(tag = "channels", responses((status = 200, body = [AdapterInfo])))]
#[get("/channels/adapters")]
pub async fn list_adapters() -> HttpResponse {
    HttpResponse::Ok().json(Channels::adapters())
}

/// The workspace's channels, oldest first; every sensitive field masked.
#[utoipa::path(
    tag = "channels",
    params(("id" = Uuid, Path, description = "workspace id")),
    responses((status = 200, body = [Channel]), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/workspaces/{id}/channels")]
pub async fn list_channels(auth: WorkspaceAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.services.channels().list(auth.workspace_id).await?))
}

/// Connect a channel: one per type per workspace. The config is checked whole against the
/// adapter's schema; sensitive fields are sealed.
#[utoipa::path(
    tag = "channels",
    params(("id" = Uuid, Path, description = "workspace id")),
    request_body = CreateChannel,
    responses((status = 201, body = ChannelCreated), (status = 400, description = "`channel_type`, `config` (the field and why), `allowed_users` or `channel_budget` is wrong", body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "the workspace already has a channel of this type, or is removed", body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/workspaces/{id}/channels")]
pub async fn create_channel(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    body: web::Json<CreateChannel>,
) -> Result<HttpResponse, ApiError> {
    let made = state
        .services
        .channels()
        .create(auth.workspace_id, body.into_inner())
        .await?;
    Ok(HttpResponse::Created().json(made))
}

/// Change a channel: each field present replaces; a new config is checked whole, and a masked
/// value (as the list shows it) keeps the stored secret.
#[utoipa::path(
    tag = "channels",
    params(("id" = Uuid, Path, description = "workspace id"), ("channel_id" = Uuid, Path, description = "channel id")),
    request_body = PatchChannel,
    responses((status = 200, description = "`{\"status\":\"updated\"}`"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[patch("/workspaces/{id}/channels/{channel_id}")]
pub async fn update_channel(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Json<PatchChannel>,
) -> Result<HttpResponse, ApiError> {
    let id = channel_id(&path.1)?;
    state
        .services
        .channels()
        .update(auth.workspace_id, id, body.into_inner())
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "status": "updated" })))
}

/// Disconnect a channel.
#[utoipa::path(
    tag = "channels",
    params(("id" = Uuid, Path, description = "workspace id"), ("channel_id" = Uuid, Path, description = "channel id")),
    responses((status = 200, description = "`{\"status\":\"deleted\"}`"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[delete("/workspaces/{id}/channels/{channel_id}")]
pub async fn delete_channel(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let id = channel_id(&path.1)?;
    state.services.channels().delete(auth.workspace_id, id).await?;
    Ok(HttpResponse::Ok().json(json!({ "status": "deleted" })))
}

/// Post a text through the channel to each of its destinations (budget-checked). Any
/// destination the vendor refuses makes it a 502 with the vendor's error.
#[utoipa::path(
    tag = "channels",
    params(("id" = Uuid, Path, description = "workspace id"), ("channel_id" = Uuid, Path, description = "channel id")),
    request_body = SendText,
    responses((status = 200, description = "`{\"status\":\"sent\"}`"), (status = 400, description = "`text` is empty", body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "the channel is disabled", body = ErrorBody), (status = 429, description = "the channel's budget is spent", body = ErrorBody), (status = 502, description = "the vendor refused: its error", body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/workspaces/{id}/channels/{channel_id}/send")]
pub async fn send_channel(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Json<SendText>,
) -> Result<HttpResponse, ApiError> {
    let id = channel_id(&path.1)?;
    state
        .services
        .channels()
        .send(auth.workspace_id, id, &body.text)
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "status": "sent" })))
}

/// Post the fixed test message (no budget).
#[utoipa::path(
    tag = "channels",
    params(("id" = Uuid, Path, description = "workspace id"), ("channel_id" = Uuid, Path, description = "channel id")),
    responses((status = 200, description = "`{\"status\":\"ok\",\"message\":\"test message sent\"}`"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 502, description = "the vendor refused: its error", body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/workspaces/{id}/channels/{channel_id}/test")]
pub async fn test_channel(
    auth: WorkspaceAuth,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let id = channel_id(&path.1)?;
    state.services.channels().test(auth.workspace_id, id).await?;
    Ok(HttpResponse::Ok().json(json!({ "status": "ok", "message": "test message sent" })))
}

/// Telegram: the bot's name and the chats that wrote to it (to fill `chat_id`).
#[utoipa::path(
    tag = "channels",
    request_body = Discover,
    responses((status = 200, body = Discovered), (status = 400, description = "a field is missing, or Telegram refused (a friendly reason)", body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[post("/channels/discover")]
pub async fn discover_channels(
    _admin: AdminAuth,
    state: web::Data<AppState>,
    body: web::Json<Discover>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.services.channels().discover(body.into_inner()).await?))
}

fn headers_of(req: &HttpRequest) -> Headers {
    Headers(
        req.headers()
            .iter()
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_owned(), v.to_owned())))
            .collect(),
    )
}

fn kind_of(raw: &str) -> Result<ChannelType, ApiError> {
    ChannelType::parse(raw).map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "unknown channel type"))
}

fn answer(outcome: InboundOutcome) -> HttpResponse {
    match outcome {
        InboundOutcome::Answer(v) => HttpResponse::Ok().json(v),
        InboundOutcome::Empty => HttpResponse::Ok().finish(),
        InboundOutcome::Unauthorized(why) => {
            tracing::info!(reason = %why, "inbound webhook refused");
            HttpResponse::Unauthorized().json(json!({ "error": "webhook authentication failed" }))
        }
    }
}

async fn body_of(payload: web::Payload) -> Result<web::Bytes, ApiError> {
    super::limited_body(payload, MAX_BODY_BYTES, "a webhook body").await
}

/// A vendor's inbound request for one channel row (the URL the list shows): verified against
/// that row's secret only (Slack's signing secret, Discord's public key, Lark's verification
/// token, Telegram's secret token). Handshakes are answered as the vendor expects.
#[utoipa::path(
    tag = "webhooks",
    params(("type" = String, Path, description = "telegram, slack, lark or discord"), ("channel_id" = Uuid, Path, description = "channel id")),
    responses((status = 200, body = WebhookAnswer, description = "accepted, ignored or a vendor handshake (Slack and Lark `{\"challenge\"}`, Discord `{\"type\":1}`, a Discord command `{\"type\":5}`)"), (status = 400, description = "not the vendor's format", body = ErrorBody), (status = 401, description = "the request does not verify against the channel", body = ErrorBody), (status = 404, description = "unknown type", body = ErrorBody), (status = 413, body = ErrorBody), (status = 503, body = ErrorBody))
)]
#[post("/webhooks/{type}/{channel_id}")]
pub async fn channel_webhook(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    if path.0 == "github" {
        return github(req, state, Some(&path.1), payload).await;
    }
    let kind = kind_of(&path.0)?;
    let body = body_of(payload).await?;
    let Ok(id) = path.1.parse::<Uuid>() else {
        return Ok(answer(InboundOutcome::Unauthorized(format!(
            "{:?} is not a channel id",
            path.1
        ))));
    };
    let headers = headers_of(&req);
    Ok(answer(
        state.services.channels().webhook_for(kind, id, &headers, &body).await?,
    ))
}

/// A vendor's inbound request, the original's route: every enabled channel of the type whose
/// secret the request verifies against is a candidate; then the chat id and a `[name]` prefix
/// choose one. GitHub's deliveries (`/webhooks/github`) are handled as the GitHub webhook.
#[utoipa::path(
    tag = "webhooks",
    params(("type" = String, Path, description = "telegram, slack, lark, discord or github")),
    responses((status = 200, body = WebhookAnswer, description = "accepted, ignored, `no_channel`, `unknown_agent` with the available names, or a vendor handshake"), (status = 202, description = "GitHub: an event that is not acted on"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 503, description = "GitHub: GITHUB_WEBHOOK_SECRET is unset", body = ErrorBody))
)]
#[post("/webhooks/{type}")]
pub async fn type_webhook(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    if path.as_str() == "github" {
        return github(req, state, None, payload).await;
    }
    let kind = kind_of(&path)?;
    let body = body_of(payload).await?;
    let headers = headers_of(&req);
    Ok(answer(
        state.services.channels().webhook_any(kind, &headers, &body).await?,
    ))
}

/// GitHub: `X-Hub-Signature-256` with `GITHUB_WEBHOOK_SECRET`; `issues` opened and
/// `pull_request_review` submitted make the workspace's matching schedules due; comments and
/// a broken workflow run reach its agent as `webhook:github`.
async fn github(
    req: HttpRequest,
    state: web::Data<AppState>,
    workspace: Option<&str>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let workspace = match workspace {
        Some(raw) => Some(super::parse_id(raw)?),
        None => None,
    };
    let body = body_of(payload).await?;
    let headers = headers_of(&req);
    match state.services.channels().github(workspace, &headers, &body).await? {
        GithubOutcome::Status(code, v) => {
            Ok(HttpResponse::build(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)).json(v))
        }
        GithubOutcome::Forwarded(outcome) => Ok(super::a2a::answer(outcome)),
    }
}
