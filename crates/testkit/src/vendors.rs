//! Local fakes of the chat vendors' APIs (Telegram Bot API, Slack Web API and Incoming
//! Webhooks, Discord webhooks and interaction follow-ups, Lark/Feishu custom-bot webhooks), on
//! one loopback server, written from each vendor's public documentation; and the vendors' own
//! way of signing what they send to an app (Slack's signing secret v0, Discord's Ed25519,
//! Lark's encrypt key, GitHub's `X-Hub-Signature-256`), for tests to send inbound requests
//! exactly as the vendor would. Nothing here is the platform's code.
//!
//! Point the server at it with `TELEGRAM_API_BASE`, `SLACK_API_BASE`, `DISCORD_API_BASE` and
//! `LARK_API_BASE` set to [`Vendors::url`]. Every call is recorded ([`Vendors::calls`]).

// Test tooling: a key or cipher that cannot be made is a broken test host, and the test
// should stop there.
#![allow(clippy::expect_used)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use ring::signature::KeyPair;
use serde_json::{Value, json};

/// One call the fake received.
#[derive(Debug, Clone)]
pub struct Call {
    /// `telegram`, `slack`, `discord` or `lark`.
    pub vendor: &'static str,
    /// The Bot API method, or the path.
    pub what: String,
    pub body: Value,
    /// `Authorization`, when sent.
    pub auth: Option<String>,
}

#[derive(Default)]
struct Bot {
    updates: Vec<Value>,
    next_id: i64,
    revoked: bool,
    /// getUpdates in flight now, and the most ever at once.
    polling: usize,
    max_polling: usize,
    webhook: Option<Value>,
}

#[derive(Default)]
struct State {
    bots: HashMap<String, Bot>,
    slack_tokens: Vec<String>,
    slack_history: Vec<Value>,
    calls: Vec<Call>,
    /// Requests to refuse with 429 (`Retry-After: 1`) next, by vendor.
    limited: HashMap<&'static str, usize>,
    /// 429s answered so far, by vendor.
    limited_answered: HashMap<&'static str, usize>,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes long polls when an update arrives.
    wake: tokio::sync::Notify,
}

/// The fake vendors; they stop when the test process ends.
#[derive(Clone)]
pub struct Vendors {
    pub url: String,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Vendors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vendors").field("url", &self.url).finish()
    }
}

/// Decrements a bot's in-flight poll count however the poll ends.
struct Polling(Arc<Shared>, String);

impl Drop for Polling {
    fn drop(&mut self) {
        if let Ok(mut s) = self.0.state.lock()
            && let Some(b) = s.bots.get_mut(&self.1)
        {
            b.polling = b.polling.saturating_sub(1);
        }
    }
}

impl Vendors {
    pub fn start() -> Result<Self, crate::Error> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let url = format!("http://{}", listener.local_addr()?);
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: tokio::sync::Notify::new(),
        });
        crate::serve_http(listener, 2, shared.clone(), serve)?;
        Ok(Self { url, shared })
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut s = self
            .shared
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut s)
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.with(|s| s.calls.clone())
    }

    /// The calls to one vendor's method or path (a suffix of it).
    pub fn calls_to(&self, vendor: &str, what: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.vendor == vendor && c.what.ends_with(what))
            .collect()
    }

    /// The vendor's next `n` sends are refused with 429 and `Retry-After: 1` (Slack's Web API
    /// and webhooks, Discord's webhooks), as their rate limits answer.
    pub fn rate_limit_next(&self, vendor: &'static str, n: usize) {
        self.with(|s| {
            s.limited.insert(vendor, n);
        });
    }

    /// How many 429s the vendor has answered.
    pub fn rate_limited(&self, vendor: &'static str) -> usize {
        self.with(|s| s.limited_answered.get(vendor).copied().unwrap_or(0))
    }

    // ----- Telegram -----

    /// A bot with this token (`<id>:<secret>`).
    pub fn telegram_bot(&self, token: &str) {
        self.with(|s| {
            s.bots.entry(token.to_owned()).or_insert_with(|| Bot {
                next_id: 1000,
                ..Bot::default()
            });
        });
    }

    /// The token stops working (401 to every call), as when it is revoked in @BotFather.
    pub fn telegram_revoke(&self, token: &str) {
        self.with(|s| {
            if let Some(b) = s.bots.get_mut(token) {
                b.revoked = true;
            }
        });
    }

    /// A text message from a user in a chat, waiting for the bot's next getUpdates: its
    /// update_id.
    pub fn telegram_message(&self, token: &str, chat_id: i64, user_id: i64, text: &str) -> i64 {
        let id = self.with(|s| {
            let b = s.bots.entry(token.to_owned()).or_default();
            b.next_id += 1;
            let id = b.next_id;
            b.updates.push(json!({ "update_id": id, "message": {
                "message_id": id, "date": 0, "text": text,
                "chat": { "id": chat_id, "type": "private", "first_name": "Ada" },
                "from": { "id": user_id, "is_bot": false, "first_name": "Ada", "username": "ada" } } }));
            id
        });
        self.shared.wake.notify_waiters();
        id
    }

    /// Update JSON as Telegram sends it to a webhook (the same update object).
    pub fn telegram_update(update_id: i64, chat_id: i64, user_id: i64, text: &str) -> Value {
        json!({ "update_id": update_id, "message": { "message_id": update_id, "date": 0, "text": text,
            "chat": { "id": chat_id, "type": "private" }, "from": { "id": user_id, "is_bot": false, "first_name": "Ada" } } })
    }

    /// The most getUpdates calls of this bot ever in flight at once; resets the count.
    pub fn telegram_max_polling(&self, token: &str) -> usize {
        self.with(|s| {
            s.bots.get_mut(token).map_or(0, |b| {
                let m = b.max_polling;
                b.max_polling = b.polling;
                m
            })
        })
    }

    /// The bot's webhook registration (`setWebhook`'s parameters), if any.
    pub fn telegram_webhook(&self, token: &str) -> Option<Value> {
        self.with(|s| s.bots.get(token).and_then(|b| b.webhook.clone()))
    }

    /// `(chat_id, text)` of every sendMessage of this bot.
    pub fn telegram_sent(&self, token: &str) -> Vec<(String, String)> {
        self.calls()
            .into_iter()
            .filter(|c| c.vendor == "telegram" && c.what == format!("{token}/sendMessage"))
            .map(|c| {
                let chat = match &c.body["chat_id"] {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (chat, c.body["text"].as_str().unwrap_or_default().to_owned())
            })
            .collect()
    }

    // ----- Slack -----

    /// A bot token `chat.postMessage` accepts.
    pub fn slack_token(&self, token: &str) {
        self.with(|s| s.slack_tokens.push(token.to_owned()));
    }

    /// Messages `conversations.history` answers, newest first.
    pub fn slack_history(&self, messages: Vec<Value>) {
        self.with(|s| s.slack_history = messages);
    }

    /// Slack's signature headers for `body` at `timestamp` (unix seconds): what Slack sends.
    pub fn slack_sign(signing_secret: &str, timestamp: i64, body: &[u8]) -> Vec<(String, String)> {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, signing_secret.as_bytes());
        let mut base = format!("v0:{timestamp}:").into_bytes();
        base.extend_from_slice(body);
        let tag = ring::hmac::sign(&key, &base);
        vec![
            ("X-Slack-Request-Timestamp".into(), timestamp.to_string()),
            ("X-Slack-Signature".into(), format!("v0={}", hex::encode(tag.as_ref()))),
        ]
    }

    /// An Events API `event_callback` with one message event.
    pub fn slack_event(event_id: &str, channel: &str, user: &str, text: &str) -> Value {
        json!({ "token": "unused-verification-token", "team_id": "T1", "api_app_id": "A1", "type": "event_callback",
                "event_id": event_id, "event_time": 0,
                "event": { "type": "message", "channel": channel, "user": user, "text": text, "ts": "1.000001" } })
    }

    // ----- Discord -----

    /// A new application key pair: its public key as Discord shows it (hex), and the signer.
    pub fn discord_key() -> (String, DiscordSigner) {
        let rng = ring::rand::SystemRandom::new();
        // Generation from the system RNG fails only without one; tests may panic.
        let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).expect("an Ed25519 key");
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("the key just made");
        (hex::encode(pair.public_key().as_ref()), DiscordSigner(pair))
    }

    /// An APPLICATION_COMMAND interaction, as Discord posts it to the interactions URL.
    pub fn discord_command(id: &str, channel: &str, user: &str, name: &str, option: &str) -> Value {
        json!({ "id": id, "application_id": "424242", "type": 2, "token": format!("itoken-{id}"),
                "channel_id": channel, "version": 1,
                "member": { "user": { "id": user, "username": "ada" } },
                "data": { "id": "c1", "name": name, "type": 1, "options": [{ "name": "text", "type": 3, "value": option }] } })
    }

    // ----- Lark -----

    /// An `im.message.receive_v1` event (schema 2.0) with this verification token.
    pub fn lark_event(event_id: &str, token: &str, chat: &str, user: &str, text: &str) -> Value {
        json!({ "schema": "2.0",
                "header": { "event_id": event_id, "token": token, "create_time": "0", "event_type": "im.message.receive_v1",
                            "tenant_key": "t", "app_id": "cli_1" },
                "event": { "sender": { "sender_id": { "user_id": user, "open_id": "ou_1" }, "sender_type": "user" },
                           "message": { "message_id": "om_1", "chat_id": chat, "chat_type": "group", "message_type": "text",
                                        "content": json!({ "text": text }).to_string() } } })
    }

    /// An event encrypted with the app's encrypt key (`{"encrypt": …}`: AES-256-CBC, key the
    /// SHA-256 of the encrypt key, a random IV before the ciphertext, base64), and the
    /// signature headers Lark sends with it.
    pub fn lark_encrypt(encrypt_key: &str, event: &Value) -> (Vec<u8>, Vec<(String, String)>) {
        Self::lark_encrypt_at(encrypt_key, event, unix_now())
    }

    /// [`Vendors::lark_encrypt`] stamped at `timestamp` (unix seconds).
    pub fn lark_encrypt_at(encrypt_key: &str, event: &Value, timestamp: i64) -> (Vec<u8>, Vec<(String, String)>) {
        use aes::cipher::{BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
        let key = ring::digest::digest(&ring::digest::SHA256, encrypt_key.as_bytes());
        let mut iv = [0u8; 16];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut iv).expect("random bytes");
        let ct = cbc::Encryptor::<aes::Aes256>::new_from_slices(key.as_ref(), &iv)
            .expect("32-byte key, 16-byte iv")
            .encrypt_padded_vec_mut::<Pkcs7>(event.to_string().as_bytes());
        let mut raw = iv.to_vec();
        raw.extend_from_slice(&ct);
        let body = json!({ "encrypt": base64::engine::general_purpose::STANDARD.encode(raw) })
            .to_string()
            .into_bytes();
        let ts = timestamp.to_string();
        let nonce = "n0nce";
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(ts.as_bytes());
        ctx.update(nonce.as_bytes());
        ctx.update(encrypt_key.as_bytes());
        ctx.update(&body);
        let headers = vec![
            ("X-Lark-Request-Timestamp".into(), ts),
            ("X-Lark-Request-Nonce".into(), nonce.into()),
            ("X-Lark-Signature".into(), hex::encode(ctx.finish().as_ref())),
        ];
        (body, headers)
    }

    // ----- GitHub -----

    /// `X-Hub-Signature-256` of a delivery, as GitHub computes it.
    pub fn github_sign(secret: &str, body: &[u8]) -> String {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
        format!("sha256={}", hex::encode(ring::hmac::sign(&key, body).as_ref()))
    }
}

/// Unix seconds now, as vendors stamp their requests.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Signs interactions as Discord does: Ed25519 over `<timestamp><body>`.
pub struct DiscordSigner(ring::signature::Ed25519KeyPair);

impl std::fmt::Debug for DiscordSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DiscordSigner")
    }
}

impl DiscordSigner {
    pub fn headers(&self, timestamp: &str, body: &[u8]) -> Vec<(String, String)> {
        let mut signed = timestamp.as_bytes().to_vec();
        signed.extend_from_slice(body);
        vec![
            ("X-Signature-Timestamp".into(), timestamp.into()),
            ("X-Signature-Ed25519".into(), hex::encode(self.0.sign(&signed).as_ref())),
        ]
    }
}

fn reply(status: u16, v: &Value) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut resp = Response::new(Full::new(Bytes::from(v.to_string())));
    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

fn empty(status: u16) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    Ok(resp)
}

/// Form (`application/x-www-form-urlencoded`) or JSON parameters, as the Bot API takes both.
fn params(content_type: &str, body: &[u8]) -> Value {
    if content_type.starts_with("application/json") {
        return serde_json::from_slice(body).unwrap_or(Value::Null);
    }
    let text = String::from_utf8_lossy(body);
    let mut m = serde_json::Map::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        m.insert(k.to_owned(), json!(v.replace('+', " ")));
    }
    Value::Object(m)
}

async fn serve(req: Request<Incoming>, shared: Arc<Shared>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or_default().to_owned();
    let header = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (auth, content_type) = (header("authorization"), header("content-type").unwrap_or_default());
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let record = |vendor: &'static str, what: String, body: Value| {
        if let Ok(mut s) = shared.state.lock() {
            s.calls.push(Call {
                vendor,
                what,
                body,
                auth: auth.clone(),
            });
        }
    };
    // Telegram: POST /bot<token>/<method>
    if let Some(rest) = path.strip_prefix("/bot") {
        let Some((token, method)) = rest.rsplit_once('/') else {
            return reply(
                404,
                &json!({ "ok": false, "error_code": 404, "description": "Not Found" }),
            );
        };
        let p = params(&content_type, &body);
        let known = shared
            .state
            .lock()
            .map(|s| s.bots.get(token).map(|b| b.revoked))
            .unwrap_or(None);
        match known {
            None | Some(true) => {
                return reply(
                    401,
                    &json!({ "ok": false, "error_code": 401, "description": "Unauthorized" }),
                );
            }
            Some(false) => {}
        }
        if method != "getUpdates" {
            record("telegram", format!("{token}/{method}"), p.clone());
        }
        let ok = |result: Value| reply(200, &json!({ "ok": true, "result": result }));
        return match method {
            "getMe" => ok(
                json!({ "id": 4242, "is_bot": true, "first_name": "Fake", "username": "fake_bot",
                                  "can_join_groups": true, "can_read_all_group_messages": false }),
            ),
            "deleteWebhook" => {
                if let Ok(mut s) = shared.state.lock()
                    && let Some(b) = s.bots.get_mut(token)
                {
                    b.webhook = None;
                }
                ok(json!(true))
            }
            "setWebhook" => {
                if let Ok(mut s) = shared.state.lock()
                    && let Some(b) = s.bots.get_mut(token)
                {
                    b.webhook = Some(p.clone());
                }
                ok(json!(true))
            }
            "setMyCommands" | "sendChatAction" | "answerCallbackQuery" => ok(json!(true)),
            "sendMessage" => {
                if p.get("text").and_then(Value::as_str).is_none_or(str::is_empty) {
                    return reply(
                        400,
                        &json!({ "ok": false, "error_code": 400, "description": "Bad Request: message text is empty" }),
                    );
                }
                ok(json!({ "message_id": 1, "date": 0, "chat": { "id": p["chat_id"] }, "text": p["text"] }))
            }
            "getUpdates" => {
                let offset = p.get("offset").and_then(Value::as_i64).unwrap_or(0);
                let wait = p.get("timeout").and_then(Value::as_u64).unwrap_or(0).min(50);
                let _guard = {
                    let Ok(mut s) = shared.state.lock() else {
                        return empty(500);
                    };
                    let Some(b) = s.bots.get_mut(token) else {
                        return empty(500);
                    };
                    // One getUpdates per bot at a time, as Telegram enforces.
                    if b.polling > 0 {
                        return reply(
                            409,
                            &json!({ "ok": false, "error_code": 409,
                            "description": "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running" }),
                        );
                    }
                    // An offset confirms every update before it: they are gone.
                    b.updates.retain(|u| u["update_id"].as_i64().unwrap_or(0) >= offset);
                    b.polling += 1;
                    b.max_polling = b.max_polling.max(b.polling);
                    Polling(shared.clone(), token.to_owned())
                };
                let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
                loop {
                    let notified = shared.wake.notified();
                    let ready: Vec<Value> = shared
                        .state
                        .lock()
                        .map(|s| s.bots.get(token).map(|b| b.updates.clone()).unwrap_or_default())
                        .unwrap_or_default();
                    if !ready.is_empty() || tokio::time::Instant::now() >= deadline {
                        return ok(Value::Array(ready.into_iter().take(100).collect()));
                    }
                    let _ = tokio::time::timeout_at(deadline, notified).await;
                }
            }
            _ => reply(
                404,
                &json!({ "ok": false, "error_code": 404, "description": "Not Found: method not found" }),
            ),
        };
    }
    let vendor = if path.starts_with("/api/webhooks/") || path.starts_with("/api/v10/webhooks/") {
        Some("discord")
    } else if path == "/api/chat.postMessage" || path.starts_with("/services/") {
        Some("slack")
    } else {
        None
    };
    if let Some(vendor) = vendor {
        let limited = shared.state.lock().map(|mut s| {
            let left = s.limited.get(vendor).copied().unwrap_or(0);
            if left > 0 {
                s.limited.insert(vendor, left - 1);
                *s.limited_answered.entry(vendor).or_default() += 1;
            }
            left > 0
        });
        if limited.unwrap_or(false) {
            let mut resp = Response::new(Full::new(Bytes::from(
                json!({ "ok": false, "error": "ratelimited", "message": "You are being rate limited.", "retry_after": 1.0 }).to_string(),
            )));
            *resp.status_mut() = hyper::StatusCode::TOO_MANY_REQUESTS;
            resp.headers_mut()
                .insert(hyper::header::RETRY_AFTER, hyper::header::HeaderValue::from_static("1"));
            return Ok(resp);
        }
    }
    // Slack Web API and Incoming Webhooks.
    if path == "/api/chat.postMessage" {
        let p: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let token = auth
            .as_deref()
            .and_then(|a| a.strip_prefix("Bearer "))
            .unwrap_or_default()
            .to_owned();
        let known = shared
            .state
            .lock()
            .map(|s| s.slack_tokens.contains(&token))
            .unwrap_or(false);
        if !known {
            return reply(200, &json!({ "ok": false, "error": "invalid_auth" }));
        }
        if p.get("channel").and_then(Value::as_str).is_none_or(str::is_empty) {
            return reply(200, &json!({ "ok": false, "error": "channel_not_found" }));
        }
        record("slack", path.clone(), p.clone());
        return reply(
            200,
            &json!({ "ok": true, "channel": p["channel"], "ts": "1700000000.000100", "message": { "text": p["text"] } }),
        );
    }
    if path == "/api/conversations.history" {
        record("slack", format!("{path}?{query}"), Value::Null);
        let messages = shared.state.lock().map(|s| s.slack_history.clone()).unwrap_or_default();
        return reply(200, &json!({ "ok": true, "messages": messages, "has_more": false }));
    }
    if path.starts_with("/services/") {
        let p: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if p.get("text").and_then(Value::as_str).is_none_or(str::is_empty) {
            let mut resp = Response::new(Full::new(Bytes::from_static(b"no_text")));
            *resp.status_mut() = hyper::StatusCode::BAD_REQUEST;
            return Ok(resp);
        }
        record("slack", path, p);
        return Ok(Response::new(Full::new(Bytes::from_static(b"ok"))));
    }
    // Discord: webhooks and interaction follow-ups.
    if path.starts_with("/api/webhooks/") || path.starts_with("/api/v10/webhooks/") {
        let p: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if p.get("content").and_then(Value::as_str).is_none_or(str::is_empty) {
            return reply(
                400,
                &json!({ "message": "Cannot send an empty message", "code": 50006 }),
            );
        }
        record("discord", path.clone(), p.clone());
        return if path.starts_with("/api/v10/") {
            reply(200, &json!({ "id": "1", "content": p["content"] }))
        } else {
            empty(204)
        };
    }
    // Lark / Feishu custom bot.
    if path.starts_with("/open-apis/bot/v2/hook/") {
        let p: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if p.get("msg_type").and_then(Value::as_str) != Some("text") {
            return reply(200, &json!({ "code": 9499, "msg": "Bad Request", "data": {} }));
        }
        record("lark", path, p);
        return reply(200, &json!({ "code": 0, "msg": "success", "data": {} }));
    }
    reply(
        404,
        &json!({ "error": "the fake vendors do not serve this path", "path": path }),
    )
}
