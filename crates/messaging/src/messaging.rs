//! The message queue's use-cases and budgets: draining a workspace's queue when its heartbeat
//! reports a free slot, the reaper, the operator's drop-stale and queue view, and the budget
//! that gates messages.
//!
//! Owns: when and how queued messages are delivered (one leased claim per free slot, the lease
//! renewed while the delivery runs, a drained delegation settled `via: "queue_drain"`), and
//! the budget columns of `workspaces`. Must not know: HTTP, the queue's SQL (that is
//! `molecule_a2a::queue`).

use std::time::Duration;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use molecule_a2a::jsonrpc::Normalised;
use molecule_a2a::queue::{self, Item, Reaped};
use molecule_api::a2a::{Budget, BudgetPatch, Dropped, QueueItem, QueueView, TokenUsage};
use molecule_db::schema::{workspace_token_usage as tu, workspaces as w};
use molecule_domain::{QueueStatus, Runtime, Vocabulary};
use serde_json::Value;
use uuid::Uuid;

use crate::delegations;
use crate::proxy::{Delivery, Forwarded};
use molecule_tree::error::{Result, ServiceError};

/// Most items one heartbeat drains, whatever the free slots.
const MAX_DRAIN_PER_HEARTBEAT: i32 = 8;
/// Items listed by the queue view.
const QUEUE_VIEW_LIMIT: i64 = 100;
/// Finished items the reaper deletes per pass.
const REAP_BATCH: i64 = 10_000;

impl crate::Messaging {
    /// After a heartbeat with `free` slots: if anything waits, deliver up to that many items on
    /// a spawned task (the heartbeat does not wait for agents).
    pub fn spawn_drain(&self, id: Uuid, free: i32) {
        let this = self.clone();
        tokio::spawn(async move {
            for _ in 0..free.clamp(0, MAX_DRAIN_PER_HEARTBEAT) {
                match this.drain_one(id).await {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) => {
                        tracing::warn!(workspace_id = %id, error = %e.chain(), "queue drain stopped");
                        break;
                    }
                }
            }
        });
    }

    /// Claims and delivers the workspace's next item; false when nothing waits.
    pub async fn drain_one(&self, id: Uuid) -> Result<bool> {
        let item = {
            let mut conn = self.pool.get().await?;
            queue::claim(&mut conn, id, self.messaging.queue_lease).await?
        };
        let Some(item) = item else {
            return Ok(false);
        };
        self.deliver_item(item).await;
        Ok(true)
    }

    async fn deliver_item(&self, item: Item) {
        let target: Option<(String, Option<String>, String, Option<i32>)> = async {
            let mut conn = self.pool.get().await?;
            Ok::<_, ServiceError>(
                w::table
                    .find(item.workspace_id)
                    .select((w::name, w::url, w::runtime, w::idle_timeout_seconds))
                    .first(&mut conn)
                    .await
                    .optional()?,
            )
        }
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(queue_id = %item.id, error = %e.chain(), "queue drain: cannot read the target");
            None
        });
        let Some((name, Some(url), runtime, idle)) = target else {
            self.release(&item, "the workspace has no URL now").await;
            return;
        };
        if let Err(e) = molecule_tree::validate::agent_url("url", &url, self.config.saas) {
            self.release(
                &item,
                &format!("the workspace's URL is not allowed as a destination ({e})"),
            )
            .await;
            return;
        }
        let headers = match &item.headers {
            Value::Object(m) => m
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect(),
            _ => Vec::new(),
        };
        let d = Delivery {
            target: item.workspace_id,
            target_name: name,
            caller: item.caller_id,
            url,
            headers,
            idle: idle
                .and_then(|s| u64::try_from(s).ok())
                .map_or(self.messaging.idle_timeout, Duration::from_secs),
            external: runtime == Runtime::External.as_str(),
            via: item.via.clone(),
        };
        let n = Normalised {
            method: item.method.clone().unwrap_or_else(|| "message/send".into()),
            message_id: None,
            body: item.body.clone(),
        };
        let started = std::time::Instant::now();
        let forwarded = {
            let renew = self.renew_lease(item.lease());
            tokio::pin!(renew);
            let forward = self.forward(&d, &item.body, Some(self.messaging.agent_ceiling));
            tokio::select! {
                f = forward => f,
                () = &mut renew => Forwarded::Busy("the lease was lost to the reaper".into()),
            }
        };
        match forwarded {
            Forwarded::Answer { status, body, .. } if status < 300 => {
                let completed = async {
                    let mut conn = self.pool.get().await?;
                    Ok::<_, ServiceError>(queue::complete(&mut conn, item.lease()).await?)
                }
                .await;
                match completed {
                    Ok(true) => metrics::counter!("a2a_queue_delivered_total").increment(1),
                    Ok(false) => {
                        tracing::warn!(queue_id = %item.id, "queue item delivered after its lease was taken over; it may be delivered again")
                    }
                    Err(e) => {
                        tracing::warn!(queue_id = %item.id, error = %e.chain(), "queue item delivered but not marked completed")
                    }
                }
                if let Err(e) = self.record_delivery(&d, &n, status, &body, started.elapsed()).await {
                    tracing::warn!(queue_id = %item.id, error = %e.chain(), "drained message delivered, but its activity row was not written");
                }
                if let Some(observer) = &self.drained {
                    observer(crate::Drained {
                        workspace_id: item.workspace_id,
                        message_id: item.idempotency_key.clone(),
                        via: item.via.clone(),
                        status,
                        body: body.clone(),
                    })
                    .await;
                }
                if let Some(did) = &item.delegation_id {
                    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let raw = String::from_utf8_lossy(&body);
                    let outcome = match parsed.get("error").filter(|e| !e.is_null()) {
                        Some(err) => Err(format!("callee returned a JSON-RPC error: {err}")),
                        None => Ok(delegations::answer_text(&parsed, &raw)),
                    };
                    self.settle_from_queue(did, outcome).await;
                }
            }
            Forwarded::Answer { status, .. } => self.release(&item, &format!("the agent answered {status}")).await,
            Forwarded::Busy(r) | Forwarded::Unreachable(r) | Forwarded::Unreadable(r) => self.release(&item, &r).await,
        }
    }

    /// Renews the lease every third of its length; returns only if the lease was lost.
    pub async fn renew_lease(&self, held: queue::Lease) {
        let lease = self.messaging.queue_lease;
        loop {
            tokio::time::sleep(lease / 3).await;
            let extended = async {
                let mut conn = self.pool.get().await?;
                Ok::<_, ServiceError>(queue::extend(&mut conn, held, lease).await?)
            }
            .await;
            match extended {
                Ok(true) => {}
                Ok(false) => return,
                // A database hiccup: try again at the next third; the lease still runs.
                Err(e) => tracing::warn!(queue_id = %held.id, error = %e.chain(), "queue lease not renewed"),
            }
        }
    }

    /// A delivery failed: the item goes back to the queue, or fails for good (settling its
    /// delegation) once out of attempts.
    async fn release(&self, item: &Item, reason: &str) {
        let released = async {
            let mut conn = self.pool.get().await?;
            Ok::<_, ServiceError>(queue::release(&mut conn, item.lease(), reason).await?)
        }
        .await;
        match released {
            Ok(Some(QueueStatus::Failed)) => {
                tracing::warn!(queue_id = %item.id, workspace_id = %item.workspace_id, attempts = item.attempts, reason, "queue item failed: out of attempts");
                metrics::counter!("a2a_queue_failed_total").increment(1);
                if let Some(did) = &item.delegation_id {
                    self.settle_from_queue(
                        did,
                        Err(format!(
                            "the queued message could not be delivered after {} attempts: {reason}",
                            item.attempts
                        )),
                    )
                    .await;
                }
            }
            Ok(_) => {
                tracing::info!(queue_id = %item.id, attempts = item.attempts, reason, "queue item back in the queue")
            }
            Err(e) => {
                tracing::warn!(queue_id = %item.id, error = %e.chain(), "queue item not released; the reaper will take it back")
            }
        }
    }

    /// One reaper pass (once per cluster): expired leases, expired items, old finished items.
    pub async fn reap_queue(&self) -> Result<Reaped> {
        let mut conn = self.pool.get().await?;
        Ok(queue::reap(&mut conn, self.messaging.queue_retention, REAP_BATCH).await?)
    }

    /// `POST /admin/a2a-queue/drop-stale`: drops live items older than `max_age_minutes`
    /// (default 60), of one workspace or all.
    pub async fn drop_stale(&self, max_age_minutes: Option<i64>, workspace_id: Option<Uuid>) -> Result<Dropped> {
        let minutes = max_age_minutes.unwrap_or(60);
        if !(0..=525_600).contains(&minutes) {
            return Err(ServiceError::invalid(
                "max_age_minutes",
                "must be between 0 and 525600 (a year)",
            ));
        }
        let age = Duration::from_secs(u64::try_from(minutes).unwrap_or(0) * 60);
        let mut conn = self.pool.get().await?;
        Ok(Dropped {
            dropped: queue::drop_stale(&mut conn, age, workspace_id).await?,
        })
    }

    /// Live queue items per workspace, for the workspaces that have any.
    pub async fn queue_depths(&self) -> Result<std::collections::HashMap<Uuid, i64>> {
        let mut conn = self.pool.get().await?;
        Ok(queue::depths(&mut conn).await?.into_iter().collect())
    }

    /// `GET /workspaces/:id/a2a-queue`.
    pub async fn queue_view(&self, id: Uuid) -> Result<QueueView> {
        let mut conn = self.pool.get().await?;
        molecule_tree::row::require_live_status(
            id,
            molecule_tree::row::status_of(&mut conn, id, molecule_tree::row::Lock::No).await?,
        )?;
        let depth = queue::depth(&mut conn, id).await?;
        let items = queue::list(&mut conn, id, QUEUE_VIEW_LIMIT)
            .await?
            .into_iter()
            .map(|s| {
                Ok(QueueItem {
                    status: QueueStatus::parse(&s.status)
                        .map_err(|e| ServiceError::internal("reading a queue item", e))?,
                    id: s.id,
                    caller_id: s.caller_id,
                    priority: s.priority,
                    method: s.method,
                    attempts: s.attempts,
                    last_error: s.last_error,
                    delegation_id: s.delegation_id,
                    enqueued_at: s.enqueued_at,
                    expires_at: s.expires_at,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(QueueView {
            workspace_id: id,
            depth,
            items,
        })
    }

    /// `GET /workspaces/:id/budget`.
    pub async fn budget(&self, id: Uuid) -> Result<Budget> {
        let mut conn = self.pool.get().await?;
        let row: Option<(Option<i64>, i64)> = w::table
            .find(id)
            .select((w::budget_limit, w::monthly_spend))
            .first(&mut conn)
            .await
            .optional()?;
        let (budget_limit, monthly_spend) =
            row.ok_or_else(|| ServiceError::NotFound(format!("workspace {id} not found")))?;
        let today = time::OffsetDateTime::now_utc().date();
        let month_start = today.replace_day(1).unwrap_or(today);
        let usage: (Option<i64>, Option<i64>, Option<i64>) = tu::table
            .filter(tu::workspace_id.eq(id))
            .filter(tu::day.ge(month_start))
            .select((
                diesel::dsl::sql::<diesel::sql_types::Nullable<diesel::sql_types::BigInt>>("sum(input_tokens)::int8"),
                diesel::dsl::sql::<diesel::sql_types::Nullable<diesel::sql_types::BigInt>>("sum(output_tokens)::int8"),
                diesel::dsl::sql::<diesel::sql_types::Nullable<diesel::sql_types::BigInt>>("sum(calls)::int8"),
            ))
            .first(&mut conn)
            .await?;
        Ok(Budget {
            exceeded: budget_limit.is_some_and(|l| monthly_spend >= l),
            budget_limit,
            monthly_spend,
            tokens_this_month: TokenUsage {
                input_tokens: usage.0.unwrap_or(0),
                output_tokens: usage.1.unwrap_or(0),
                calls: usage.2.unwrap_or(0),
            },
        })
    }

    /// `PATCH /workspaces/:id/budget`: sets (or, with null, removes) the monthly limit in cents.
    pub async fn set_budget(&self, id: Uuid, patch: BudgetPatch) -> Result<Budget> {
        if let Some(limit) = patch.budget_limit
            && !(0..=1_000_000_000_000).contains(&limit)
        {
            return Err(ServiceError::invalid(
                "budget_limit",
                "must be between 0 and 1000000000000 cents, or null for no limit",
            ));
        }
        {
            let mut conn = self.pool.get().await?;
            if !molecule_tree::row::set_budget(&mut conn, id, patch.budget_limit).await? {
                return Err(ServiceError::NotFound(format!("workspace {id} not found")));
            }
        }
        self.targets.forget(id);
        self.budget(id).await
    }
}
