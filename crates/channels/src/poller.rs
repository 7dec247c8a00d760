//! `poller`: Telegram's long polling, one poller per row across every replica.
//!
//! Owns: the supervision pass each replica runs every few seconds (start a poller for every
//! polling row whose lease it can take, forget the ones whose row no longer polls), the lease
//! (taken in the row, renewed every third of `CHANNEL_POLLER_LEASE_SECONDS` beside the long
//! poll; a renewal that fails, because another replica took over, the row was turned off or
//! its config changed, stops the poller, and the next pass starts it again with the new
//! config), the position (`poll_offset`, moved past an update only after the update was taken
//! in, and taking in is idempotent by `update_id`, so a takeover can re-read an update but never
//! hand it to the agent twice), the errors (401 disables the row with the reason; 429 waits
//! as told; anything else backs off up to 30 s), the bot's own updates (join greeting,
//! button presses acknowledged), and Discover's moment as the bot's only reader (its rows'
//! pollers fenced out, then let go).
//!
//! Must not know: HTTP frameworks, the A2A proxy.

use std::time::Duration;

use molecule_domain::ChannelType;
use molecule_tree::Result;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::adapter::{self, Config};
use crate::store;
use crate::telegram::{self, TgError};

/// A poller this replica runs.
pub(crate) struct Running {
    task: JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Why a poller stopped.
#[derive(Debug)]
enum Stop {
    LeaseLost,
    Revoked,
    Failed(String),
}

impl crate::Channels {
    /// This replica's pollers (a panic while one held the lock leaves the map usable).
    fn pollers(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<Uuid, Running>> {
        self.inner
            .shared
            .pollers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lease_seconds(&self) -> i64 {
        i64::try_from(self.inner.shared.settings.poller_lease.as_secs())
            .unwrap_or(i64::MAX)
            .max(2)
    }

    /// One supervision pass: pollers started and stopped. A summary for the loop's stats.
    pub async fn supervise(&self) -> Result<Value> {
        let rows = {
            let mut conn = self.pool().get().await?;
            store::enabled_of(&mut conn, ChannelType::Telegram).await?
        };
        let mut wanted = Vec::new();
        for row in rows {
            match self.open(&row) {
                Ok(config) if crate::catalogue::adapter(ChannelType::Telegram).polls(&config) => {
                    wanted.push((row, config))
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(channel_id = %row.id, error = %e.chain(), "telegram row not polled: its secrets do not open")
                }
            }
        }
        let mut started = 0;
        {
            let mut pollers = self.pollers();
            pollers.retain(|id, r| !r.task.is_finished() && wanted.iter().any(|(row, _)| row.id == *id));
        }
        for (row, config) in wanted {
            let running = self.pollers().contains_key(&row.id);
            if running {
                continue;
            }
            let claimed = {
                let mut conn = self.pool().get().await?;
                store::claim_poller(&mut conn, row.id, self.inner.shared.replica, self.lease_seconds()).await?
            };
            let Some((version, offset)) = claimed else { continue };
            let this = self.clone();
            let id = row.id;
            let task = tokio::spawn(async move {
                let stop = this.poll(row, config, version, offset).await;
                match &stop {
                    Stop::LeaseLost => {
                        tracing::info!(channel_id = %id, "telegram poller stopped: lease lost or config changed")
                    }
                    Stop::Revoked => {}
                    Stop::Failed(why) => tracing::warn!(channel_id = %id, reason = %why, "telegram poller stopped"),
                }
                if !matches!(stop, Stop::LeaseLost) {
                    let released = async {
                        let mut conn = this.pool().get().await?;
                        store::release_poller(&mut conn, id, this.inner.shared.replica).await
                    };
                    let _ = released.await;
                }
            });
            self.pollers().insert(id, Running { task });
            started += 1;
        }
        let running = self.pollers().len();
        Ok(json!({ "running": running, "started": started }))
    }

    /// Stops this replica's poller of a row (a deleted row).
    pub(crate) fn stop_poller(&self, id: Uuid) {
        self.pollers().remove(&id);
    }

    /// Stops every poller of this replica and lets their leases go (a clean shutdown), so
    /// another replica takes over at once.
    pub async fn stop_pollers(&self) {
        let ids: Vec<Uuid> = {
            let mut pollers = self.pollers();
            pollers.drain().map(|(id, _)| id).collect()
        };
        for id in ids {
            if let Ok(mut conn) = self.pool().get().await {
                let _ = store::release_poller(&mut conn, id, self.inner.shared.replica).await;
            }
        }
    }

    async fn poll(&self, row: store::Row, config: Config, version: i32, offset: i64) -> Stop {
        let renew = async {
            let every = Duration::from_secs(u64::try_from(self.lease_seconds() / 3).unwrap_or(1).max(1));
            loop {
                tokio::time::sleep(every).await;
                let kept = async {
                    let mut conn = self.pool().get().await?;
                    store::renew_poller(
                        &mut conn,
                        row.id,
                        self.inner.shared.replica,
                        version,
                        self.lease_seconds(),
                    )
                    .await
                }
                .await;
                match kept {
                    Ok(true) => {}
                    Ok(false) => return Stop::LeaseLost,
                    // The database is away: keep polling; the fence on the offset still holds.
                    Err(e) => {
                        tracing::warn!(channel_id = %row.id, error = %e.chain(), "telegram poller lease not renewed")
                    }
                }
            }
        };
        tokio::select! {
            stop = renew => stop,
            stop = self.poll_loop(&row, &config, offset) => stop,
        }
    }

    async fn poll_loop(&self, row: &store::Row, config: &Config, mut offset: i64) -> Stop {
        let Some(token) = adapter::field(config, "bot_token") else {
            return Stop::Failed("no bot_token".into());
        };
        let v = &self.inner.shared.vendors;
        if let Err(e) = telegram::call(v, token, "deleteWebhook", &json!({}), None).await {
            if matches!(e, TgError::Unauthorized) {
                return self.revoked(row.id).await;
            }
            tracing::warn!(channel_id = %row.id, error = %e, "telegram deleteWebhook failed; polling anyway");
        }
        let mut backoff = Duration::from_secs(1);
        loop {
            let updates = match telegram::get_updates(v, token, offset, self.inner.shared.settings.poll_wait).await {
                Ok(u) => {
                    backoff = Duration::from_secs(1);
                    u
                }
                Err(TgError::Unauthorized) => return self.revoked(row.id).await,
                Err(TgError::RetryAfter(wait)) => {
                    tokio::time::sleep(wait).await;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(channel_id = %row.id, error = %e, retry_in = ?backoff, "telegram getUpdates failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    continue;
                }
            };
            for u in updates {
                let Some(update_id) = u.get("update_id").and_then(Value::as_i64) else {
                    continue;
                };
                if let Err(e) = self.handle_update(row, token, &u).await {
                    // Not taken in: the update is read again on the next poll.
                    tracing::warn!(channel_id = %row.id, update_id, error = %e.chain(), "telegram update not taken in; retrying");
                    tokio::time::sleep(backoff).await;
                    break;
                }
                let moved = async {
                    let mut conn = self.pool().get().await?;
                    store::advance_offset(&mut conn, row.id, self.inner.shared.replica, update_id).await
                }
                .await;
                match moved {
                    Ok(true) => offset = offset.max(update_id + 1),
                    Ok(false) => return Stop::LeaseLost,
                    Err(e) => {
                        tracing::warn!(channel_id = %row.id, error = %e.chain(), "telegram position not saved");
                        offset = offset.max(update_id + 1);
                    }
                }
            }
        }
    }

    async fn revoked(&self, id: Uuid) -> Stop {
        self.disable_for(id, "telegram: unauthorized (the bot token was revoked or is invalid); set a new bot_token and enable the channel")
            .await;
        Stop::Revoked
    }

    async fn handle_update(&self, row: &store::Row, token: &str, u: &Value) -> Result<()> {
        let v = &self.inner.shared.vendors;
        if let Some(member) = u.get("my_chat_member") {
            let status = member.pointer("/new_chat_member/status").and_then(Value::as_str);
            let chat = member.pointer("/chat/id").cloned().unwrap_or(Value::Null);
            if matches!(status, Some("member" | "administrator")) {
                let hello = format!(
                    "👋 Hello! This chat's id is `{chat}`: add it to the channel's chat_id to talk to the agent here."
                );
                if let Err(e) = telegram::call(
                    v,
                    token,
                    "sendMessage",
                    &json!({ "chat_id": chat, "text": hello, "parse_mode": "Markdown" }),
                    None,
                )
                .await
                {
                    tracing::info!(channel_id = %row.id, error = %e, "telegram greeting not sent");
                }
            } else {
                tracing::info!(channel_id = %row.id, chat = %chat, status = ?status, "the bot left or was removed from a chat");
            }
            return Ok(());
        }
        if let Some(id) = u.pointer("/callback_query/id") {
            let ack = json!({ "callback_query_id": id, "text": "Received" });
            if let Err(e) = telegram::call(v, token, "answerCallbackQuery", &ack, None).await {
                tracing::info!(channel_id = %row.id, error = %e, "telegram callback not acknowledged");
            }
        }
        let Some(message) = telegram::message_of(u) else {
            return Ok(());
        };
        // The row as it is now: an allowlist or chat change applies from the next message,
        // without waiting for the poller to restart.
        let current = {
            let mut conn = self.pool().get().await?;
            store::by_id(&mut conn, row.id).await?
        };
        let Some(current) = current else { return Ok(()) };
        let fresh = self.open(&current)?;
        self.take(&current, &fresh, message).await.map(|_| ())
    }
}

impl crate::Channels {
    /// Discover's `getUpdates`, as the bot's only reader: the pollers of every row with this
    /// bot token (on any replica) are fenced out for a moment (their next renewal fails and
    /// they stop; this replica's stop at once), the read retries Telegram's 409 while a poll
    /// still runs out, and the rows are let go for the pollers to resume.
    pub(crate) async fn read_updates_alone(&self, token: &str) -> Result<Value, TgError> {
        let rows: Vec<Uuid> = async {
            let mut conn = self.pool().get().await?;
            store::enabled_of(&mut conn, ChannelType::Telegram).await
        }
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| {
            self.open(r)
                .ok()
                .is_some_and(|c| adapter::field(&c, "bot_token") == Some(token))
        })
        .map(|r| r.id)
        .collect();
        let fence = Uuid::new_v4();
        let renew_every = Duration::from_secs(u64::try_from(self.lease_seconds() / 3).unwrap_or(1).max(1));
        if !rows.is_empty() {
            let fenced = async {
                let mut conn = self.pool().get().await?;
                store::fence_pollers(&mut conn, &rows, fence, 30).await
            };
            if let Err(e) = fenced.await {
                tracing::warn!(error = %e.chain(), "discover: pollers not paused; Telegram may answer 409");
            }
            for id in &rows {
                self.stop_poller(*id);
            }
        }
        let params =
            json!({ "limit": 100, "timeout": 0, "allowed_updates": ["message", "channel_post", "my_chat_member"] });
        // A poller on another replica sees the fence within a third of its lease; its poll
        // ends when it stops.
        let deadline =
            tokio::time::Instant::now() + renew_every + self.inner.shared.settings.poll_wait + Duration::from_secs(2);
        let read = loop {
            match telegram::call(&self.inner.shared.vendors, token, "getUpdates", &params, None).await {
                Err(TgError::Conflict(_)) if !rows.is_empty() && tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                other => break other,
            }
        };
        for id in &rows {
            if let Ok(mut conn) = self.pool().get().await {
                let _ = store::release_poller(&mut conn, *id, fence).await;
            }
        }
        read
    }
}
