//! The workload terminal: `GET /workspaces/:id/terminal`, a WebSocket into a shell on a TTY in
//! the running workload (Docker: an exec of `/bin/bash`, else `/bin/sh`).
//!
//! Framing is the original's: the shell's output goes out as binary frames, and every client
//! frame, text or binary, is written to its input as it is, with one addition: a text frame
//! that is exactly `{"type":"resize","cols":C,"rows":R}` resizes the TTY instead. The session
//! closes after `TERMINAL_IDLE_TIMEOUT_SECONDS` with no keystroke *and* no output, when the
//! shell exits, or when the client leaves; each one leaves an activity row (who, when, how
//! long, why it ended). At most `TERMINAL_MAX_SESSIONS_PER_WORKSPACE` are open per workspace
//! on one replica. The upgrade is refused from a foreign `Origin`: only this server's own
//! pages, or a client that sends none (not a browser), may open one.
//!
//! Must not know: how a backend attaches the shell (the dispatcher's backend does).

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, web};
use futures_util::StreamExt;
use molecule_domain::{ActivityStatus, ActivityType, TerminalFailure};
use molecule_tree::activity::ActivityRow;
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use crate::auth::{Caller, authorize, path_workspace_id};
use crate::errors::{ApiError, ErrorBody};
use crate::routes::discovery::{CALLER_HEADER, caller_of};
use crate::state::AppState;

/// A client frame that resizes the TTY: exactly `{"type":"resize","cols":C,"rows":R}`, each
/// 1..=1000. Anything else is keystrokes.
fn parse_resize(frame: &str) -> Option<(u16, u16)> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Resize {
        #[serde(rename = "type")]
        kind: String,
        cols: u16,
        rows: u16,
    }
    if !frame.starts_with('{') {
        return None;
    }
    let r: Resize = serde_json::from_str(frame).ok()?;
    let fits = |n: u16| (1..=1000).contains(&n);
    (r.kind == "resize" && fits(r.cols) && fits(r.rows)).then_some((r.cols, r.rows))
}

/// A browser's `Origin` must be this server's own; a client that sends none is not a browser.
fn origin_allowed(req: &HttpRequest) -> bool {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    crate::browser::origin_is_host(origin, req.connection_info().host())
}

fn failure(e: TerminalFailure) -> ApiError {
    match e {
        TerminalFailure::Unsupported(m) => ApiError::new(StatusCode::NOT_IMPLEMENTED, m),
        TerminalFailure::NotRunning(m) => ApiError::new(StatusCode::NOT_FOUND, m),
        TerminalFailure::Unavailable(m) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, m),
    }
}

/// Who opened the terminal, as its activity row names them.
async fn actor(req: &HttpRequest, state: &AppState, id: Uuid) -> Result<String, ApiError> {
    if req.headers().contains_key(CALLER_HEADER) {
        let caller = caller_of(req)?;
        if caller != id {
            // The original's rule: a caller presents its own token, then the hierarchy decides.
            authorize(state, req, caller).await.map_err(|e| {
                if e.status == StatusCode::FORBIDDEN {
                    ApiError::new(StatusCode::UNAUTHORIZED, "invalid token for claimed workspace")
                } else {
                    e
                }
            })?;
            if !state.services.messaging().check_access(caller, id).await? {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "not authorized to access this workspace's terminal",
                ));
            }
            return Ok(format!("workspace:{caller}"));
        }
    }
    Ok(match authorize(state, req, id).await? {
        Caller::Admin => match crate::auth::console_caller(req) {
            Some(c) => format!("console:{}", c.actor),
            None => "admin".to_owned(),
        },
        Caller::Workspace { .. } => format!("workspace:{id}"),
    })
}

/// A shell in the workspace's running workload, over WebSocket (see the module docs for the
/// framing). 501 on a backend that cannot give one (EC2, local processes, external agents),
/// 404 when the workload is not running, 429 at the per-workspace cap, 403 from a foreign
/// `Origin`.
#[utoipa::path(
    tag = "workspaces",
    params(("id" = Uuid, Path, description = "workspace id")),
    responses((status = 101, description = "switching to WebSocket"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody), (status = 501, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/workspaces/{id}/terminal")]
pub async fn terminal(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_workspace_id(&path)?;
    let actor = actor(&req, &state, id).await?;
    if !origin_allowed(&req) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "Origin: a terminal opens only from this server's own pages",
        ));
    }
    let (response, mut session, mut incoming) = actix_ws::handle(&req, body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("GET /workspaces/:id/terminal needs a WebSocket upgrade request: {e}"),
        )
    })?;
    let slot = state.terminals.claim(id).ok_or_else(|| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "workspace {id} has {} terminals open on this replica already (TERMINAL_MAX_SESSIONS_PER_WORKSPACE)",
                state.terminals.max_per_workspace()
            ),
        )
    })?;
    let mut term = state.services.tree().open_terminal(id).await?.map_err(failure)?;
    let idle = state.terminals.idle();
    let state = state.into_inner();
    tracing::info!(workspace_id = %id, actor, program = term.program, "terminal opened");
    metrics::gauge!("molecule_terminal_sessions_active").increment(1.0);
    actix_web::rt::spawn(async move {
        let _slot = slot;
        let started = std::time::Instant::now();
        let opened_at = time::OffsetDateTime::now_utc();
        let (mut bytes_in, mut bytes_out) = (0usize, 0usize);
        let deadline = tokio::time::sleep(idle);
        tokio::pin!(deadline);
        let ended = loop {
            tokio::select! {
                () = &mut deadline => break "idle",
                out = term.output.next() => match out {
                    Some(Ok(bytes)) => {
                        deadline.as_mut().reset(tokio::time::Instant::now() + idle);
                        bytes_out += bytes.len();
                        if session.binary(bytes).await.is_err() {
                            break "client gone";
                        }
                    }
                    Some(Err(e)) => {
                        tracing::warn!(workspace_id = %id, error = %e, "terminal output failed");
                        break "output failed";
                    }
                    None => break "shell exited",
                },
                msg = incoming.recv() => {
                    let keys = match msg {
                        Some(Ok(actix_ws::Message::Text(text))) => {
                            if let Some((cols, rows)) = parse_resize(&text) {
                                deadline.as_mut().reset(tokio::time::Instant::now() + idle);
                                if let Err(e) = (term.resize)(cols, rows).await {
                                    tracing::warn!(workspace_id = %id, error = e, "terminal resize failed");
                                }
                                continue;
                            }
                            text.into_bytes()
                        }
                        Some(Ok(actix_ws::Message::Binary(bytes))) => bytes,
                        Some(Ok(actix_ws::Message::Ping(p))) => {
                            if session.pong(&p).await.is_err() {
                                break "client gone";
                            }
                            continue;
                        }
                        Some(Ok(actix_ws::Message::Close(_)) | Err(_)) | None => break "closed by client",
                        Some(Ok(_)) => continue,
                    };
                    deadline.as_mut().reset(tokio::time::Instant::now() + idle);
                    bytes_in += keys.len();
                    if term.input.write_all(&keys).await.is_err() || term.input.flush().await.is_err() {
                        break "shell input closed";
                    }
                }
            }
        };
        let _ = term.input.shutdown().await;
        let _ = session
            .close(Some(actix_ws::CloseReason {
                code: actix_ws::CloseCode::Normal,
                description: Some(ended.to_owned()),
            }))
            .await;
        metrics::gauge!("molecule_terminal_sessions_active").decrement(1.0);
        let took = started.elapsed();
        tracing::info!(workspace_id = %id, actor, ended, seconds = took.as_secs(), "terminal closed");
        let summary = format!("Terminal session by {actor} ({} s, {ended})", took.as_secs());
        let detail = serde_json::json!({
            "actor": actor, "program": term.program, "ended": ended,
            "opened_at": opened_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            "seconds": took.as_secs(), "bytes_in": bytes_in, "bytes_out": bytes_out,
        });
        let row = ActivityRow {
            method: Some("terminal"),
            summary: Some(&summary),
            request_body: Some(&detail),
            duration_ms: i32::try_from(took.as_millis()).ok(),
            ..ActivityRow::new(id, ActivityType::TerminalSession, ActivityStatus::Ok)
        };
        if let Err(e) = state.services.tree().log_platform_activity(row).await {
            tracing::warn!(workspace_id = %id, error = %e.chain(), "terminal session's activity row not written");
        }
    });
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_exact_resize_message_resizes() {
        assert_eq!(
            parse_resize(r#"{"type":"resize","cols":120,"rows":40}"#),
            Some((120, 40))
        );
        assert_eq!(parse_resize(r#"{"type":"resize","cols":0,"rows":40}"#), None);
        assert_eq!(parse_resize(r#"{"type":"resize","cols":80,"rows":24,"x":1}"#), None);
        assert_eq!(parse_resize("ls -la\r"), None);
        assert_eq!(parse_resize(r#"{"type":"input","cols":80,"rows":24}"#), None);
    }
}
