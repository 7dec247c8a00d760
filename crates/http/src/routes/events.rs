//! Event streams (WebSocket `/ws`, SSE) and the recent-events listing.
//!
//! Must not know: LISTEN/NOTIFY (the service's `EventBus` owns it).

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpRequest, HttpResponse, get, web};
use molecule_api::events::Event;
use molecule_domain::{EventType, Vocabulary as _};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use crate::auth::{AdminAuth, WorkspaceAuth};
use crate::errors::{ApiError, ErrorBody};
use crate::state::AppState;

/// SSE keep-alive comment interval.
const SSE_PING: Duration = Duration::from_secs(15);

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct EventsQuery {
    /// 1..=1000, default 100.
    pub limit: Option<i64>,
    /// Only events caused by this actor: `admin`, `console:<who>`, `workspace:<id>`,
    /// `loop:<name>` (the audit view).
    pub actor: Option<String>,
    /// Only events of this type (`WORKSPACE_PAUSED`, …).
    pub event: Option<String>,
}

/// The filter a query names, for one workspace or all.
fn filter(q: &EventsQuery, workspace_id: Option<Uuid>) -> Result<molecule_tree::events::EventFilter, ApiError> {
    let event = match q.event.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
        None => None,
        Some(e) => Some(
            EventType::parse(e)
                .map_err(|err| ApiError::new(StatusCode::BAD_REQUEST, format!("event: {err}")))?
                .as_str()
                .to_owned(),
        ),
    };
    let actor = q.actor.as_deref().map(str::trim).filter(|a| !a.is_empty());
    if actor.is_some_and(|a| a.len() > 300) {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "actor: at most 300 characters"));
    }
    Ok(molecule_tree::events::EventFilter {
        workspace_id,
        actor: actor.map(str::to_owned),
        event,
        delegation_id: None,
    })
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

/// The most recent persisted events, oldest first (admin), optionally of one actor or type:
/// each carries its `actor`.
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
    let events = state
        .services
        .tree()
        .audit_events(&filter(&q, None)?, limit(&q)?)
        .await?;
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
    let events = state
        .services
        .tree()
        .audit_events(&filter(&q, Some(id))?, limit(&q)?)
        .await?;
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

/// How long a WebSocket watcher's access answer for one workspace is trusted (re-parenting
/// can change it).
const ACCESS_TTL: Duration = Duration::from_secs(30);

/// Who watches `/ws`: the operator sees every event; an agent sees the events of the
/// workspaces it may communicate with (the hierarchy rule), and none without a workspace.
enum Watcher {
    Operator,
    Agent {
        id: Uuid,
        access: std::collections::HashMap<Uuid, (bool, std::time::Instant)>,
    },
}

impl Watcher {
    async fn sees(&mut self, state: &AppState, ev: &Event) -> bool {
        let Watcher::Agent { id, access } = self else {
            return true;
        };
        let Some(target) = ev.workspace_id else {
            return false;
        };
        if let Some((allowed, at)) = access.get(&target)
            && at.elapsed() < ACCESS_TTL
        {
            return *allowed;
        }
        match state.services.messaging().check_access(*id, target).await {
            Ok(allowed) => {
                access.insert(target, (allowed, std::time::Instant::now()));
                allowed
            }
            Err(e) => {
                tracing::warn!(watcher = %id, workspace_id = %target, error = %e.chain(), "event filter could not read the tree; event withheld");
                false
            }
        }
    }
}

/// Live events over WebSocket: one JSON envelope `{"id","event","workspace_id","timestamp",
/// "payload"}` per text frame. With the admin token and no `X-Workspace-ID`: every event of
/// every workspace. An agent names itself in `X-Workspace-ID` and presents its own token: it
/// receives only the events of workspaces it may communicate with.
#[utoipa::path(
    tag = "events",
    params(("X-Workspace-ID" = Option<Uuid>, Header, description = "the watching agent's workspace; absent for the operator")),
    responses((status = 101, description = "switching to WebSocket"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/ws")]
pub async fn websocket(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let mut watcher = if req.headers().contains_key(crate::routes::discovery::CALLER_HEADER) {
        let id = crate::routes::discovery::caller_of(&req)?;
        crate::auth::authorize(&state, &req, id).await?;
        Watcher::Agent {
            id,
            access: std::collections::HashMap::new(),
        }
    } else {
        AdminAuth::extract(&req).await?;
        Watcher::Operator
    };
    let (response, mut session, mut incoming) = actix_ws::handle(&req, body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("GET /ws needs a WebSocket upgrade request: {e}"),
        )
    })?;
    let bus = state.services.bus().clone();
    let mut rx = bus.subscribe();
    metrics::gauge!("molecule_websocket_connections_active").increment(1.0);
    actix_web::rt::spawn(async move {
        loop {
            tokio::select! {
                () = bus.closed() => break,
                got = rx.recv() => match got {
                    Ok(ev) => {
                        if !watcher.sees(&state, &ev).await {
                            continue;
                        }
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
        metrics::gauge!("molecule_websocket_connections_active").decrement(1.0);
    });
    Ok(response)
}
