//! `discord`: the Discord adapter (Interactions in, webhooks out).
//!
//! Owns: the schema (`webhook_url`, `public_key`, `chat_id`, `username`), the Ed25519 check
//! with the row's public key (else `DISCORD_APP_PUBLIC_KEY`), PING answered `{"type":1}`, a
//! command (types 2 and 3) read as `/<name> <option values>` and acknowledged with a deferred
//! interaction response (`{"type":5}`: "thinking…"), its answer posted as the interaction's
//! follow-up (`POST /webhooks/<application_id>/<token>`), and other posts through the
//! channel's webhook, in 2000-byte chunks.
//!
//! Must not know: the database, the A2A proxy.

use molecule_domain::ChannelType;
use serde_json::{Map, Value, json};

use crate::adapter::{
    Adapter, Config, Destination, Field, FieldKind, Inbound, Message, Parsed, SendError, USERNAME, field,
};
use crate::vendor::Vendors;
use crate::verify::{self, Rejected};

pub struct Discord;

const VENDOR: &str = "discord";
const WEBHOOK_PREFIX: &str = "https://discord.com/api/webhooks/";

static SCHEMA: [Field; 4] = [
    Field {
        key: "webhook_url",
        label: "Webhook URL",
        kind: FieldKind::Password,
        required: true,
        sensitive: true,
        placeholder: Some("https://discord.com/api/webhooks/..."),
        help: None,
    },
    Field {
        key: "public_key",
        label: "Application public key",
        kind: FieldKind::Text,
        required: false,
        sensitive: false,
        placeholder: Some("64 hex characters"),
        help: Some("From the application's General Information page; every interaction is checked with it."),
    },
    Field {
        key: "chat_id",
        label: "Channel ID",
        kind: FieldKind::Text,
        required: false,
        sensitive: false,
        placeholder: None,
        help: Some("For [name] routing when several workspaces share one application."),
    },
    USERNAME,
];

async fn post(vendors: &Vendors, url: String, text: &str) -> Result<(), SendError> {
    for part in crate::chunk::discord(text) {
        let resp = crate::vendor::send_respecting_429(vendors.http.post(url.clone()).json(&json!({ "content": part })))
            .await
            .map_err(|e| SendError::transport(VENDOR, e))?;
        let status = resp.status().as_u16();
        if status != 200 && status != 204 {
            let said: Value = resp.json().await.unwrap_or(Value::Null);
            let message = said
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("no message")
                .to_owned();
            return Err(if status == 401 || status == 404 {
                SendError::Unauthorized {
                    vendor: VENDOR,
                    message: format!("{status}: {message}"),
                }
            } else {
                SendError::Refused {
                    vendor: VENDOR,
                    message: format!("{status}: {message}"),
                }
            });
        }
    }
    Ok(())
}

#[async_trait::async_trait]
impl Adapter for Discord {
    fn kind(&self) -> ChannelType {
        ChannelType::Discord
    }

    fn display_name(&self) -> &'static str {
        "Discord"
    }

    fn schema(&self) -> &'static [Field] {
        &SCHEMA
    }

    fn validate(&self, config: &Config) -> Result<(), String> {
        let url = field(config, "webhook_url").ok_or("missing required field: webhook_url")?;
        if !url.starts_with(WEBHOOK_PREFIX) {
            return Err(format!(
                "invalid Discord webhook URL (must start with {WEBHOOK_PREFIX})"
            ));
        }
        if let Some(key) = field(config, "public_key")
            && (key.len() != 64 || hex::decode(key).is_err())
        {
            return Err("public_key must be the application's Ed25519 public key: 64 hex characters".into());
        }
        Ok(())
    }

    fn verify(&self, config: &Config, inbound: Inbound<'_>, fallback: Option<&str>) -> Result<(), Rejected> {
        let key = field(config, "public_key")
            .or(fallback.filter(|k| !k.trim().is_empty()))
            .ok_or(Rejected::Mismatch)?;
        verify::fresh(
            "X-Signature-Timestamp",
            inbound.headers.get("X-Signature-Timestamp"),
            inbound.now_unix,
        )?;
        verify::discord(
            key,
            inbound.headers.get("X-Signature-Timestamp"),
            inbound.headers.get("X-Signature-Ed25519"),
            inbound.body,
        )
    }

    fn parse(&self, _config: &Config, inbound: Inbound<'_>) -> Result<Parsed, String> {
        let v: Value = serde_json::from_slice(inbound.body).map_err(|e| format!("not an interaction: {e}"))?;
        match v.get("type").and_then(Value::as_i64) {
            Some(1) => Ok(Parsed::Handshake(json!({ "type": 1 }))),
            Some(2 | 3) => {
                let data = v.get("data").cloned().unwrap_or(Value::Null);
                let mut text = format!("/{}", data.get("name").and_then(Value::as_str).unwrap_or_default());
                for o in data.get("options").and_then(Value::as_array).into_iter().flatten() {
                    match o.get("value") {
                        Some(Value::String(s)) => text.push_str(&format!(" {s}")),
                        Some(other) => text.push_str(&format!(" {other}")),
                        None => {}
                    }
                }
                let user = v
                    .pointer("/member/user")
                    .or_else(|| v.get("user"))
                    .cloned()
                    .unwrap_or(Value::Null);
                let s = |x: &Value, k: &str| x.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
                let mut metadata = Map::new();
                metadata.insert("platform".into(), json!("discord"));
                Ok(Parsed::Message {
                    message: Box::new(Message {
                        external_id: s(&v, "id"),
                        chat_id: s(&v, "channel_id"),
                        user_id: s(&user, "id"),
                        username: s(&user, "username"),
                        text,
                        metadata,
                        reply_context: json!({ "application_id": v.get("application_id"), "token": v.get("token") }),
                    }),
                    // A deferred channel message: Discord shows "thinking…" until the
                    // follow-up carries the answer.
                    ack: Some(json!({ "type": 5 })),
                })
            }
            _ => Ok(Parsed::Ignored("not a command interaction")),
        }
    }

    async fn send(&self, vendors: &Vendors, config: &Config, to: &Destination, text: &str) -> Result<(), SendError> {
        let app = to.reply_context.get("application_id").and_then(Value::as_str);
        let token = to.reply_context.get("token").and_then(Value::as_str);
        if let (Some(app), Some(token)) = (app, token) {
            return post(vendors, vendors.discord_api(&format!("webhooks/{app}/{token}")), text).await;
        }
        let url = field(config, "webhook_url")
            .ok_or_else(|| SendError::NotConfigured("the channel has no webhook_url".into()))?;
        post(vendors, vendors.discord_webhook(url), text).await
    }

    fn destinations(&self, _config: &Config) -> Vec<Destination> {
        vec![Destination::default()]
    }
}
