//! Delegations between workspaces: the canvas-initiated `delegate` (executed in the
//! background, detached from the request), agent-recorded ones, updates, heartbeats, and the
//! result push into the caller's inbox. The ledger is the source of truth; whoever sees
//! `Applied` for a terminal transition writes the result rows and notifies, exactly once.

use std::time::Duration;

use diesel_async::AsyncConnection;
use molecule_a2a::queue;
use molecule_api::a2a::ProxyOutcome;
use molecule_api::delegations::{
    DelegateRequest, Delegated, DelegatedStatus, DelegationView, Direction, RecordRequest, UpdateRequest, Updated,
};
use molecule_domain::priority;
use molecule_domain::{ActivityStatus, ActivityType, DelegationStatus, EventType, Vocabulary};
use molecule_ledger::{Delegation, Inserted, Ledger, LedgerError, NewDelegation, Outcome, Update};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::proxy::{Attempt, Prepared, Record};
use molecule_tree::activity::ActivityRow;
use molecule_tree::error::{Result, ServiceError};

use molecule_tree::events;

/// What one delivery try of a delegation came to.
enum Step {
    Done,
    /// Dead, waking or unreachable: worth one more try after the retry delay.
    Retry(String),
}

/// Delegation knobs.
#[derive(Debug, Clone)]
pub struct DelegationConfig {
    /// `DELEGATION_RESULT_INBOX_PUSH`: write results into the caller's inbox (default on).
    pub inbox_push: bool,
    /// How long the callee gets to answer `message/send` (`DELEGATION_A2A_TIMEOUT_SECONDS`).
    pub a2a_timeout: Duration,
    /// The wait before the one retry of a callee that was unreachable, dead or waking (the
    /// original's 8 s).
    pub retry_after: Duration,
}

/// One delegation as it went: what [`crate::Messaging::delegation_timeline`] reads.
#[derive(Debug, Clone)]
pub struct DelegationTimeline {
    pub delegation: Delegation,
    /// The persisted events about it (`DELEGATION_*`), oldest first.
    pub events: Vec<molecule_api::events::Event>,
    /// Its activity rows on either party, oldest first.
    pub activity: Vec<molecule_api::activity::Activity>,
}

impl Default for DelegationConfig {
    fn default() -> Self {
        Self {
            inbox_push: true,
            a2a_timeout: Duration::from_secs(1800),
            retry_after: Duration::from_secs(8),
        }
    }
}

fn ledger_error(e: LedgerError) -> ServiceError {
    match e {
        LedgerError::InvalidTransition(t) => ServiceError::conflict(
            format!("delegation is {} and cannot become {}", t.from, t.to),
            json!({ "current_status": t.from.as_str(), "requested_status": t.to.as_str() }),
        ),
        LedgerError::Invalid { field, message } => ServiceError::Invalid { field, message },
        LedgerError::Pool(e) => e.into(),
        LedgerError::Query(e) => e.into(),
        e @ LedgerError::Inconsistent(_) => ServiceError::internal("reading the delegation ledger", e),
    }
}

fn preview(s: &str, bytes: usize) -> String {
    let mut end = s.len().min(bytes);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    if end < s.len() {
        format!("{}...", &s[..end])
    } else {
        s.to_owned()
    }
}

/// The text of an A2A `message/send` answer: the first text part of `result.parts`, else of
/// `result.artifacts[].parts`, else the raw body.
pub fn answer_text(body: &Value, raw: &str) -> String {
    let text_of = |parts: &Value| {
        parts.as_array()?.iter().find_map(|p| {
            let is_text = p.get("kind").or_else(|| p.get("type")).and_then(Value::as_str) == Some("text");
            is_text
                .then(|| p.get("text").and_then(Value::as_str).map(str::to_owned))
                .flatten()
        })
    };
    let result = &body["result"];
    text_of(&result["parts"])
        .or_else(|| {
            result["artifacts"]
                .as_array()
                .and_then(|arts| arts.iter().find_map(|art| text_of(&art["parts"])))
        })
        .unwrap_or_else(|| raw.to_owned())
}

impl crate::Messaging {
    /// Canvas-initiated delegation: records it and runs it in the background.
    pub async fn delegate(&self, caller: Uuid, req: DelegateRequest) -> Result<Delegated> {
        if req.target_id == caller {
            return Err(ServiceError::Invalid {
                field: "target_id",
                message: "self-delegation not permitted: a workspace cannot delegate to itself; pick another workspace or do the task directly".into(),
            });
        }
        let task = req.task.trim();
        if task.is_empty() {
            return Err(ServiceError::invalid("task", "must not be empty"));
        }
        if task.contains('\0') {
            return Err(ServiceError::invalid(
                "task",
                "must not contain NUL (\\u0000) characters",
            ));
        }
        if task.len() > 1 << 20 {
            return Err(ServiceError::invalid("task", "must be at most 1 MiB"));
        }
        let key = req.idempotency_key.filter(|k| !k.trim().is_empty());
        if key.as_ref().is_some_and(|k| k.len() > 200) {
            return Err(ServiceError::invalid("idempotency_key", "must be at most 200 bytes"));
        }
        // An unknown target is a 404 and a pair the hierarchy forbids a 403, now, rather than
        // a delegation that fails in the background.
        self.require_access(caller, req.target_id).await?;
        let delegation_id = Uuid::new_v4().to_string();
        let message = json!({
            "jsonrpc": "2.0",
            "id": delegation_id,
            "method": "message/send",
            "params": { "message": {
                "role": "user",
                "messageId": delegation_id,
                "parts": [{ "kind": "text", "text": task }],
                "metadata": { "delegation_id": delegation_id },
            }},
        });
        let new = NewDelegation {
            delegation_id: delegation_id.clone(),
            caller_id: caller,
            callee_id: req.target_id,
            task: task.to_owned(),
            idempotency_key: key.clone(),
            deadline: None,
        };
        let (target, task_owned, ttl) = (req.target_id, task.to_owned(), self.messaging.queue_ttl);
        let mut conn = self.pool.get().await?;
        // One transaction: the ledger row, its outbox item (the message, durable in the A2A
        // queue), the caller's activity row and DELEGATION_SENT. Whatever replica runs it, and
        // whatever happens to that replica, the message is in the queue.
        let created = conn
            .transaction::<_, ServiceError, _>(async move |conn| {
                let mut inserted = Ledger::on(conn).insert(new.clone()).await.map_err(ledger_error)?;
                if let (Inserted::Existing(d), Some(k)) = (&inserted, &new.idempotency_key)
                    && d.status == DelegationStatus::Failed
                    && d.delegation_id != new.delegation_id
                    && Ledger::on(conn)
                        .free_failed_key(caller, k)
                        .await
                        .map_err(ledger_error)?
                {
                    // The original's rule: a key whose delegation failed may be used again.
                    inserted = Ledger::on(conn).insert(new.clone()).await.map_err(ledger_error)?;
                }
                let d = match inserted {
                    Inserted::Existing(d) => return Ok(Err(d)),
                    Inserted::Created(d) => d,
                };
                let did = d.delegation_id.clone();
                let outbox = queue::enqueue(
                    conn,
                    queue::NewItem {
                        workspace_id: target,
                        caller_id: Some(caller),
                        priority: priority::TASK,
                        body: message,
                        method: Some("message/send".into()),
                        headers: json!({}),
                        idempotency_key: Some(did.clone()),
                        delegation_id: Some(did.clone()),
                        via: None,
                        ttl,
                    },
                )
                .await?;
                let summary = format!("Delegating to {target}");
                let request = json!({ "task": task_owned, "delegation_id": did });
                let response = json!({ "delegation_id": did });
                ActivityRow {
                    method: Some("delegate"),
                    source_id: Some(caller),
                    target_id: Some(target),
                    summary: Some(&summary),
                    request_body: Some(&request),
                    response_body: Some(&response),
                    ..ActivityRow::new(caller, ActivityType::Delegation, ActivityStatus::Pending)
                }
                .insert(conn)
                .await?;
                events::record(
                    conn,
                    EventType::DelegationSent,
                    Some(caller),
                    json!({ "delegation_id": did, "target_id": target, "task_preview": preview(&task_owned, 100) }),
                )
                .await?;
                Ok(Ok((d, outbox.id)))
            })
            .await?;
        drop(conn);
        let (d, item) = match created {
            Ok(created) => created,
            Err(d) => {
                return Ok(Delegated {
                    delegation_id: d.delegation_id,
                    status: DelegatedStatus::Existing(d.status),
                    target_id: d.callee_id,
                    idempotent_hit: true,
                });
            }
        };
        // Detached: the client hanging up must not abort the delegation.
        let this = self.clone();
        tokio::spawn(async move { this.execute_delegation(d, item).await });
        Ok(Delegated {
            delegation_id,
            status: DelegatedStatus::Delegated,
            target_id: req.target_id,
            idempotent_hit: false,
        })
    }

    /// Delivers a delegation's outbox item now, on this replica: claims it (a drain may have
    /// been faster), marks the delegation `dispatched`, and forwards it through the proxy's
    /// path. A busy callee leaves it queued (the drain settles it later, `via: "queue_drain"`);
    /// a dead or unreachable one gets one more try after the retry delay; any other refusal
    /// fails it with the reason.
    async fn execute_delegation(&self, d: Delegation, item: Uuid) {
        let id = d.delegation_id.clone();
        for try_no in 0..2 {
            if try_no > 0 {
                tokio::time::sleep(self.delegation.retry_after).await;
            }
            match self.try_delegation(&d, item).await {
                Step::Done => return,
                Step::Retry(reason) if try_no == 0 => {
                    tracing::info!(delegation_id = %id, reason, "delegation: retrying once");
                }
                Step::Retry(reason) => {
                    self.fail_delegation(&d, item, None, &reason).await;
                    return;
                }
            }
        }
    }

    async fn try_delegation(&self, d: &Delegation, item: Uuid) -> Step {
        let id = d.delegation_id.as_str();
        let claimed = async {
            let mut conn = self.pool.get().await?;
            Ok::<_, ServiceError>(queue::claim_by_id(&mut conn, item, self.messaging.queue_lease).await?)
        }
        .await;
        let claimed = match claimed {
            Ok(Some(c)) => c,
            Ok(None) => {
                tracing::info!(delegation_id = id, "delegation's message is with the queue drain now");
                return Step::Done;
            }
            Err(e) => {
                tracing::warn!(delegation_id = id, error = %e.chain(), "cannot claim the delegation's message; the queue will deliver it");
                return Step::Done;
            }
        };
        let lease = claimed.lease();
        match self.ledger.set_status(id, Update::Dispatched).await {
            Ok(Outcome::Applied { .. }) => {
                self.mark_delegate_row(d.caller_id, id, ActivityStatus::Dispatched)
                    .await;
            }
            Ok(_) => {}
            Err(LedgerError::InvalidTransition(_)) => {
                // Already settled (by the agent, the sweeper or a drain): nothing to send.
                self.queue_done(lease, None).await;
                return Step::Done;
            }
            Err(e) => {
                self.release_item(lease, &format!("the ledger could not be read: {e}"))
                    .await;
                return Step::Done;
            }
        }
        let req = crate::proxy::ProxyRequest {
            target: d.callee_id,
            caller: Some(d.caller_id),
            body: claimed.body,
            headers: Vec::new(),
            via: None,
        };
        let (dv, n) = match self.prepare(req).await {
            Ok(Prepared::Ready(dv, n)) => (*dv, n),
            Ok(Prepared::Early(ProxyOutcome::Unavailable(u))) if u.waking.is_some() || u.restarting.is_some() => {
                self.release_item(lease, &u.error).await;
                return Step::Retry(u.error);
            }
            Ok(Prepared::Early(outcome)) => {
                let reason = match outcome {
                    ProxyOutcome::BudgetExceeded => "workspace budget limit exceeded".to_owned(),
                    ProxyOutcome::Unavailable(u) => u.error,
                    ProxyOutcome::BadGateway(b) => b.error,
                    other => format!("refused with {}", other.status()),
                };
                self.fail_delegation(d, item, Some(lease), &reason).await;
                return Step::Done;
            }
            Err(e) => {
                self.fail_delegation(d, item, Some(lease), &e.to_string()).await;
                return Step::Done;
            }
        };
        let renew = self.renew_lease(lease);
        tokio::pin!(renew);
        let attempt = tokio::select! {
            a = self.attempt(&dv, &n, Some(self.delegation.a2a_timeout), Record::Inline) => a,
            () = &mut renew => Attempt::Busy("the lease was lost to the reaper".into()),
        };
        match attempt {
            Attempt::Answered { status, body, .. } => {
                let raw = String::from_utf8_lossy(&body).into_owned();
                let update = if !(200..300).contains(&status) {
                    Update::Failed {
                        error: format!("callee answered {status}: {}", preview(&raw, 500)),
                    }
                } else if raw.trim().is_empty() {
                    Update::Failed {
                        error: "workspace agent returned empty response".into(),
                    }
                } else {
                    let parsed: Value = serde_json::from_str(&raw).unwrap_or(Value::Null);
                    match parsed.get("error").filter(|e| !e.is_null()) {
                        Some(err) => Update::Failed {
                            error: format!("callee returned a JSON-RPC error: {err}"),
                        },
                        None => Update::Completed {
                            result: answer_text(&parsed, &raw),
                        },
                    }
                };
                let error = match &update {
                    Update::Failed { error } => Some(error.clone()),
                    _ => None,
                };
                self.queue_done(lease, error.as_deref()).await;
                if let Err(e) = self.finish(d, update).await {
                    tracing::warn!(delegation_id = id, error = %e, "could not record the delegation's outcome; the sweeper will fail it at its deadline");
                }
                Step::Done
            }
            Attempt::Busy(why) => {
                // The original's 202 queued: the message waits in the queue; the delegation shows
                // `queued` until a drain delivers it.
                self.release_item(lease, &why).await;
                self.mark_delegate_row(d.caller_id, id, ActivityStatus::Queued).await;
                Step::Done
            }
            Attempt::Restarting(reason) | Attempt::Unreachable(reason) => {
                self.release_item(lease, &reason).await;
                Step::Retry(reason)
            }
            Attempt::Unreadable(reason) => {
                self.fail_delegation(
                    d,
                    item,
                    Some(lease),
                    &format!("the callee's answer could not be read (it may have acted): {reason}"),
                )
                .await;
                Step::Done
            }
        }
    }

    /// Fails the delegation and its outbox item with `reason`: through the lease this replica
    /// holds, or by claiming the item if it waits (a drain that holds it meanwhile keeps it).
    async fn fail_delegation(&self, d: &Delegation, item: Uuid, held: Option<queue::Lease>, reason: &str) {
        let failed = async {
            let mut conn = self.pool.get().await?;
            let held = match held {
                Some(l) => Some(l),
                None => queue::claim_by_id(&mut conn, item, self.messaging.queue_lease)
                    .await?
                    .map(|c| c.lease()),
            };
            if let Some(l) = held {
                queue::fail(&mut conn, l, reason).await?;
            }
            Ok::<_, ServiceError>(())
        }
        .await;
        if let Err(e) = failed {
            tracing::warn!(queue_id = %item, error = %e.chain(), "the delegation's message was not marked failed");
        }
        let update = Update::Failed {
            error: reason.to_owned(),
        };
        if let Err(e) = self.finish(d, update).await {
            tracing::warn!(delegation_id = %d.delegation_id, error = %e, "could not record the delegation's failure; the sweeper will fail it at its deadline");
        }
    }

    /// Marks the outbox item delivered (or failed, with the callee's error).
    async fn queue_done(&self, held: queue::Lease, error: Option<&str>) {
        let done = async {
            let mut conn = self.pool.get().await?;
            match error {
                None => queue::complete(&mut conn, held).await?,
                Some(e) => queue::fail(&mut conn, held, e).await?,
            };
            Ok::<_, ServiceError>(())
        }
        .await;
        if let Err(e) = done {
            tracing::warn!(queue_id = %held.id, error = %e.chain(), "the delegation's message was not marked finished");
        }
    }

    async fn release_item(&self, held: queue::Lease, reason: &str) {
        let released = async {
            let mut conn = self.pool.get().await?;
            Ok::<_, ServiceError>(queue::release(&mut conn, held, reason).await?)
        }
        .await;
        if let Err(e) = released {
            tracing::warn!(queue_id = %held.id, error = %e.chain(), "the delegation's message was not put back; the reaper will take it back");
        }
    }

    /// Records a terminal outcome; if this call made the transition, writes the result rows,
    /// pushes the inbox row and emits the event. Returns whether it did.
    async fn finish(&self, d: &Delegation, update: Update) -> Result<bool> {
        self.finish_via(d, update, None).await
    }

    /// [`Self::finish`], naming the path that settled it in the event (`via`).
    async fn finish_via(&self, d: &Delegation, update: Update, via: Option<&'static str>) -> Result<bool> {
        let outcome = self
            .ledger
            .set_status(&d.delegation_id, update)
            .await
            .map_err(ledger_error)?;
        let Outcome::Applied { delegation, .. } = outcome else {
            return Ok(false);
        };
        self.notify_caller_via(&delegation, via).await?;
        Ok(true)
    }

    /// A queued delegation's message was delivered by the queue drain (or gave up): settles
    /// the delegation with the answer's text or the reason, `via: "queue_drain"`.
    pub async fn settle_from_queue(&self, delegation_id: &str, outcome: Result<String, String>) {
        let d = match self.ledger.get(delegation_id).await {
            Ok(Some(d)) => d,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(delegation_id, error = %e, "queue drain: cannot read the delegation");
                return;
            }
        };
        let update = match outcome {
            Ok(text) => Update::Completed { result: text },
            Err(error) => Update::Failed { error },
        };
        if let Err(e) = self.finish_via(&d, update, Some("queue_drain")).await {
            tracing::warn!(delegation_id, error = %e.chain(), "queue drain: the delegation's outcome was not recorded");
        }
    }

    /// The caller-side rows and event for a terminal delegation. Call once per transition.
    pub async fn notify_caller(&self, d: &Delegation) -> Result<()> {
        self.notify_caller_via(d, None).await
    }

    async fn notify_caller_via(&self, d: &Delegation, via: Option<&'static str>) -> Result<()> {
        let completed = d.status == DelegationStatus::Completed;
        let did = d.delegation_id.clone();
        let (caller, callee) = (d.caller_id, d.callee_id);
        let text = d.result_preview.clone().unwrap_or_default();
        let error = d.error_detail.clone();
        let inbox_push = self.delegation.inbox_push;
        self.mark_delegate_row(caller, &did, ActivityStatus::of_delegation(d.status))
            .await;
        let mut conn = self.pool.get().await?;
        conn.transaction::<_, ServiceError, _>(async move |conn| {
            let body = if completed {
                json!({ "text": text, "delegation_id": did })
            } else {
                json!({ "error": error, "delegation_id": did })
            };
            let summary = if completed {
                format!("Delegation completed ({})", preview(&text, 80))
            } else {
                "Delegation failed".to_owned()
            };
            ActivityRow {
                method: Some("delegate_result"),
                source_id: Some(callee),
                target_id: Some(caller),
                summary: Some(&summary),
                response_body: Some(&body),
                error_detail: error.as_deref(),
                ..ActivityRow::new(
                    caller,
                    ActivityType::Delegation,
                    if completed {
                        ActivityStatus::Completed
                    } else {
                        ActivityStatus::Failed
                    },
                )
            }
            .insert(conn)
            .await?;
            if inbox_push {
                let request = json!({ "delegation_id": did });
                ActivityRow {
                    method: Some("delegate_result"),
                    source_id: Some(caller),
                    target_id: Some(callee),
                    summary: Some(if completed {
                        "Delegation result delivered"
                    } else {
                        "Delegation failed"
                    }),
                    request_body: Some(&request),
                    response_body: Some(&body),
                    error_detail: error.as_deref(),
                    ..ActivityRow::new(
                        caller,
                        ActivityType::A2aReceive,
                        if completed {
                            ActivityStatus::Ok
                        } else {
                            ActivityStatus::Error
                        },
                    )
                }
                .insert(conn)
                .await?;
            }
            let (ty, mut payload) = if completed {
                (
                    EventType::DelegationComplete,
                    json!({ "delegation_id": did, "target_id": callee, "response_preview": preview(&text, 200) }),
                )
            } else {
                (
                    EventType::DelegationFailed,
                    json!({ "delegation_id": did, "target_id": callee, "error": error }),
                )
            };
            if let (Some(via), Some(obj)) = (via, payload.as_object_mut()) {
                obj.insert("via".into(), json!(via));
            }
            events::record(conn, ty, Some(caller), payload).await?;
            Ok(())
        })
        .await
    }

    /// Keeps the caller's `delegate` activity row in step with the ledger (best effort).
    async fn mark_delegate_row(&self, caller: Uuid, delegation_id: &str, status: ActivityStatus) {
        let result = async {
            let mut conn = self.pool.get().await?;
            molecule_tree::activity::set_delegate_row_status(&mut conn, caller, delegation_id, status).await?;
            events::record(
                &mut conn,
                EventType::DelegationStatus,
                Some(caller),
                json!({ "delegation_id": delegation_id, "status": status.as_str() }),
            )
            .await?;
            Ok::<_, ServiceError>(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(delegation_id, error = %e, "delegate activity row not updated");
        }
    }

    /// Agent-initiated: the caller delegated through its own channel and records it.
    pub async fn record_delegation(&self, caller: Uuid, req: RecordRequest) -> Result<Delegated> {
        if req.target_id == caller {
            return Err(ServiceError::invalid(
                "target_id",
                "self-delegation not permitted: a workspace cannot delegate to itself",
            ));
        }
        if req.task.trim().is_empty() {
            return Err(ServiceError::invalid("task", "must not be empty"));
        }
        if req.task.contains('\0') || req.delegation_id.contains('\0') {
            return Err(ServiceError::invalid(
                "task",
                "task and delegation_id must not contain NUL (\\u0000) characters",
            ));
        }
        let inserted = self
            .ledger
            .insert(NewDelegation {
                delegation_id: req.delegation_id.clone(),
                caller_id: caller,
                callee_id: req.target_id,
                task: req.task.clone(),
                idempotency_key: None,
                deadline: None,
            })
            .await
            .map_err(ledger_error)?;
        if inserted.delegation().caller_id != caller {
            return Err(ServiceError::conflict(
                "delegation_id is already used by another workspace",
                json!({ "delegation_id": req.delegation_id }),
            ));
        }
        if let Inserted::Created(_) = inserted {
            self.ledger
                .set_status(&req.delegation_id, Update::Dispatched)
                .await
                .map_err(ledger_error)?;
            let mut conn = self.pool.get().await?;
            let summary = format!("Delegating to {}", req.target_id);
            let request = json!({ "task": req.task, "delegation_id": req.delegation_id });
            ActivityRow {
                method: Some("delegate"),
                source_id: Some(caller),
                target_id: Some(req.target_id),
                summary: Some(&summary),
                request_body: Some(&request),
                ..ActivityRow::new(caller, ActivityType::Delegation, ActivityStatus::Dispatched)
            }
            .insert(&mut conn)
            .await?;
        }
        Ok(Delegated {
            delegation_id: req.delegation_id,
            status: DelegatedStatus::Recorded,
            target_id: req.target_id,
            idempotent_hit: matches!(inserted, Inserted::Existing(_)),
        })
    }

    async fn party_delegation(&self, ws: Uuid, delegation_id: &str) -> Result<Delegation> {
        match self.ledger.get(delegation_id).await.map_err(ledger_error)? {
            Some(d) if d.caller_id == ws || d.callee_id == ws => Ok(d),
            _ => Err(ServiceError::NotFound(format!(
                "workspace {ws} has no delegation {delegation_id}"
            ))),
        }
    }

    /// Admin listing of the ledger by status filter, newest first.
    pub async fn admin_delegations(
        &self,
        filter: molecule_ledger::StatusFilter,
        limit: i64,
    ) -> Result<Vec<Delegation>> {
        self.ledger.list(filter, limit).await.map_err(ledger_error)
    }

    /// One delegation as it went (admin): its ledger row (status, heartbeat, deadline,
    /// retries), the events recorded about it, and its activity rows, oldest first.
    pub async fn delegation_timeline(&self, delegation_id: &str) -> Result<DelegationTimeline> {
        let delegation = self
            .ledger
            .get(delegation_id)
            .await
            .map_err(ledger_error)?
            .ok_or_else(|| ServiceError::NotFound(format!("delegation {delegation_id} not found")))?;
        let filter = molecule_tree::events::EventFilter {
            delegation_id: Some(delegation_id.to_owned()),
            ..Default::default()
        };
        let (events, activity) = tokio::try_join!(
            self.tree.audit_events(&filter, 200),
            self.tree.delegation_activity(delegation_id)
        )?;
        Ok(DelegationTimeline {
            delegation,
            events,
            activity,
        })
    }

    /// Counts per status and completion-duration percentiles (admin).
    pub async fn delegation_stats(&self) -> Result<molecule_ledger::Stats> {
        self.ledger.stats().await.map_err(ledger_error)
    }

    /// A party reports the outcome. Only completed and failed are accepted here.
    pub async fn update_delegation(&self, ws: Uuid, delegation_id: &str, req: UpdateRequest) -> Result<Updated> {
        let d = self.party_delegation(ws, delegation_id).await?;
        let update = match req.status.trim() {
            "completed" => Update::Completed {
                result: req.response_preview.clone().unwrap_or_default(),
            },
            "failed" => Update::Failed {
                error: req
                    .error
                    .clone()
                    .filter(|e| !e.trim().is_empty())
                    .unwrap_or_else(|| "failed (no error given)".into()),
            },
            other => {
                return Err(ServiceError::invalid(
                    "status",
                    format!("status must be one of: completed, failed (got {other:?})"),
                ));
            }
        };
        let status = update.status();
        let applied = self.finish(&d, update).await?;
        Ok(Updated {
            status,
            delegation_id: delegation_id.to_owned(),
            applied,
        })
    }

    /// A party says the delegation is alive.
    pub async fn heartbeat_delegation(&self, ws: Uuid, delegation_id: &str) -> Result<bool> {
        self.party_delegation(ws, delegation_id).await?;
        self.ledger.heartbeat(delegation_id).await.map_err(ledger_error)
    }

    /// The workspace's delegations, sent and received, newest first (at most 50).
    pub async fn list_delegations(&self, ws: Uuid) -> Result<Vec<DelegationView>> {
        let rows = self.ledger.list_for(ws, 50).await.map_err(ledger_error)?;
        Ok(rows.into_iter().map(|d| view(ws, d)).collect())
    }

    /// One delegation the workspace sent or received (404 otherwise).
    pub async fn delegation(&self, ws: Uuid, delegation_id: &str) -> Result<DelegationView> {
        Ok(view(ws, self.party_delegation(ws, delegation_id).await?))
    }

    /// Tells callers about delegations the sweeper failed at their deadline; returns how many
    /// notifications failed.
    pub async fn notify_deadline_failures(&self, failed: Vec<Delegation>) -> usize {
        let mut errors = 0;
        for d in failed {
            if let Err(e) = self.notify_caller(&d).await {
                tracing::warn!(delegation_id = %d.delegation_id, error = %e, "could not tell the caller about a deadline failure");
                errors += 1;
            }
        }
        errors
    }
}

/// A ledger row as workspace `ws` sees it.
fn view(ws: Uuid, d: Delegation) -> DelegationView {
    DelegationView {
        direction: if d.caller_id == ws {
            Direction::Sent
        } else {
            Direction::Received
        },
        summary: preview(&d.task_preview, 200),
        source_id: d.caller_id,
        target_id: d.callee_id,
        status: d.status,
        response_preview: d.result_preview,
        error: d.error_detail,
        last_heartbeat: d.last_heartbeat,
        deadline: d.deadline,
        created_at: d.created_at,
        updated_at: d.updated_at,
        delegation_id: d.delegation_id,
        _ledger: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_text_prefers_parts_then_artifacts_then_raw() {
        let v = json!({ "result": { "parts": [{ "kind": "data" }, { "kind": "text", "text": "hi" }] } });
        assert_eq!(answer_text(&v, "raw"), "hi");
        let v = json!({ "result": { "artifacts": [{ "parts": [{ "type": "text", "text": "art" }] }] } });
        assert_eq!(answer_text(&v, "raw"), "art");
        assert_eq!(answer_text(&json!({ "result": {} }), "raw"), "raw");
    }
}
