//! `telegram`: the Telegram Bot API adapter, and the Bot API calls the poller and Discover
//! make.
//!
//! Owns: the schema (`bot_token`, `chat_id`, `webhook_secret`, `username`), the token's
//! shape, an Update read as a message (a message or a channel post; a callback query as the
//! original's `CEO_DECISION: <data>`), `sendMessage` in 4096-byte chunks (Markdown first, plain
//! when Telegram refuses the Markdown; one wait on a 429's `retry_after`), `sendChatAction`,
//! and the calls by name: `getMe`, `getUpdates`, `deleteWebhook`, `setWebhook`,
//! `setMyCommands`, `answerCallbackQuery`. Calls are JSON `POST <base>/bot<token>/<method>`;
//! the answer is the Bot API's envelope `{ok, result, error_code, description, parameters}`.
//!
//! Must not know: the database, leases, the A2A proxy.

use std::time::Duration;

use molecule_domain::ChannelType;
use serde_json::{Map, Value, json};

use crate::adapter::{Adapter, Config, Destination, Field, FieldKind, Inbound, Message, Parsed, SendError, USERNAME};
use crate::vendor::Vendors;
use crate::verify::{self, Rejected};

pub struct Telegram;

const VENDOR: &str = "telegram";

static SCHEMA: [Field; 4] = [
    Field {
        key: "bot_token",
        label: "Bot Token",
        kind: FieldKind::Password,
        required: true,
        sensitive: true,
        placeholder: Some("123456789:ABCdefGHIjkl..."),
        help: Some("From @BotFather."),
    },
    Field {
        key: "chat_id",
        label: "Chat IDs",
        kind: FieldKind::Text,
        required: true,
        sensitive: false,
        placeholder: Some("-1001234567890"),
        help: Some("Comma-separated chat ids the bot listens to and posts in (Discover finds them)."),
    },
    Field {
        key: "webhook_secret",
        label: "Webhook secret",
        kind: FieldKind::Password,
        required: false,
        sensitive: true,
        placeholder: None,
        help: Some("Set to receive updates by webhook (setWebhook with this secret_token) instead of polling."),
    },
    USERNAME,
];

/// The updates a poller asks for.
pub const ALLOWED_UPDATES: &[&str] = &["message", "channel_post", "my_chat_member", "callback_query"];

/// A failed Bot API call.
#[derive(Debug, thiserror::Error)]
pub enum TgError {
    /// 401: the token was revoked (or never valid).
    #[error("unauthorized: bot token revoked or invalid")]
    Unauthorized,
    /// 409: another getUpdates or a webhook holds the bot.
    #[error("conflict: {0}")]
    Conflict(String),
    /// 429, with how long Telegram asks to wait.
    #[error("too many requests, retry after {0:?}")]
    RetryAfter(Duration),
    #[error("error {code}: {description}")]
    Api { code: i64, description: String },
    #[error("cannot reach Telegram: {0}")]
    Transport(String, #[source] reqwest::Error),
}

impl TgError {
    fn into_send(self) -> SendError {
        match self {
            Self::Unauthorized => SendError::Unauthorized {
                vendor: VENDOR,
                message: "bot token revoked or invalid".into(),
            },
            Self::Transport(_, e) => SendError::transport(VENDOR, e),
            other => SendError::Refused {
                vendor: VENDOR,
                message: other.to_string(),
            },
        }
    }
}

/// One Bot API call; `timeout` extends the client's for a long poll.
pub async fn call(
    vendors: &Vendors,
    token: &str,
    method: &str,
    params: &Value,
    timeout: Option<Duration>,
) -> Result<Value, TgError> {
    let mut req = vendors.http.post(vendors.telegram(token, method)).json(params);
    if let Some(t) = timeout {
        req = req.timeout(t);
    }
    let resp = req.send().await.map_err(|e| {
        let e = e.without_url();
        TgError::Transport(
            if e.is_timeout() {
                "timed out".into()
            } else {
                e.to_string()
            },
            e,
        )
    })?;
    let status = resp.status().as_u16();
    let envelope: Value = resp.json().await.map_err(|e| {
        let e = e.without_url();
        TgError::Transport(e.to_string(), e)
    })?;
    if envelope.get("ok").and_then(Value::as_bool) == Some(true) {
        return Ok(envelope.get("result").cloned().unwrap_or(Value::Null));
    }
    let code = envelope
        .get("error_code")
        .and_then(Value::as_i64)
        .unwrap_or(i64::from(status));
    let description = envelope
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or("no description")
        .to_owned();
    Err(match code {
        401 => TgError::Unauthorized,
        409 => TgError::Conflict(description),
        429 => TgError::RetryAfter(Duration::from_secs(
            envelope
                .pointer("/parameters/retry_after")
                .and_then(Value::as_u64)
                .unwrap_or(1)
                .min(60),
        )),
        _ => TgError::Api { code, description },
    })
}

/// `getUpdates` from `offset`, waiting up to `wait` for one.
pub async fn get_updates(vendors: &Vendors, token: &str, offset: i64, wait: Duration) -> Result<Vec<Value>, TgError> {
    let result = call(
        vendors,
        token,
        "getUpdates",
        &json!({ "offset": offset, "limit": 100, "timeout": wait.as_secs(), "allowed_updates": ALLOWED_UPDATES }),
        Some(wait + Duration::from_secs(10)),
    )
    .await?;
    Ok(result.as_array().cloned().unwrap_or_default())
}

/// A Telegram chat id as the Bot API takes it: a number where it is one.
fn chat(chat_id: &str) -> Value {
    chat_id.parse::<i64>().map_or_else(|_| json!(chat_id), |n| json!(n))
}

async fn send_chunk(vendors: &Vendors, token: &str, chat_id: &str, text: &str) -> Result<(), TgError> {
    let markdown =
        json!({ "chat_id": chat(chat_id), "text": text, "parse_mode": "Markdown", "disable_web_page_preview": true });
    let plain = json!({ "chat_id": chat(chat_id), "text": text, "disable_web_page_preview": true });
    match call(vendors, token, "sendMessage", &markdown, None).await {
        Ok(_) => Ok(()),
        Err(TgError::RetryAfter(wait)) => {
            tokio::time::sleep(wait).await;
            call(vendors, token, "sendMessage", &plain, None).await.map(|_| ())
        }
        // Telegram refuses Markdown it cannot parse (400): the text goes as it is.
        Err(TgError::Api { code: 400, .. }) => call(vendors, token, "sendMessage", &plain, None).await.map(|_| ()),
        Err(e) => Err(e),
    }
}

/// The message of an Update: a message or channel post with text, or a callback query (a
/// button press) as `CEO_DECISION: <data>`. `None` for anything else.
pub fn message_of(update: &Value) -> Option<Message> {
    let update_id = update.get("update_id").and_then(Value::as_i64)?;
    if let Some(cb) = update.get("callback_query") {
        let data = cb.get("data").and_then(Value::as_str).unwrap_or_default();
        let from = cb.get("from").cloned().unwrap_or(Value::Null);
        // An inline-mode callback has no message (the original crashed on it): its chat is
        // the presser's own.
        let chat_id = cb.pointer("/message/chat/id").or_else(|| from.get("id")).map(id_text)?;
        let mut metadata = Map::new();
        metadata.insert("callback_data".into(), json!(data));
        metadata.insert(
            "decision".into(),
            json!(if data.starts_with("reject") {
                "rejected"
            } else {
                "approved"
            }),
        );
        return Some(Message {
            external_id: update_id.to_string(),
            chat_id,
            user_id: from.get("id").map(id_text).unwrap_or_default(),
            username: name_of(&from),
            text: format!("CEO_DECISION: {data}"),
            metadata,
            reply_context: json!({ "callback_query_id": cb.get("id") }),
        });
    }
    let (m, is_channel) = match (update.get("message"), update.get("channel_post")) {
        (Some(m), _) => (m, false),
        (None, Some(m)) => (m, true),
        _ => return None,
    };
    let text = m.get("text").and_then(Value::as_str)?.to_owned();
    let chat_v = m.get("chat")?;
    let chat_id = chat_v.get("id").map(id_text)?;
    let from = m.get("from").cloned().unwrap_or(Value::Null);
    let username = if is_channel {
        chat_v
            .get("title")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    } else {
        name_of(&from)
    };
    let mut metadata = Map::new();
    metadata.insert("chat_type".into(), chat_v.get("type").cloned().unwrap_or(Value::Null));
    metadata.insert(
        "first_name".into(),
        from.get("first_name").cloned().unwrap_or(Value::Null),
    );
    metadata.insert(
        "last_name".into(),
        from.get("last_name").cloned().unwrap_or(Value::Null),
    );
    Some(Message {
        external_id: update_id.to_string(),
        chat_id,
        user_id: from.get("id").map(id_text).unwrap_or_default(),
        username,
        text,
        metadata,
        reply_context: Value::Null,
    })
}

fn id_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn name_of(user: &Value) -> String {
    user.get("username")
        .or_else(|| user.get("first_name"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// A bot command (`/start`, `/help@mybot`): its name without the bot's suffix.
pub fn command(text: &str) -> Option<&str> {
    let first = text.split_whitespace().next()?;
    let name = first.strip_prefix('/')?;
    Some(name.split('@').next().unwrap_or(name))
}

pub const HELP: &str = "Send a message and the agent answers here.\n/start: connect this chat\n/help: this text\n/reset: clear the conversation history\n/cancel: ask to cancel the current request";

#[async_trait::async_trait]
impl Adapter for Telegram {
    fn kind(&self) -> ChannelType {
        ChannelType::Telegram
    }

    fn display_name(&self) -> &'static str {
        "Telegram"
    }

    fn schema(&self) -> &'static [Field] {
        &SCHEMA
    }

    fn validate(&self, config: &Config) -> Result<(), String> {
        let token = config.get("bot_token").map(|t| t.trim()).unwrap_or_default();
        let (id, rest) = token.split_once(':').unwrap_or(("", ""));
        let well_formed = !id.is_empty()
            && id.bytes().all(|b| b.is_ascii_digit())
            && rest.len() >= 30
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !well_formed {
            return Err("bot_token format invalid (expected like '123456789:ABCdefGHIjkl...')".into());
        }
        // The original accepted an empty list and then listened to every chat.
        if crate::adapter::list(config.get("chat_id")).is_empty() {
            return Err("chat_id must name at least one chat (Discover lists the bot's chats)".into());
        }
        Ok(())
    }

    fn verify(&self, config: &Config, inbound: Inbound<'_>, _fallback: Option<&str>) -> Result<(), Rejected> {
        // Only a row in webhook mode takes webhooks; a polling row has nothing to check
        // them against.
        let secret = crate::adapter::field(config, "webhook_secret").ok_or(Rejected::Mismatch)?;
        verify::telegram(secret, inbound.headers.get("X-Telegram-Bot-Api-Secret-Token"))
    }

    fn parse(&self, _config: &Config, inbound: Inbound<'_>) -> Result<Parsed, String> {
        let update: Value = serde_json::from_slice(inbound.body).map_err(|e| format!("not a JSON Update: {e}"))?;
        Ok(match message_of(&update) {
            Some(message) => Parsed::Message {
                message: Box::new(message),
                ack: Some(json!({ "status": "accepted" })),
            },
            None => Parsed::Ignored("not a text message"),
        })
    }

    async fn send(&self, vendors: &Vendors, config: &Config, to: &Destination, text: &str) -> Result<(), SendError> {
        let token = crate::adapter::field(config, "bot_token")
            .ok_or_else(|| SendError::NotConfigured("the channel has no bot_token".into()))?;
        for part in crate::chunk::telegram(text) {
            send_chunk(vendors, token, &to.chat_id, &part)
                .await
                .map_err(TgError::into_send)?;
        }
        Ok(())
    }

    async fn typing(&self, vendors: &Vendors, config: &Config, to: &Destination) {
        if let Some(token) = crate::adapter::field(config, "bot_token") {
            let params = json!({ "chat_id": chat(&to.chat_id), "action": "typing" });
            if let Err(e) = call(vendors, token, "sendChatAction", &params, None).await {
                tracing::debug!(error = %e, "telegram typing indicator not shown");
            }
        }
    }

    fn destinations(&self, config: &Config) -> Vec<Destination> {
        crate::adapter::list(config.get("chat_id"))
            .into_iter()
            .map(|chat_id| Destination {
                chat_id,
                reply_context: Value::Null,
            })
            .collect()
    }

    fn polls(&self, config: &Config) -> bool {
        crate::adapter::field(config, "webhook_secret").is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_reads_as_the_original_did() {
        let m = message_of(&json!({"update_id": 7, "message": {"message_id": 1, "text": "hi",
            "chat": {"id": -100, "type": "group"}, "from": {"id": 42, "first_name": "Ada"}}}))
        .unwrap();
        assert_eq!((m.external_id.as_str(), m.chat_id.as_str()), ("7", "-100"));
        assert_eq!((m.user_id.as_str(), m.username.as_str()), ("42", "Ada"));
        let post = message_of(&json!({"update_id": 8, "channel_post": {"text": "news",
            "chat": {"id": -5, "type": "channel", "title": "Ops"}}}))
        .unwrap();
        assert_eq!(post.username, "Ops");
        let inline = message_of(
            &json!({"update_id": 9, "callback_query": {"id": "c", "data": "reject:1",
            "from": {"id": 3, "username": "boss"}}}),
        )
        .unwrap();
        assert_eq!(inline.text, "CEO_DECISION: reject:1");
        assert_eq!(inline.chat_id, "3");
        assert!(message_of(&json!({"update_id": 10, "my_chat_member": {}})).is_none());
        assert_eq!(command("/help@mybot please"), Some("help"));
        assert_eq!(command("hello"), None);
    }

    #[test]
    fn a_config_needs_a_token_of_the_right_shape_and_a_chat() {
        let ok: Config = [
            ("bot_token", "123:abcdefghijabcdefghijabcdefghij_-"),
            ("chat_id", "1, 2"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert!(Telegram.validate(&ok).is_ok());
        let mut bad = ok.clone();
        bad.insert("bot_token".into(), "nope".into());
        assert!(
            Telegram
                .validate(&bad)
                .unwrap_err()
                .contains("bot_token format invalid")
        );
        let mut none = ok;
        none.insert("chat_id".into(), " , ".into());
        assert!(Telegram.validate(&none).unwrap_err().contains("chat_id"));
    }
}
