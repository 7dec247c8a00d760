//! `inbound`: a chat message from the vendor's request to the agent, and the agent's answer
//! back to the chat.
//!
//! Owns: the webhook routes' logic (by row: `/webhooks/:type/:channel_id`, verified against
//! that row only; and the original's `/webhooks/:type`, where only rows the request verifies
//! against are candidates, then the chat and `[slug]` routing), a message taken in once by
//! the vendor's id, the allowlist, Telegram's inline commands, the A2A message (messageId
//! `channel-<type>-<row>-<vendor id>`, the chat's history, the vendor's metadata), the typing
//! indicator while the agent works, the reply (sent to the chat the message came from; a
//! busy agent's answer is sent when the queue delivers it: [`QueueAnswer`]), and the sweep
//! that finishes replies a stopped replica left behind.
//!
//! Must not know: HTTP frameworks, the proxy's internals (a [`crate::Deliver`]).

use std::time::Duration;

use molecule_api::a2a::ProxyOutcome;
use molecule_domain::{ChannelMessageStatus, ChannelType, Vocabulary};
use molecule_tree::{Result, ServiceError};
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::adapter::{self, Config, Destination, Headers, Inbound, Message, Parsed};
use crate::store;

/// The most bytes an inbound body may have (the original's later cap).
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// How often the typing indicator is sent again while the agent works.
const TYPING_EVERY: Duration = Duration::from_secs(4);
/// An answer not sent for this long was left by a stopped replica: the sweep sends it.
const UNSENT_AFTER_SECONDS: i64 = 30;
/// A message still waiting for an answer after this long gets none.
const STALE_HOURS: i32 = 24;
/// Messages are kept this long.
const KEEP_DAYS: i32 = 7;

/// How an inbound request is answered.
#[derive(Debug, Clone, PartialEq)]
pub enum InboundOutcome {
    /// 200 with this JSON.
    Answer(Value),
    /// 200 with an empty body (Slack's slash-command acknowledgement).
    Empty,
    /// 401 `webhook authentication failed`: the reason is logged, never answered.
    Unauthorized(String),
}

/// An answer the A2A queue delivered later, as messaging reports it.
#[derive(Debug, Clone)]
pub struct QueueAnswer {
    pub workspace_id: Uuid,
    /// `params.message.messageId` of the delivered message.
    pub message_id: Option<String>,
    pub status: u16,
    pub body: Vec<u8>,
}

fn ignored(reason: &str) -> InboundOutcome {
    InboundOutcome::Answer(json!({ "status": "ignored", "reason": reason }))
}

/// The `[slug]` of a routed message and the rest of its text: `[backend] do x` →
/// (`backend`, `do x`). The original's rule: `]` at index 2..39, the inside letters, digits,
/// spaces, `_` and `-`; nothing after it keeps the whole text.
pub fn slug(text: &str) -> Option<(String, String)> {
    let rest = text.strip_prefix('[')?;
    let close = text.find(']')?;
    if !(2..=39).contains(&close) {
        return None;
    }
    let inner = rest[..close - 1].trim().to_lowercase();
    if inner.is_empty()
        || !inner
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '_' | '-'))
    {
        return None;
    }
    let after = text[close + 1..].trim();
    Some((
        inner,
        if after.is_empty() {
            text.to_owned()
        } else {
            after.to_owned()
        },
    ))
}

fn slug_matches(config: &Config, slug: &str) -> bool {
    let Some(name) = adapter::field(config, "username").map(str::to_lowercase) else {
        return false;
    };
    name == slug || name.replace(' ', "-").starts_with(slug) || name.replace(' ', "").starts_with(slug)
}

/// The agent's answer text: the first text part of `result` (a message), else of its
/// artifacts, else of its status message.
pub fn reply_text(body: &Value) -> String {
    let text_of = |parts: &Value| {
        parts.as_array()?.iter().find_map(|p| {
            let kind = p.get("kind").or_else(|| p.get("type")).and_then(Value::as_str);
            (kind.is_none() || kind == Some("text"))
                .then(|| p.get("text").and_then(Value::as_str).map(str::to_owned))
                .flatten()
        })
    };
    let r = body.get("result").unwrap_or(&Value::Null);
    let r = r.get("message").filter(|m| m.get("parts").is_some()).unwrap_or(r);
    text_of(&r["parts"])
        .or_else(|| {
            r["artifacts"]
                .as_array()
                .and_then(|a| a.iter().find_map(|art| text_of(&art["parts"])))
        })
        .or_else(|| text_of(&r["status"]["message"]["parts"]))
        .unwrap_or_default()
}

impl crate::Channels {
    fn fallback_key(&self) -> Option<&str> {
        self.inner.shared.settings.discord_public_key.as_deref()
    }

    /// `POST /webhooks/:type/:channel_id`: the request must verify against that row.
    pub async fn webhook_for(
        &self,
        kind: ChannelType,
        id: Uuid,
        headers: &Headers,
        body: &[u8],
    ) -> Result<InboundOutcome> {
        let row = {
            let mut conn = self.pool().get().await?;
            store::by_id(&mut conn, id).await?
        };
        let Some(row) = row.filter(|r| r.kind().ok() == Some(kind)) else {
            return Ok(InboundOutcome::Unauthorized(format!("no {kind} channel {id}")));
        };
        if !row.enabled {
            return Ok(InboundOutcome::Unauthorized(format!("channel {id} is disabled")));
        }
        let config = self.open(&row)?;
        let a = crate::catalogue::adapter(kind);
        let inbound = Inbound {
            headers,
            body,
            now_unix: OffsetDateTime::now_utc().unix_timestamp(),
        };
        if let Err(why) = a.verify(&config, inbound, self.fallback_key()) {
            return Ok(InboundOutcome::Unauthorized(format!("channel {id}: {why}")));
        }
        match a
            .parse(&config, inbound)
            .map_err(|e| ServiceError::invalid("body", e))?
        {
            Parsed::Handshake(v) => Ok(InboundOutcome::Answer(v)),
            Parsed::Ignored(why) => Ok(ignored(why)),
            Parsed::Message { message, ack } => {
                let status = self.take(&row, &config, *message).await?;
                Ok(acknowledge(status, ack))
            }
        }
    }

    /// `POST /webhooks/:type` (the original's route): only rows the request verifies against
    /// are candidates; then the chat, then the `[slug]`.
    pub async fn webhook_any(&self, kind: ChannelType, headers: &Headers, body: &[u8]) -> Result<InboundOutcome> {
        let rows = {
            let mut conn = self.pool().get().await?;
            store::enabled_of(&mut conn, kind).await?
        };
        let a = crate::catalogue::adapter(kind);
        let inbound = Inbound {
            headers,
            body,
            now_unix: OffsetDateTime::now_utc().unix_timestamp(),
        };
        let mut verified = Vec::new();
        for row in rows {
            let config = match self.open(&row) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(channel_id = %row.id, error = %e.chain(), "channel skipped: its secrets do not open");
                    continue;
                }
            };
            if a.verify(&config, inbound, self.fallback_key()).is_ok() {
                verified.push((row, config));
            }
        }
        let Some((_, first_config)) = verified.first() else {
            return Ok(InboundOutcome::Unauthorized(format!(
                "no {kind} channel verifies this request"
            )));
        };
        let (message, ack) = match a
            .parse(first_config, inbound)
            .map_err(|e| ServiceError::invalid("body", e))?
        {
            Parsed::Handshake(v) => return Ok(InboundOutcome::Answer(v)),
            Parsed::Ignored(why) => return Ok(ignored(why)),
            Parsed::Message { message, ack } => (*message, ack),
        };
        let in_chat: Vec<&(store::Row, Config)> = verified
            .iter()
            .filter(|(_, c)| {
                let chats = adapter::list(c.get("chat_id").or_else(|| c.get("channel_id")));
                chats.is_empty() || chats.contains(&message.chat_id)
            })
            .collect();
        let (chosen, message) = match slug(&message.text) {
            Some((wanted, text)) => match in_chat.iter().find(|(_, c)| slug_matches(c, &wanted)) {
                Some(found) => (Some(*found), Message { text, ..message }),
                None => {
                    let available: Vec<String> = in_chat
                        .iter()
                        .filter_map(|(_, c)| adapter::field(c, "username").map(|u| format!("[{}]", u.to_lowercase())))
                        .collect();
                    return Ok(InboundOutcome::Answer(json!({ "status": "unknown_agent",
                        "requested_slug": wanted, "available_slugs": available })));
                }
            },
            None => (in_chat.first().copied(), message),
        };
        let Some((row, config)) = chosen else {
            return Ok(InboundOutcome::Answer(json!({ "status": "no_channel" })));
        };
        let status = self.take(row, config, message).await?;
        Ok(acknowledge(status, ack))
    }

    /// Takes a verified message in (once), answers Telegram's commands, and sends the rest to
    /// the agent on a task of its own.
    pub(crate) async fn take(&self, row: &store::Row, config: &Config, m: Message) -> Result<Taken> {
        let kind = row.kind()?;
        let allowed: Vec<String> = row
            .allowed_users
            .as_ref()
            .and_then(|u| serde_json::from_value(u.clone()).ok())
            .unwrap_or_default();
        let mut refused = !allowed.is_empty() && !allowed.iter().any(|a| *a == m.user_id || *a == m.chat_id);
        // A Telegram bot hears every chat it is in: only the configured ones reach the agent
        // (a button press, answered in the presser's chat, is exempt, as in the original).
        if kind == ChannelType::Telegram
            && m.reply_context.get("callback_query_id").is_none()
            && !adapter::list(config.get("chat_id")).contains(&m.chat_id)
        {
            refused = true;
        }
        // Telegram numbers updates per bot: a row given another bot must not take its
        // updates for the old one's.
        let external_id = match (
            kind,
            adapter::field(config, "bot_token").and_then(|t| t.split_once(':')),
        ) {
            (ChannelType::Telegram, Some((bot, _))) => format!("{bot}:{}", m.external_id),
            _ => m.external_id.clone(),
        };
        let a2a_id = format!("channel-{kind}-{}-{external_id}", row.id);
        let taken = {
            let mut conn = self.pool().get().await?;
            store::take_in(
                &mut conn,
                store::NewMessage {
                    channel_id: row.id,
                    workspace_id: row.workspace_id,
                    external_id: &external_id,
                    a2a_message_id: &a2a_id,
                    chat_id: &m.chat_id,
                    user_id: &m.user_id,
                    username: &m.username,
                    text: &m.text,
                    reply_context: &m.reply_context,
                    status: if refused {
                        ChannelMessageStatus::Dropped
                    } else {
                        ChannelMessageStatus::Received
                    },
                },
            )
            .await?
        };
        let Some(msg_id) = taken else {
            return Ok(Taken::Duplicate);
        };
        if refused {
            tracing::info!(channel_id = %row.id, user_id = %m.user_id, "inbound message dropped: sender not in allowed_users");
            return Ok(Taken::Dropped);
        }
        let to = Destination {
            chat_id: m.chat_id.clone(),
            reply_context: m.reply_context.clone(),
        };
        if kind == ChannelType::Telegram
            && let Some(answer) = self.telegram_command(row, &m).await?
        {
            let this = self.clone();
            let (row, config) = (row.clone(), config.clone());
            tokio::spawn(async move { this.reply(&row, &config, msg_id, &to, &answer).await });
            return Ok(Taken::Accepted);
        }
        let this = self.clone();
        let (row, config) = (row.clone(), config.clone());
        // Detached: the vendor is answered at once (Slack and Discord wait three seconds at
        // most), and a hang-up never cancels a message on its way.
        tokio::spawn(async move { this.process(row, config, msg_id, a2a_id, m, to).await });
        Ok(Taken::Accepted)
    }

    /// Telegram's commands the platform answers itself; `None` for anything for the agent.
    async fn telegram_command(&self, row: &store::Row, m: &Message) -> Result<Option<String>> {
        Ok(match crate::telegram::command(&m.text) {
            Some("start") => Some("✅ Connected to Molecule AI agent. Send a message and I'll forward it.".into()),
            Some("help") => Some(crate::telegram::HELP.into()),
            Some("reset") => {
                let mut conn = self.pool().get().await?;
                store::reset_history(&mut conn, row.id, &m.chat_id).await?;
                Some("🧹 Conversation history cleared.".into())
            }
            Some("cancel") => Some("⚠️ Cancellation requested (best-effort).".into()),
            _ => None,
        })
    }

    async fn process(
        &self,
        row: store::Row,
        config: Config,
        msg_id: Uuid,
        a2a_id: String,
        m: Message,
        to: Destination,
    ) {
        let kind = match row.kind() {
            Ok(k) => k,
            Err(e) => return tracing::warn!(error = %e.chain(), "channel message not processed"),
        };
        let history = async {
            let mut conn = self.pool().get().await?;
            store::history(&mut conn, row.id, &m.chat_id).await
        }
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(channel_id = %row.id, error = %e.chain(), "chat history not read; the message goes without it");
            Vec::new()
        });
        let history: Vec<Value> = history
            .into_iter()
            .map(|h| {
                json!({ "user": h.username, "message": h.text, "reply": h.reply,
                        "time": h.created_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default() })
            })
            .collect();
        let body = json!({ "method": "message/send", "params": {
            "message": { "role": "user", "messageId": a2a_id, "parts": [{ "kind": "text", "text": m.text }] },
            "metadata": { "source": kind.as_str(), "channel_id": row.id, "chat_id": m.chat_id, "user_id": m.user_id,
                          "username": m.username, "message_id": m.external_id, "history": history, "extra": m.metadata } } });
        {
            let done = async {
                let mut conn = self.pool().get().await?;
                store::count_message(&mut conn, row.id).await
            };
            if let Err(e) = done.await {
                tracing::warn!(channel_id = %row.id, error = %e.chain(), "message count not updated");
            }
        }
        self.event(
            row.workspace_id,
            json!({ "channel_id": row.id, "channel_type": kind.as_str(), "username": m.username, "direction": "inbound" }),
        )
        .await;
        let a = crate::catalogue::adapter(kind);
        let outcome = {
            let deliver = (self.inner.deliver)(row.workspace_id, body, format!("channel:{kind}"));
            tokio::pin!(deliver);
            loop {
                a.typing(&self.inner.shared.vendors, &config, &to).await;
                tokio::select! {
                    out = &mut deliver => break out,
                    () = tokio::time::sleep(TYPING_EVERY) => {}
                }
            }
        };
        let failed = |why: String| async move {
            tracing::warn!(channel_id = %row.id, reason = %why, "channel message not delivered to the agent");
            self.settle(msg_id, ChannelMessageStatus::Failed, None, Some(&why))
                .await;
        };
        match outcome {
            Ok(ProxyOutcome::Answered { status, body, .. }) => {
                let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let text = if status >= 300 {
                    format!("Error: agent returned HTTP {status}")
                } else {
                    reply_text(&parsed)
                };
                self.answered(&row, &config, msg_id, &to, &text).await;
            }
            Ok(ProxyOutcome::Queued(q)) => {
                tracing::info!(channel_id = %row.id, queue_id = %q.queue_id, "agent busy: the chat message waits in its queue; its answer is sent when delivered");
                self.settle(msg_id, ChannelMessageStatus::Queued, None, None).await;
            }
            Ok(ProxyOutcome::Unavailable(u)) => failed(u.error).await,
            Ok(ProxyOutcome::BadGateway(b)) => failed(b.error).await,
            Ok(ProxyOutcome::BudgetExceeded) => failed("the workspace's budget is spent".into()).await,
            Err(e) => failed(e.to_string()).await,
        }
    }

    /// The agent answered: recorded, then sent (an empty answer has nothing to send).
    async fn answered(&self, row: &store::Row, config: &Config, msg_id: Uuid, to: &Destination, text: &str) {
        if text.trim().is_empty() {
            self.settle(msg_id, ChannelMessageStatus::Replied, Some(""), None).await;
            return;
        }
        self.settle(msg_id, ChannelMessageStatus::Answered, Some(text), None)
            .await;
        self.reply(row, config, msg_id, to, text).await;
    }

    /// Takes one outbound message of the channel's budget: false when it is spent (a database
    /// failure lets the message go: the budget fails open, as the original's).
    pub(crate) async fn take_budget(&self, id: Uuid) -> bool {
        async {
            let mut conn = self.pool().get().await?;
            store::take_budget(&mut conn, id).await
        }
        .await
        .unwrap_or(true)
    }

    /// Sends a reply (budget-checked) and records how it went.
    async fn reply(&self, row: &store::Row, config: &Config, msg_id: Uuid, to: &Destination, text: &str) {
        let within = self.take_budget(row.id).await;
        if !within {
            self.settle(
                msg_id,
                ChannelMessageStatus::Failed,
                None,
                Some("channel budget exceeded"),
            )
            .await;
            return;
        }
        match self.send_to(row, config, to, text).await {
            Ok(()) => {
                self.settle(msg_id, ChannelMessageStatus::Replied, Some(text), None)
                    .await
            }
            Err(e) => {
                tracing::warn!(channel_id = %row.id, error = %e, "channel reply not sent");
                self.settle(msg_id, ChannelMessageStatus::Failed, Some(text), Some(&e.to_string()))
                    .await;
            }
        }
    }

    async fn settle(&self, msg_id: Uuid, status: ChannelMessageStatus, reply: Option<&str>, error: Option<&str>) {
        let done = async {
            let mut conn = self.pool().get().await?;
            store::set_status(&mut conn, msg_id, status, reply, error).await
        }
        .await;
        if let Err(e) = done {
            tracing::warn!(message_id = %msg_id, status = status.as_str(), error = %e.chain(), "channel message status not recorded");
        }
    }

    /// A message the A2A queue delivered later: if it came from a chat, its answer goes there.
    pub async fn on_queue_answer(&self, answer: QueueAnswer) {
        let Some(message_id) = answer.message_id.filter(|m| m.starts_with("channel-")) else {
            return;
        };
        let found = async {
            let mut conn = self.pool().get().await?;
            let Some(p) = store::by_a2a_id(&mut conn, &message_id).await? else {
                return Ok(None);
            };
            let row = store::by_id(&mut conn, p.channel_id).await?;
            Ok::<_, ServiceError>(row.map(|r| (p, r)))
        }
        .await;
        let (pending, row) = match found {
            Ok(Some(found)) => found,
            Ok(None) => return,
            Err(e) => {
                return tracing::warn!(message_id, error = %e.chain(), "a queued chat message's answer could not be routed");
            }
        };
        if pending.status().map(ChannelMessageStatus::is_final).unwrap_or(true) {
            return;
        }
        let config = match self.open(&row) {
            Ok(c) => c,
            Err(e) => {
                return tracing::warn!(channel_id = %row.id, error = %e.chain(), "a queued answer's channel does not open");
            }
        };
        let parsed: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        let text = if answer.status >= 300 {
            format!("Error: agent returned HTTP {}", answer.status)
        } else {
            reply_text(&parsed)
        };
        let to = Destination {
            chat_id: pending.chat_id.clone(),
            reply_context: pending.reply_context.clone(),
        };
        self.answered(&row, &config, pending.id, &to, &text).await;
    }

    /// One pass of the channels' sweep: replies a stopped replica left unsent are sent,
    /// messages nothing will answer are failed, old ones deleted. A summary for the loop's
    /// stats.
    pub async fn sweep(&self) -> Result<Value> {
        let unsent = {
            let mut conn = self.pool().get().await?;
            store::unsent(&mut conn, UNSENT_AFTER_SECONDS, 100).await?
        };
        let mut resent = 0;
        for p in unsent {
            let row = {
                let mut conn = self.pool().get().await?;
                store::by_id(&mut conn, p.channel_id).await?
            };
            let Some(row) = row else { continue };
            let Ok(config) = self.open(&row) else { continue };
            let to = Destination {
                chat_id: p.chat_id.clone(),
                reply_context: p.reply_context.clone(),
            };
            self.reply(&row, &config, p.id, &to, p.reply.as_deref().unwrap_or_default())
                .await;
            resent += 1;
        }
        let mut conn = self.pool().get().await?;
        let stale = store::fail_stale_queued(&mut conn, STALE_HOURS).await?;
        let purged = store::purge(&mut conn, KEEP_DAYS).await?;
        Ok(json!({ "resent": resent, "stale": stale, "purged": purged }))
    }
}

/// What taking a message in came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Taken {
    Accepted,
    Duplicate,
    Dropped,
}

fn acknowledge(t: Taken, ack: Option<Value>) -> InboundOutcome {
    match (t, ack) {
        // Discord's deferred response must answer every command, even a duplicate.
        (_, Some(v)) if v.get("type").is_some() => InboundOutcome::Answer(v),
        (Taken::Accepted, Some(v)) => InboundOutcome::Answer(v),
        (Taken::Accepted, None) => InboundOutcome::Empty,
        (Taken::Duplicate, _) => InboundOutcome::Answer(json!({ "status": "duplicate" })),
        (Taken::Dropped, _) => InboundOutcome::Answer(json!({ "status": "dropped" })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_follow_the_original_rule() {
        assert_eq!(slug("[Backend] fix it"), Some(("backend".into(), "fix it".into())));
        assert_eq!(slug("[backend]"), Some(("backend".into(), "[backend]".into())));
        assert_eq!(slug("[] y"), None);
        assert_eq!(slug("[a!b] y"), None);
        assert_eq!(slug("plain"), None);
    }

    #[test]
    fn the_reply_is_the_first_text_part() {
        assert_eq!(
            reply_text(&json!({"result": {"kind": "message", "parts": [{"kind": "text", "text": "hi"}]}})),
            "hi"
        );
        assert_eq!(
            reply_text(&json!({"result": {"artifacts": [{"parts": [{"text": "art"}]}]}})),
            "art"
        );
        assert_eq!(
            reply_text(&json!({"result": {"message": {"parts": [{"text": "v1"}]}}})),
            "v1"
        );
        assert_eq!(reply_text(&json!({"error": {"code": 1}})), "");
    }
}
