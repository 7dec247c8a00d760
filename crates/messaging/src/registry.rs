//! Agents announce themselves: registration and heartbeats, on the original's wire shapes.

use diesel_async::AsyncConnection;
use molecule_api::registry::{Ack, Heartbeat, HeartbeatAck, Register, Registered};
use molecule_domain::{
    DeliveryMode, EventType, HeartbeatHealth, StatusChange, Vocabulary, WorkspaceStatus, heartbeat_transition,
};
use molecule_secrets::ExposeSecret;
use molecule_tree::row;
use serde_json::{Value, json};
use uuid::Uuid;

use molecule_tree::error::{Result, ServiceError};

use molecule_tree::{events, validate};

fn sticky_conflict(id: Uuid, status: WorkspaceStatus) -> ServiceError {
    if status == WorkspaceStatus::Removed {
        ServiceError::conflict(
            format!("workspace {id} was removed; it cannot register again"),
            json!({ "status": WorkspaceStatus::Removed.as_str() }),
        )
    } else {
        ServiceError::conflict(
            format!("workspace {id} is {status}; resume it before its agent registers"),
            json!({ "status": status.as_str() }),
        )
    }
}

impl crate::Messaging {
    /// Registers an agent: stores its URL, card and delivery mode and marks it online. Never
    /// revives a removed, paused or hibernated workspace.
    pub async fn register(&self, input: Register) -> Result<Registered> {
        let mode = match input.delivery_mode.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => DeliveryMode::Push,
            Some(m) => DeliveryMode::parse(m).map_err(|e| ServiceError::invalid("delivery_mode", e.to_string()))?,
        };
        if !input.agent_card.is_object() {
            return Err(ServiceError::invalid("agent_card", "must be a JSON object"));
        }
        let url = input.url.clone().filter(|u| !u.trim().is_empty()).or_else(|| {
            input
                .agent_card
                .get("url")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .filter(|u| !u.trim().is_empty())
        });
        let url = url
            .map(|u| validate::agent_url("url", &u, self.config.saas))
            .transpose()?;
        if mode == DeliveryMode::Push && url.is_none() {
            return Err(ServiceError::invalid(
                "url",
                "url is required for push-mode workspaces (or register with delivery_mode \"poll\")",
            ));
        }
        let id = input.id;
        let card = input.agent_card;
        let mut conn = self.pool.get().await?;
        let status = conn
            .transaction::<_, ServiceError, _>(async move |conn| {
                let current = molecule_tree::row::status_of(conn, id, molecule_tree::row::Lock::Row)
                    .await?
                    .ok_or_else(|| ServiceError::NotFound(format!("workspace {id} not found")))?;
                if current.is_sticky() {
                    return Err(sticky_conflict(id, current));
                }
                row::set_endpoint(conn, id, url.as_deref(), &card, mode).await?;
                row::transition(
                    conn,
                    id,
                    &StatusChange::Online,
                    row::From::Any,
                    row::Also::default(),
                    json!({ "url": url, "agent_card": card, "recovered_from": current.as_str() }),
                )
                .await?;
                Ok(WorkspaceStatus::Online)
            })
            .await?;
        self.targets.forget(id);
        let inbound = self.vault.ensure_inbound_secret(&mut conn, id).await?;
        Ok(Registered {
            status: Ack::Registered,
            delivery_mode: mode,
            workspace_status: status,
            platform_inbound_secret: inbound.expose_secret().to_owned(),
        })
    }

    /// Records a heartbeat and moves the workspace between online and degraded.
    pub async fn heartbeat(&self, hb: Heartbeat) -> Result<HeartbeatAck> {
        if !hb.error_rate.is_finite() || !(0.0..=1.0).contains(&hb.error_rate) {
            return Err(ServiceError::invalid("error_rate", "must be a number between 0 and 1"));
        }
        if hb.active_tasks < 0 {
            return Err(ServiceError::invalid("active_tasks", "must be >= 0"));
        }
        if hb.uptime_seconds < 0 {
            return Err(ServiceError::invalid("uptime_seconds", "must be >= 0"));
        }
        let runtime_state = hb.runtime_state.as_deref().map(str::trim).unwrap_or("");
        if !matches!(runtime_state, "" | "wedged") {
            return Err(ServiceError::invalid("runtime_state", "must be \"\" or \"wedged\""));
        }
        let current_task = validate::optional_text("current_task", hb.current_task.as_deref(), 4096, false)?;
        if hb.monthly_spend < 0 {
            return Err(ServiceError::invalid(
                "monthly_spend",
                "must be >= 0 (cents; 0 means no update)",
            ));
        }
        // Cents; 0 means "no update" (the original's rule), clamped to 1e12.
        let monthly_spend = (hb.monthly_spend > 0).then(|| hb.monthly_spend.min(1_000_000_000_000));
        // Absent from a heartbeat means cleared (back to A2A_IDLE_TIMEOUT_SECONDS).
        let idle_timeout = match hb.runtime_metadata.as_ref().and_then(|m| m.idle_timeout_seconds) {
            None => None,
            Some(s) if (1..=86_400).contains(&s) => i32::try_from(s).ok(),
            Some(_) => {
                return Err(ServiceError::invalid(
                    "runtime_metadata.idle_timeout_seconds",
                    "must be between 1 and 86400 seconds (omit it to use the server's A2A_IDLE_TIMEOUT_SECONDS)",
                ));
            }
        };
        let sample_error = hb
            .sample_error
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.chars().take(8192).collect::<String>());
        let native_scheduler = hb.runtime_metadata.as_ref().is_some_and(|m| m.capabilities.scheduler);
        let health = HeartbeatHealth {
            error_rate: hb.error_rate,
            wedged: runtime_state == "wedged",
            self_managed: hb.runtime_metadata.as_ref().is_some_and(|m| m.capabilities.status_mgmt),
        };
        let id = hb.workspace_id;
        let mut conn = self.pool.get().await?;
        let (new_status, max_tasks) = conn
            .transaction::<_, ServiceError, _>(async move |conn| {
                    let (current, old_task, max_tasks) = row::lock_for_heartbeat(conn, id)
                        .await?
                        .ok_or_else(|| ServiceError::NotFound(format!("workspace {id} not found")))?;
                    if current == WorkspaceStatus::Removed {
                        return Err(sticky_conflict(id, current));
                    }
                    let next = heartbeat_transition(current, health);
                    let status = next.unwrap_or(current);
                    row::record_heartbeat(
                        conn,
                        id,
                        &row::Beat {
                            error_rate: hb.error_rate,
                            active_tasks: hb.active_tasks,
                            uptime_seconds: hb.uptime_seconds,
                            current_task: current_task.as_deref(),
                            idle_timeout_seconds: idle_timeout,
                            monthly_spend,
                            sample_error: sample_error.as_deref(),
                            native_scheduler,
                        },
                    )
                    .await?;
                    // A move (rare: online and degraded hold steady) goes through the one
                    // status writer, with the event it always had.
                    let payload = match next {
                        Some(WorkspaceStatus::Degraded) => Some(json!({ "error_rate": hb.error_rate, "sample_error": sample_error, "runtime_state": runtime_state })),
                        Some(WorkspaceStatus::Online) => Some(json!({ "recovered_from": current.as_str() })),
                        _ => None,
                    };
                    if let (Some(to), Some(payload)) = (next.and_then(StatusChange::to), payload) {
                        row::transition(conn, id, &to, row::From::OneOf(&[current]), row::Also::default(), payload).await?;
                    }
                    if old_task != current_task {
                        events::record(conn, EventType::TaskUpdated, Some(id), json!({ "current_task": current_task, "active_tasks": hb.active_tasks })).await?;
                    }
                    events::record(conn, EventType::WorkspaceHeartbeat, Some(id), json!({ "active_tasks": hb.active_tasks, "uptime_seconds": hb.uptime_seconds })).await?;
                    Ok((status, max_tasks))
                })
            .await?;
        self.targets.forget(id);
        // A free slot drains the queue: one index probe here, the deliveries on their own task.
        let free = max_tasks - hb.active_tasks;
        if free > 0 && matches!(new_status, WorkspaceStatus::Online | WorkspaceStatus::Degraded) {
            match molecule_a2a::queue::has_waiting(&mut conn, id).await {
                Ok(true) => self.spawn_drain(id, free),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(workspace_id = %id, error = %e, "cannot tell whether messages wait for this workspace")
                }
            }
        }
        // A live callee keeps its delegations alive (and revives its stuck ones). Same
        // connection: a request never holds one connection while waiting for another.
        if let Err(e) = molecule_ledger::Ledger::on(&mut conn).heartbeat_callee(id).await {
            tracing::warn!(workspace_id = %id, error = %e, "delegation heartbeat failed");
        }
        let inbound = self.vault.ensure_inbound_secret(&mut conn, id).await?;
        Ok(HeartbeatAck {
            status: Ack::Ok,
            workspace_status: new_status,
            platform_inbound_secret: inbound.expose_secret().to_owned(),
        })
    }
}
