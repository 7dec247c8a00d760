//! `lark`: the Lark / Feishu adapter (Event Subscription in, custom-bot webhook out).
//!
//! Owns: the schema (`webhook_url`, `verify_token`, `encrypt_key`, `chat_id`, `username`),
//! the check of every event (the verification token, and with an encrypt key the
//! `X-Lark-Signature` and the AES-256-CBC envelope `{"encrypt": …}`: key SHA-256 of the
//! encrypt key, the IV the first 16 bytes), `url_verification` answered with its challenge,
//! `im.message.receive_v1` text messages, and the webhook post `{"msg_type":"text"}` (a 200
//! whose `code` is not 0 is a failure).
//!
//! Must not know: the database, the A2A proxy.

use aes::cipher::{BlockDecryptMut, KeyIvInit, block_padding::Pkcs7};
use base64::Engine;
use molecule_domain::ChannelType;
use serde_json::{Map, Value, json};

use crate::adapter::{
    Adapter, Config, Destination, Field, FieldKind, Inbound, Message, Parsed, SendError, USERNAME, field,
};
use crate::vendor::Vendors;
use crate::verify::{self, Rejected};

pub struct Lark;

const VENDOR: &str = "lark";
const WEBHOOK_PREFIXES: [&str; 2] = [
    "https://open.feishu.cn/open-apis/bot/v2/hook/",
    "https://open.larksuite.com/open-apis/bot/v2/hook/",
];

static SCHEMA: [Field; 5] = [
    Field {
        key: "webhook_url",
        label: "Webhook URL",
        kind: FieldKind::Password,
        required: true,
        sensitive: true,
        placeholder: Some("https://open.feishu.cn/open-apis/bot/v2/hook/..."),
        help: None,
    },
    Field {
        key: "verify_token",
        label: "Verification Token",
        kind: FieldKind::Password,
        required: false,
        sensitive: true,
        placeholder: None,
        help: Some("From the app's Event Subscriptions page; every event is checked with it."),
    },
    Field {
        key: "encrypt_key",
        label: "Encrypt Key",
        kind: FieldKind::Password,
        required: false,
        sensitive: true,
        placeholder: None,
        help: Some("When the app encrypts its events: they are opened and their signature checked with it."),
    },
    Field {
        key: "chat_id",
        label: "Chat ID",
        kind: FieldKind::Text,
        required: false,
        sensitive: false,
        placeholder: Some("oc_..."),
        help: Some("For [name] routing when several workspaces share one app."),
    },
    USERNAME,
];

type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;

/// The event, opened: a body `{"encrypt": …}` is decrypted with the row's encrypt key.
fn open(config: &Config, body: &[u8]) -> Result<Value, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not an event body: {e}"))?;
    let Some(sealed) = v.get("encrypt").and_then(Value::as_str) else {
        return Ok(v);
    };
    let key = field(config, "encrypt_key").ok_or("an encrypted event, but the channel has no encrypt_key")?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(sealed)
        .map_err(|_| "the encrypted event is not base64".to_owned())?;
    if raw.len() < 32 || raw.len() % 16 != 0 {
        return Err("the encrypted event has the wrong length".into());
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    let (iv, ct) = raw.split_at(16);
    let plain = Aes256CbcDec::new_from_slices(digest.as_ref(), iv)
        .map_err(|_| "the encrypt key does not fit".to_owned())?
        .decrypt_padded_vec_mut::<Pkcs7>(ct)
        .map_err(|_| "the encrypted event does not open with this encrypt key".to_owned())?;
    serde_json::from_slice(&plain).map_err(|e| format!("the decrypted event is not JSON: {e}"))
}

#[async_trait::async_trait]
impl Adapter for Lark {
    fn kind(&self) -> ChannelType {
        ChannelType::Lark
    }

    fn display_name(&self) -> &'static str {
        "Lark / Feishu"
    }

    fn schema(&self) -> &'static [Field] {
        &SCHEMA
    }

    fn validate(&self, config: &Config) -> Result<(), String> {
        let url = field(config, "webhook_url").ok_or("missing required field: webhook_url")?;
        if !WEBHOOK_PREFIXES.iter().any(|p| url.starts_with(p)) {
            return Err(format!(
                "invalid Lark webhook URL (must start with {} or {})",
                WEBHOOK_PREFIXES[0], WEBHOOK_PREFIXES[1]
            ));
        }
        Ok(())
    }

    fn verify(&self, config: &Config, inbound: Inbound<'_>, _fallback: Option<&str>) -> Result<(), Rejected> {
        // Without a verification token nothing proves an event is Lark's for this row.
        let token = field(config, "verify_token").ok_or(Rejected::Mismatch)?;
        if let Some(key) = field(config, "encrypt_key") {
            verify::fresh(
                "X-Lark-Request-Timestamp",
                inbound.headers.get("X-Lark-Request-Timestamp"),
                inbound.now_unix,
            )?;
            verify::lark_signature(
                key,
                inbound.headers.get("X-Lark-Request-Timestamp"),
                inbound.headers.get("X-Lark-Request-Nonce"),
                inbound.headers.get("X-Lark-Signature"),
                inbound.body,
            )?;
        }
        let v = open(config, inbound.body).map_err(|_| Rejected::Malformed("event body"))?;
        let got = v
            .pointer("/header/token")
            .or_else(|| v.get("token"))
            .and_then(Value::as_str);
        verify::lark_token(token, got)
    }

    fn parse(&self, config: &Config, inbound: Inbound<'_>) -> Result<Parsed, String> {
        let v = open(config, inbound.body)?;
        if v.get("type").and_then(Value::as_str) == Some("url_verification") {
            let challenge = v.get("challenge").cloned().unwrap_or(Value::Null);
            return Ok(Parsed::Handshake(json!({ "challenge": challenge })));
        }
        if v.pointer("/header/event_type").and_then(Value::as_str) != Some("im.message.receive_v1") {
            return Ok(Parsed::Ignored("not a message event"));
        }
        let msg = v.pointer("/event/message").cloned().unwrap_or(Value::Null);
        if msg.get("message_type").and_then(Value::as_str) != Some("text") {
            return Ok(Parsed::Ignored("not a text message"));
        }
        let content: Value = msg
            .get("content")
            .and_then(Value::as_str)
            .and_then(|c| serde_json::from_str(c).ok())
            .unwrap_or(Value::Null);
        let Some(text) = content.get("text").and_then(Value::as_str).filter(|t| !t.is_empty()) else {
            return Ok(Parsed::Ignored("a message without text"));
        };
        let sender = v.pointer("/event/sender/sender_id").cloned().unwrap_or(Value::Null);
        let user = sender
            .get("user_id")
            .or_else(|| sender.get("open_id"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let s = |x: &Value, p: &str| x.pointer(p).and_then(Value::as_str).unwrap_or_default().to_owned();
        let mut metadata = Map::new();
        metadata.insert("platform".into(), json!("lark"));
        metadata.insert("chat_type".into(), msg.get("chat_type").cloned().unwrap_or(Value::Null));
        Ok(Parsed::Message {
            message: Box::new(Message {
                external_id: s(&v, "/header/event_id"),
                chat_id: s(&msg, "/chat_id"),
                user_id: user.clone(),
                username: user,
                text: text.to_owned(),
                metadata,
                reply_context: Value::Null,
            }),
            ack: Some(json!({ "status": "accepted" })),
        })
    }

    async fn send(&self, vendors: &Vendors, config: &Config, _to: &Destination, text: &str) -> Result<(), SendError> {
        let url = field(config, "webhook_url")
            .ok_or_else(|| SendError::NotConfigured("the channel has no webhook_url".into()))?;
        let resp = vendors
            .http
            .post(vendors.lark_webhook(url))
            .json(&json!({ "msg_type": "text", "content": { "text": text } }))
            .send()
            .await
            .map_err(|e| SendError::transport(VENDOR, e))?;
        let status = resp.status().as_u16();
        let answer: Value = resp.json().await.unwrap_or(Value::Null);
        let code = answer.get("code").and_then(Value::as_i64).unwrap_or(0);
        if status != 200 || code != 0 {
            return Err(SendError::Refused {
                vendor: VENDOR,
                message: format!(
                    "api error status={status} code={code} msg={}",
                    answer.get("msg").and_then(Value::as_str).unwrap_or_default()
                ),
            });
        }
        Ok(())
    }

    fn destinations(&self, _config: &Config) -> Vec<Destination> {
        vec![Destination::default()]
    }
}
