//! Event streams (WebSocket `/ws`, SSE) and the recent-events listing.
//!
//! Must not know: LISTEN/NOTIFY (the service's `EventBus` owns it).

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, get, web};
use molecule_api::events::Event;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use crate::auth::{AdminAuth, WorkspaceAuth};
use crate::errors::{ApiError, ErrorBody};
use crate::server::AppState;

/// SSE keep-alive comment interval.
const SSE_PING: Duration = Duration::from_secs(15);

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct EventsQuery {
    /// 1..=1000, default 100.
    pub limit: Option<i64>,
}

fn limit(q: &EventsQuery) -> Result<i64, ApiError> {
    match q.limit {
        None => Ok(100),
        Some(l @ 1..=1000) => Ok(l),
        Some(l) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("limit: must be 1..=1000, got {l}"),
        )),
    }
}

/// The most recent persisted events, oldest first (admin).
#[utoipa::path(
    tag = "events",
    params(EventsQuery),
    responses((status = 200, body = Vec<Event>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/events")]
pub async fn list_events(
    _: AdminAuth,
    state: web::Data<AppState>,
    q: web::Query<EventsQuery>,
) -> Result<HttpResponse, ApiError> {
    let events = state.services.recent_events(None, limit(&q)?).await?;
    Ok(HttpResponse::Ok().json(events))
}

/// The most recent persisted events of one workspace (admin; purged workspaces keep theirs).
#[utoipa::path(
    tag = "events",
    params(("workspace_id" = Uuid, Path, description = "workspace id"), EventsQuery),
    responses((status = 200, body = Vec<Event>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/events/{workspace_id}")]
pub async fn list_workspace_events(
    _: AdminAuth,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<EventsQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = path.parse::<Uuid>().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("workspace_id: must be a UUID, got {:?}", path.as_str()),
        )
    })?;
    let events = state.services.recent_events(Some(id), limit(&q)?).await?;
    Ok(HttpResponse::Ok().json(events))
}

fn sse_frame(ev: &Event) -> Bytes {
    let data = serde_json::json!({
        "type": ev.event,
        "timestamp": ev.timestamp.unix_timestamp_nanos() / 1_000_000,
        "data": ev.payload,
        "id": ev.id,
    });
    Bytes::from(format!("data: {data}\n\n"))
}

/// Live events of one workspace as Server-Sent Events: `: ping` first and every 15 s, then
/// `data: {"type","timestamp"(ms),"data"}` per event.
#[utoipa::path(
    tag = "events",
    params(("id" = Uuid, Path, description = "workspace id")),
    responses((status = 200, description = "text/event-stream", content_type = "text/event-stream"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/workspaces/{id}/events/stream")]
pub async fn event_stream(auth: WorkspaceAuth, state: web::Data<AppState>) -> HttpResponse {
    let id = auth.workspace_id;
    let bus = state.services.bus().clone();
    let rx = bus.subscribe();
    let mut ping = tokio::time::interval(SSE_PING);
    ping.reset(); // the first ping is sent right away below
    let body = futures_util::stream::unfold((rx, ping, true), move |(mut rx, mut ping, first)| {
        let bus = bus.clone();
        async move {
            if first {
                return Some((
                    Ok::<_, actix_web::Error>(Bytes::from_static(b": ping\n\n")),
                    (rx, ping, false),
                ));
            }
            loop {
                tokio::select! {
                    () = bus.closed() => return None,
                    got = rx.recv() => match got {
                        Ok(ev) if ev.workspace_id == Some(id) => return Some((Ok(sse_frame(&ev)), (rx, ping, false))),
                        Ok(_) => {}
                        Err(RecvError::Lagged(n)) => tracing::warn!(workspace_id = %id, skipped = n, "SSE client fell behind"),
                        Err(RecvError::Closed) => return None,
                    },
                    _ = ping.tick() => return Some((Ok(Bytes::from_static(b": ping\n\n")), (rx, ping, false))),
                }
            }
        }
    });
    HttpResponse::Ok()
        .insert_header(("Content-Type", "text/event-stream"))
        .insert_header(("Cache-Control", "no-cache"))
        .streaming(body)
}

/// Every live event of every workspace over WebSocket (admin): one JSON envelope
/// `{"id","event","workspace_id","timestamp","payload"}` per text frame.
#[utoipa::path(
    tag = "events",
    responses((status = 101, description = "switching to WebSocket"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/ws")]
pub async fn websocket(
    _: AdminAuth,
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (response, mut session, mut incoming) = actix_ws::handle(&req, body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("GET /ws needs a WebSocket upgrade request: {e}"),
        )
    })?;
    let bus = state.services.bus().clone();
    let mut rx = bus.subscribe();
    actix_web::rt::spawn(async move {
        loop {
            tokio::select! {
                () = bus.closed() => break,
                got = rx.recv() => match got {
                    Ok(ev) => {
                        let text = serde_json::to_string(&*ev).unwrap_or_default();
                        if session.text(text).await.is_err() {
                            break;
                        }
                    }
                    Err(RecvError::Lagged(n)) => tracing::warn!(skipped = n, "WebSocket client fell behind"),
                    Err(RecvError::Closed) => break,
                },
                msg = incoming.recv() => match msg {
                    Some(Ok(actix_ws::Message::Ping(bytes))) => {
                        if session.pong(&bytes).await.is_err() {
                            break;
                        }
                    }
                    Some(Ok(actix_ws::Message::Close(_)) | Err(_)) | None => break,
                    Some(Ok(_)) => {}
                },
            }
        }
        let _ = session.close(None).await;
    });
    Ok(response)
}
