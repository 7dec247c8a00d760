//! The A2A proxy: `POST /workspaces/:id/a2a`, in the original's order of checks (caller,
//! hierarchy, budget, URL), then one detached forward whose outcome is answered, queued or
//! turned into a restart.
//!
//! Owns: resolving where a message goes (wake a hibernated workspace, refuse an unsafe URL),
//! the forward itself (size limits, the idle watchdog fed by the target's events, the agent
//! ceiling), the busy rule (what is queued) and the side effects of a delivered message
//! (`a2a_receive` activity, `A2A_RESPONSE`, last in/outbound times, token usage). Must not
//! know: HTTP frameworks (the route hands it a parsed body and the protocol headers), the
//! queue's SQL (`molecule_a2a::queue`), backends (a dead workload is restarted through
//! `WorkloadHooks`).

use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use molecule_a2a::jsonrpc::{self, Normalised};
use molecule_a2a::queue::{self, NewItem};
use molecule_api::a2a::{
    BUSY_RETRY_AFTER_SECONDS, BadGateway, ProxyOutcome, ProxyUnavailable, Queued, STARTING_RETRY_AFTER_SECONDS,
    WAKING_RETRY_AFTER_SECONDS,
};
use molecule_db::schema::{workspace_token_usage as tu, workspaces as w};
use molecule_db::sql_types::DbWorkspaceStatus;
use molecule_domain::{
    ActivityStatus, ActivityType, EventType, Runtime, StatusChange, Vocabulary, WorkspaceStatus, priority,
};
use molecule_tree::row;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::discovery;
use molecule_tree::activity::ActivityRow;
use molecule_tree::error::{Result, ServiceError};
use molecule_tree::{events, validate};

/// Largest message the proxy accepts (bytes).
pub const MAX_REQUEST_BYTES: usize = 1 << 20;
/// Largest answer the proxy reads from an agent (bytes).
pub const MAX_RESPONSE_BYTES: usize = 10 << 20;

/// Messaging knobs.
#[derive(Debug, Clone)]
pub struct MessagingConfig {
    /// `A2A_IDLE_TIMEOUT_SECONDS`: a forward with no event from its target for this long is
    /// cancelled (and the message queued).
    pub idle_timeout: Duration,
    /// The longest an agent caller's message may take, however busy its target looks.
    pub agent_ceiling: Duration,
    /// `A2A_QUEUE_TTL_SECONDS`.
    pub queue_ttl: Duration,
    /// `A2A_QUEUE_RETENTION_SECONDS`.
    pub queue_retention: Duration,
    /// How long a delivering replica holds a queue item before another may take it over;
    /// renewed every third of it while the delivery runs.
    pub queue_lease: Duration,
}

impl Default for MessagingConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(300),
            agent_ceiling: Duration::from_secs(1800),
            queue_ttl: Duration::from_secs(86_400),
            queue_retention: Duration::from_secs(604_800),
            queue_lease: Duration::from_secs(60),
        }
    }
}

/// A message for a workspace, as the route hands it over.
#[derive(Debug, Clone)]
pub struct ProxyRequest {
    pub target: Uuid,
    /// The calling workspace (authenticated by the route); `None`: the operator/canvas.
    pub caller: Option<Uuid>,
    pub body: Value,
    /// A2A protocol headers to forward unchanged (`molecule_a2a::jsonrpc::FORWARDED_HEADERS`).
    pub headers: Vec<(String, String)>,
    /// A system caller's label (`channel:telegram`, `webhook:github`; one of
    /// `molecule_a2a::access::RESERVED_CALLER_PREFIXES`) for a message no workspace sent: it
    /// is checked as the operator's, and the activity row and a queued item name it.
    pub via: Option<String>,
}

/// What the proxy needs to know about the target.
#[derive(Debug, Clone)]
struct Target {
    name: String,
    status: WorkspaceStatus,
    url: Option<String>,
    runtime: String,
    budget_limit: Option<i64>,
    monthly_spend: i64,
    idle_timeout_seconds: Option<i32>,
}

/// A message that passed the checks, or the answer that ends it before any forward.
pub enum Prepared {
    Ready(Box<Delivery>, Normalised),
    Early(ProxyOutcome),
}

/// When an answer's side effects are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    /// Before the attempt returns (the queue drain, delegations: what follows reads them).
    Inline,
    /// On a task of its own, so the proxy's client gets the answer without waiting.
    Detached,
}

/// What one delivery attempt came to.
#[derive(Debug)]
pub enum Attempt {
    Answered {
        status: u16,
        content_type: Option<String>,
        body: Vec<u8>,
    },
    Busy(String),
    /// The workload was dead and is being restarted.
    Restarting(String),
    Unreachable(String),
    Unreadable(String),
}

/// The 503 of a target whose dead workload is being restarted.
pub fn restarting(reason: &str) -> ProxyOutcome {
    ProxyOutcome::Unavailable(ProxyUnavailable {
        error: format!("workspace agent is not running ({reason}); it is being restarted"),
        waking: None,
        restarting: Some(true),
        busy: None,
        retry_after: WAKING_RETRY_AFTER_SECONDS,
        status: Some(WorkspaceStatus::Offline),
    })
}

/// How one forward ended.
#[derive(Debug)]
pub enum Forwarded {
    /// The agent answered (any status).
    Answer {
        status: u16,
        content_type: Option<String>,
        body: Vec<u8>,
    },
    /// Deadline, cancel, EOF or reset: the agent is there but did not take the message now.
    Busy(String),
    /// Any other transport failure (refused, DNS, TLS).
    Unreachable(String),
    /// The answer began but could not be read whole: the agent may have acted.
    Unreadable(String),
}

/// Whether a transport error means "busy": the original's deadline, cancel, EOF and reset.
fn is_busy(e: &reqwest::Error) -> bool {
    if e.is_timeout() {
        return true;
    }
    if e.is_connect() {
        return false;
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            if matches!(
                io.kind(),
                K::ConnectionReset | K::ConnectionAborted | K::UnexpectedEof | K::BrokenPipe | K::TimedOut
            ) {
                return true;
            }
        }
        if let Some(h) = c.downcast_ref::<hyper::Error>()
            && (h.is_incomplete_message() || h.is_canceled() || h.is_closed() || h.is_timeout())
        {
            return true;
        }
        cause = c.source();
    }
    false
}

/// `{"input_tokens", "output_tokens"}` (or OpenAI's `prompt_tokens`/`completion_tokens`) of
/// `result.usage`.
fn token_counts(usage: &Value) -> Option<(i64, i64)> {
    let get = |a: &str, b: &str| {
        usage
            .get(a)
            .or_else(|| usage.get(b))
            .and_then(Value::as_i64)
            .filter(|n| *n >= 0)
    };
    let (i, o) = (
        get("input_tokens", "prompt_tokens"),
        get("output_tokens", "completion_tokens"),
    );
    (i.is_some() || o.is_some()).then(|| (i.unwrap_or(0), o.unwrap_or(0)))
}

impl crate::Messaging {
    /// `POST /workspaces/:id/a2a`: checks, resolves, forwards (detached from the request) and
    /// answers with the agent's own answer, a queue receipt, or why it could not be delivered.
    pub async fn proxy_a2a(&self, req: ProxyRequest) -> Result<ProxyOutcome> {
        let (d, n) = match self.prepare(req).await? {
            Prepared::Ready(d, n) => (*d, n),
            Prepared::Early(outcome) => return Ok(outcome),
        };
        // Detached: a client hanging up must not cancel a message the agent may be acting on,
        // nor its bookkeeping.
        let this = self.clone();
        tokio::spawn(async move {
            let ceiling = d.caller.map(|_| this.messaging.agent_ceiling);
            match this.attempt(&d, &n, ceiling, Record::Detached).await {
                Attempt::Answered {
                    status,
                    content_type,
                    body,
                } => Ok(ProxyOutcome::Answered {
                    status,
                    content_type,
                    body,
                }),
                Attempt::Busy(why) => this.enqueue(&d, &n, None, &why).await,
                Attempt::Restarting(reason) => Ok(restarting(&reason)),
                Attempt::Unreachable(reason) => Ok(ProxyOutcome::BadGateway(BadGateway {
                    error: format!("failed to reach workspace agent: {reason}"),
                    delivery_confirmed: None,
                })),
                Attempt::Unreadable(reason) => Ok(ProxyOutcome::BadGateway(BadGateway {
                    error: format!("the agent's answer could not be read: {reason}"),
                    delivery_confirmed: Some(true),
                })),
            }
        })
        .await
        .map_err(|e| ServiceError::internal("delivering an A2A message", e))?
    }

    /// The checks before a forward, in the original's order: hierarchy (403; 404 for an unknown
    /// target), budget (402), URL (hibernated: wake, 503 `waking`; none: 503; unsafe: 502), body.
    pub async fn prepare(&self, req: ProxyRequest) -> Result<Prepared> {
        if let Some(via) = &req.via
            && !molecule_a2a::access::RESERVED_CALLER_PREFIXES
                .iter()
                .any(|p| via.starts_with(p))
        {
            return Err(ServiceError::internal(
                "proxying a system caller's message",
                format!("{via} is not a reserved caller label"),
            ));
        }
        if let Some(caller) = req.caller
            && caller != req.target
        {
            let mut conn = self.pool.get().await?;
            discovery::require_access(&mut conn, caller, req.target).await?;
        }
        let target = match self.targets.get(req.target, self.bus.last_change_at(req.target)) {
            Some(t) => t,
            None => {
                let mut conn = self.pool.get().await?;
                let t = target_row(&mut conn, req.target).await?;
                self.targets.put(req.target, &t);
                t
            }
        };
        if target.budget_limit.is_some_and(|limit| target.monthly_spend >= limit) {
            return Ok(Prepared::Early(ProxyOutcome::BudgetExceeded));
        }
        let Some(url) = target.url.clone() else {
            return Ok(Prepared::Early(self.no_url(req.target, &target).await?));
        };
        if let Err(e) = validate::agent_url("url", &url, self.config.saas) {
            tracing::warn!(workspace_id = %req.target, error = %e, "refusing to forward to an unsafe agent URL");
            return Ok(Prepared::Early(ProxyOutcome::BadGateway(BadGateway {
                error: format!("the workspace's URL is not allowed as a destination ({e})"),
                delivery_confirmed: None,
            })));
        }
        let n = jsonrpc::normalise(req.body).map_err(|e| ServiceError::invalid("body", e.to_string()))?;
        let d = Delivery {
            target: req.target,
            target_name: target.name,
            caller: req.caller,
            url,
            headers: req.headers,
            via: req.via,
            idle: target
                .idle_timeout_seconds
                .and_then(|s| u64::try_from(s).ok())
                .map_or(self.messaging.idle_timeout, Duration::from_secs),
            external: target.runtime == Runtime::External.as_str(),
        };
        Ok(Prepared::Ready(Box::new(d), n))
    }

    /// A target without a URL: a hibernated one is woken (503 `waking`, retry shortly); one
    /// whose agent has not registered yet (provisioning, awaiting its agent) will take it
    /// soon (503 with `Retry-After`, which clients retry); any other cannot take a message
    /// until something changes (409 with its status and what to do), so no `Retry-After`
    /// promises what waiting will not bring.
    async fn no_url(&self, id: Uuid, target: &Target) -> Result<ProxyOutcome> {
        if target.status == WorkspaceStatus::Hibernated {
            if let Err(e) = self.wake(id).await {
                tracing::warn!(workspace_id = %id, error = %e.chain(), "a message could not wake the hibernated workspace");
            }
            return Ok(ProxyOutcome::Unavailable(ProxyUnavailable {
                error: format!("workspace {id} is hibernated and is waking up; retry shortly"),
                waking: Some(true),
                restarting: None,
                busy: None,
                retry_after: WAKING_RETRY_AFTER_SECONDS,
                status: Some(target.status),
            }));
        }
        if matches!(
            target.status,
            WorkspaceStatus::Provisioning | WorkspaceStatus::AwaitingAgent
        ) {
            return Ok(ProxyOutcome::Unavailable(ProxyUnavailable {
                error: format!(
                    "workspace {id} is {}: its agent has not registered yet; retry shortly",
                    target.status
                ),
                waking: None,
                restarting: None,
                busy: None,
                retry_after: STARTING_RETRY_AFTER_SECONDS,
                status: Some(target.status),
            }));
        }
        let hint = match target.status {
            WorkspaceStatus::Failed => "it failed; restart it (POST /workspaces/:id/restart)",
            WorkspaceStatus::Paused => "it is paused; resume it (POST /workspaces/:id/resume)",
            WorkspaceStatus::Online | WorkspaceStatus::Degraded => {
                "its agent polls its inbox (delivery_mode poll); delegate to it instead"
            }
            _ => "its agent is not reachable now",
        };
        Err(ServiceError::conflict(
            format!("workspace has no URL: {hint}"),
            json!({ "status": target.status.as_str() }),
        ))
    }

    /// One forward and what it means: an answer (503/429 count as busy), busy, a dead workload
    /// being restarted, or a transport failure. An answer's side effects are recorded before
    /// this returns (`Record::Inline`) or on a task of their own (`Record::Detached`: the
    /// proxy answers its client without waiting for the bookkeeping).
    pub async fn attempt(&self, d: &Delivery, n: &Normalised, ceiling: Option<Duration>, record: Record) -> Attempt {
        let started = Instant::now();
        let forwarded = self.forward(d, &n.body, ceiling).await;
        let elapsed = started.elapsed();
        match forwarded {
            Forwarded::Answer {
                status: s @ (503 | 429),
                ..
            } => Attempt::Busy(format!("the agent answered {s}")),
            Forwarded::Answer {
                status,
                content_type,
                body,
            } => {
                match record {
                    Record::Inline => self.record_or_log(d, n, status, &body, elapsed).await,
                    Record::Detached => {
                        let (this, d, n, body) = (self.clone(), d.clone(), n.clone(), body.clone());
                        tokio::spawn(async move { this.record_or_log(&d, &n, status, &body, elapsed).await });
                    }
                }
                Attempt::Answered {
                    status,
                    content_type,
                    body,
                }
            }
            Forwarded::Busy(reason) | Forwarded::Unreachable(reason) if self.restart_if_dead(d, &reason).await => {
                Attempt::Restarting(reason)
            }
            Forwarded::Busy(reason) => Attempt::Busy(reason),
            Forwarded::Unreachable(reason) => Attempt::Unreachable(reason),
            Forwarded::Unreadable(reason) => Attempt::Unreadable(reason),
        }
    }

    /// Puts the message in the target's queue and answers 202 (503 busy if even that fails).
    pub async fn enqueue(
        &self,
        d: &Delivery,
        n: &Normalised,
        delegation_id: Option<&str>,
        why: &str,
    ) -> Result<ProxyOutcome> {
        let item = NewItem {
            workspace_id: d.target,
            caller_id: d.caller,
            priority: priority::TASK,
            body: n.body.clone(),
            method: Some(n.method.clone()),
            headers: Value::Object(d.headers.iter().map(|(k, v)| (k.clone(), json!(v))).collect()),
            idempotency_key: n.message_id.clone(),
            delegation_id: delegation_id.map(str::to_owned),
            via: d.via.clone(),
            ttl: self.messaging.queue_ttl,
        };
        let result = async {
            let mut conn = self.pool.get().await?;
            Ok::<_, ServiceError>(queue::enqueue(&mut conn, item).await?)
        }
        .await;
        match result {
            Ok(q) => {
                tracing::info!(workspace_id = %d.target, queue_id = %q.id, depth = q.depth, existing = q.existing, why, "agent busy: message queued");
                metrics::counter!("a2a_queue_enqueued_total").increment(1);
                Ok(ProxyOutcome::Queued(Queued {
                    queued: true,
                    queue_id: q.id,
                    queue_depth: q.depth,
                    message: format!(
                        "the agent is busy ({why}); the message is queued and will be delivered when it reports a free slot"
                    ),
                }))
            }
            Err(e) => {
                tracing::warn!(workspace_id = %d.target, error = %e.chain(), "agent busy and the message could not be queued");
                Ok(ProxyOutcome::Unavailable(ProxyUnavailable {
                    error: "the agent is busy and the message could not be queued; retry later".into(),
                    waking: None,
                    restarting: None,
                    busy: Some(true),
                    retry_after: BUSY_RETRY_AFTER_SECONDS,
                    status: None,
                }))
            }
        }
    }

    /// After a transport failure: if the backend says the workload is gone, mark the workspace
    /// offline and restart it through the dispatcher. True when it did.
    async fn restart_if_dead(&self, d: &Delivery, reason: &str) -> bool {
        if d.external || self.hooks.is_running(d.target).await != Some(false) {
            return false;
        }
        let marked = async {
            let mut conn = self.pool.get().await?;
            let reason = reason.to_owned();
            let id = d.target;
            conn.transaction::<_, ServiceError, _>(async move |conn| {
                row::transition(
                    conn,
                    id,
                    &StatusChange::Offline,
                    row::From::OneOf(&[WorkspaceStatus::Online, WorkspaceStatus::Degraded]),
                    row::Also::default(),
                    json!({ "reason": format!("A2A delivery failed and the workload is not running: {reason}") }),
                )
                .await?;
                Ok(())
            })
            .await
        }
        .await;
        if let Err(e) = marked {
            tracing::warn!(workspace_id = %d.target, error = %e.chain(), "could not mark a dead workload offline");
        }
        let outcome = self.hooks.restart(d.target, false).await;
        tracing::warn!(workspace_id = %d.target, reason, ?outcome, "A2A target's workload is not running: restarting it");
        true
    }

    /// POSTs the message to the agent's URL exactly as stored, with the caller and protocol
    /// headers, under the idle watchdog (reset by every event of the target) and, for agent
    /// callers, the ceiling.
    pub async fn forward(&self, d: &Delivery, body: &Value, ceiling: Option<Duration>) -> Forwarded {
        let mut rb = self.http.post(&d.url).json(body);
        // The platform proves itself to the agent (cached: no query on the hot path).
        if let Some(bearer) = self.vault.inbound_bearer(d.target).await {
            rb = rb.header(reqwest::header::AUTHORIZATION, bearer);
        }
        if let Some(caller) = d.caller {
            rb = rb.header("X-Workspace-ID", caller.to_string());
        }
        for (k, v) in &d.headers {
            rb = rb.header(k.as_str(), v.as_str());
        }
        let hard_stop = ceiling.map(|c| tokio::time::Instant::now() + c);
        let work = async {
            let resp = match rb.send().await {
                Ok(r) => r,
                Err(e) if is_busy(&e) => return Forwarded::Busy(molecule_tree::error::chain(&e)),
                Err(e) => return Forwarded::Unreachable(molecule_tree::error::chain(&e)),
            };
            let status = resp.status().as_u16();
            let content_type = resp
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let mut resp = resp;
            let mut body = Vec::new();
            loop {
                match resp.chunk().await {
                    Ok(Some(chunk)) => {
                        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                            return Forwarded::Unreadable(format!(
                                "the answer exceeds {} MiB",
                                MAX_RESPONSE_BYTES >> 20
                            ));
                        }
                        body.extend_from_slice(&chunk);
                    }
                    Ok(None) => break,
                    Err(e) => return Forwarded::Unreadable(molecule_tree::error::chain(&e)),
                }
            }
            Forwarded::Answer {
                status,
                content_type,
                body,
            }
        };
        tokio::pin!(work);
        // The idle watchdog: at each deadline, a target that had an event since (it is working
        // on the message) earns another full timeout from that event.
        let mut idle_deadline = tokio::time::Instant::now() + d.idle;
        loop {
            let deadline = hard_stop.map_or(idle_deadline, |h| h.min(idle_deadline));
            tokio::select! {
                out = &mut work => return out,
                () = tokio::time::sleep_until(deadline) => {
                    if hard_stop.is_some_and(|h| h <= deadline) {
                        return Forwarded::Busy(format!("no answer within the {} s ceiling for agent callers", ceiling.unwrap_or_default().as_secs()));
                    }
                    match self.bus.last_event_at(d.target) {
                        Some(at) if at + d.idle > deadline => idle_deadline = at + d.idle,
                        _ => return Forwarded::Busy(format!("no answer and no event from the workspace for {} s (A2A_IDLE_TIMEOUT_SECONDS)", d.idle.as_secs())),
                    }
                }
            }
        }
    }

    /// The side effects of a delivered message, in one transaction: the target's `a2a_receive`
    /// row and `ACTIVITY_LOGGED`, `A2A_RESPONSE` for the operator/canvas, the last in/outbound
    /// times and the token usage the agent reported.
    async fn record_or_log(&self, d: &Delivery, n: &Normalised, status: u16, body: &[u8], elapsed: Duration) {
        if let Err(e) = self.record_delivery(d, n, status, body, elapsed).await {
            tracing::warn!(workspace_id = %d.target, error = %e.chain(), "message delivered, but its activity row was not written");
        }
    }

    pub async fn record_delivery(
        &self,
        d: &Delivery,
        n: &Normalised,
        status: u16,
        body: &[u8],
        elapsed: Duration,
    ) -> Result<()> {
        let answer: Value = serde_json::from_slice(body)
            .unwrap_or_else(|_| json!({ "raw": String::from_utf8_lossy(&body[..body.len().min(4096)]) }));
        let ok = status < 400 && answer.get("error").is_none_or(Value::is_null);
        let duration_ms = i32::try_from(elapsed.as_millis()).unwrap_or(i32::MAX);
        let summary = match &d.via {
            Some(via) => format!("{} → {} (from {via})", n.method, d.target_name),
            None => format!("{} → {}", n.method, d.target_name),
        };
        let usage = jsonrpc::usage(&answer).and_then(token_counts);
        let (target, caller, method) = (d.target, d.caller, n.method.clone());
        let request = n.body.clone();
        // No transaction: the row with its live events (one statement), then the usage, then
        // the last in/outbound times. Each stands alone: the events are live-only, and a lost
        // time is a workspace that looks idle a second early.
        let error_detail = (!ok).then(|| format!("agent answered {status}"));
        let mut notifications = vec![events::live_notification(
            EventType::ActivityLogged,
            Some(target),
            json!({ "activity_type": ActivityType::A2aReceive.as_str(), "method": method, "summary": summary,
                    "status": if ok { "ok" } else { "error" }, "source_id": caller, "target_id": target,
                    "via": d.via, "duration_ms": duration_ms }),
        )?];
        if caller.is_none() && status < 400 {
            notifications.push(events::live_notification(
                EventType::A2aResponse,
                Some(target),
                json!({ "response_body": answer, "method": method, "duration_ms": duration_ms }),
            )?);
        }
        let mut conn = self.pool.get().await?;
        ActivityRow {
            method: Some(&method),
            source_id: caller,
            target_id: Some(target),
            summary: Some(&summary),
            request_body: Some(&request),
            response_body: Some(&answer),
            duration_ms: Some(duration_ms),
            error_detail: error_detail.as_deref(),
            tool_trace: jsonrpc::tool_trace(&answer),
            ..ActivityRow::new(
                target,
                ActivityType::A2aReceive,
                if ok { ActivityStatus::Ok } else { ActivityStatus::Error },
            )
        }
        .insert_notifying(&mut conn, notifications)
        .await?;
        if let Some((input, output)) = usage {
            record_usage(&mut conn, target, input, output).await?;
        }
        // The last in/outbound times, at most once a second per workspace: every message to
        // one agent updating its row would queue them all on that row's lock (it capped one
        // busy agent at a few hundred messages a second). This replica skips the statement
        // when it wrote the time less than a second ago; the filter covers the others.
        let a_second_ago = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);
        if self.touches.inbound.note_if_older(target, TOUCH_EVERY) {
            row::touch(&mut conn, target, row::Direction::Inbound, a_second_ago).await?;
        }
        if let Some(caller) = caller
            && self.touches.outbound.note_if_older(caller, TOUCH_EVERY)
        {
            row::touch(&mut conn, caller, row::Direction::Outbound, a_second_ago).await?;
        }
        Ok(())
    }
}

/// How long the proxy trusts a target's row it read (URL, budget, idle timeout).
const TARGET_TTL: Duration = Duration::from_secs(1);

/// The rows of reachable targets this replica read within [`TARGET_TTL`]: a steady stream of
/// messages to one agent costs one read a second, not one a message. An entry is dropped when
/// the bus reports a change of its workspace (any replica's registration, status change or
/// removal) and when this replica writes its heartbeat or budget; only targets with a URL are
/// kept, so waking, restarting and refusing always read the database.
#[derive(Debug, Clone, Default)]
pub struct TargetCache(
    std::sync::Arc<std::sync::Mutex<std::collections::HashMap<Uuid, (tokio::time::Instant, Target)>>>,
);

impl TargetCache {
    fn map(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<Uuid, (tokio::time::Instant, Target)>> {
        // A poisoned lock only means a thread panicked between two map operations, each of
        // which leaves the map valid.
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cached row, if read within the TTL and after the workspace's last known change.
    fn get(&self, id: Uuid, changed_at: Option<tokio::time::Instant>) -> Option<Target> {
        let map = self.map();
        let (read_at, target) = map.get(&id)?;
        (read_at.elapsed() < TARGET_TTL && changed_at.is_none_or(|c| c < *read_at)).then(|| target.clone())
    }

    fn put(&self, id: Uuid, target: &Target) {
        if target.url.is_none() {
            return;
        }
        let mut map = self.map();
        if map.len() >= 10_000 {
            map.retain(|_, (at, _)| at.elapsed() < TARGET_TTL);
        }
        map.insert(id, (tokio::time::Instant::now(), target.clone()));
    }

    /// Drops `id`'s row (after this replica changed it).
    pub fn forget(&self, id: Uuid) {
        self.map().remove(&id);
    }
}

/// How often one replica writes a workspace's last in/outbound time at most.
const TOUCH_EVERY: Duration = Duration::from_secs(1);

/// This replica's last writes of workspaces' in/outbound times.
#[derive(Debug, Clone, Default)]
pub struct Touches {
    inbound: molecule_tree::recent::Recent,
    outbound: molecule_tree::recent::Recent,
}

/// Adds reported token usage to one of today's 16 rows of the workspace (a random one, so
/// concurrent answers rarely wait on each other's row lock).
async fn record_usage(conn: &mut AsyncPgConnection, id: Uuid, input: i64, output: i64) -> Result<()> {
    let today = time::OffsetDateTime::now_utc().date();
    let shard: i16 = rand::random_range(0..16);
    diesel::insert_into(tu::table)
        .values((
            tu::workspace_id.eq(id),
            tu::day.eq(today),
            tu::shard.eq(shard),
            tu::input_tokens.eq(input),
            tu::output_tokens.eq(output),
            tu::calls.eq(1_i64),
        ))
        .on_conflict((tu::workspace_id, tu::day, tu::shard))
        .do_update()
        .set((
            tu::input_tokens.eq(tu::input_tokens + input),
            tu::output_tokens.eq(tu::output_tokens + output),
            tu::calls.eq(tu::calls + 1),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// The target as the proxy needs it; 404 when unknown or removed.
async fn target_row(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Target> {
    #[allow(clippy::type_complexity)]
    let row: Option<(
        String,
        DbWorkspaceStatus,
        Option<String>,
        String,
        Option<i64>,
        i64,
        Option<i32>,
    )> = w::table
        .find(id)
        .select((
            w::name,
            w::status,
            w::url,
            w::runtime,
            w::budget_limit,
            w::monthly_spend,
            w::idle_timeout_seconds,
        ))
        .first(conn)
        .await
        .optional()?;
    match row {
        Some((name, status, url, runtime, budget_limit, monthly_spend, idle_timeout_seconds))
            if status.0 != WorkspaceStatus::Removed =>
        {
            Ok(Target {
                name,
                status: status.0,
                url,
                runtime,
                budget_limit,
                monthly_spend,
                idle_timeout_seconds,
            })
        }
        _ => Err(ServiceError::NotFound(format!("workspace {id} not found"))),
    }
}

/// One message on its way: where it goes and from whom.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub target: Uuid,
    pub target_name: String,
    pub caller: Option<Uuid>,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub idle: Duration,
    pub external: bool,
    /// A system caller's label (see [`ProxyRequest::via`]).
    pub via: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_reads_both_spellings() {
        assert_eq!(
            token_counts(&json!({ "input_tokens": 3, "output_tokens": 4 })),
            Some((3, 4))
        );
        assert_eq!(
            token_counts(&json!({ "prompt_tokens": 5, "completion_tokens": 6 })),
            Some((5, 6))
        );
        assert_eq!(token_counts(&json!({ "total": 9 })), None);
        assert_eq!(token_counts(&json!({ "input_tokens": -1 })), None);
    }
}
