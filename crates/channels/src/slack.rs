//! `slack`: the Slack adapter.
//!
//! Owns: the schema (`bot_token`, `channel_id`, `webhook_url`, `signing_secret`, `username`,
//! `icon_emoji`), the signing-secret check (v0, five-minute window), the Events API
//! (`url_verification` answered with its challenge once; `event_callback` message events,
//! bots' own posts ignored) and slash commands (form bodies), `chat.postMessage` in bot mode
//! (Markdown turned into mrkdwn, pipe tables into padded monospace blocks, 3000-byte chunks;
//! `{ok:false}` is a failure) or the Incoming Webhook, a 429 waited out once, and
//! `conversations.history` for the scheduler's ambient context.
//!
//! Must not know: the database, the A2A proxy.

use molecule_domain::ChannelType;
use serde_json::{Map, Value, json};

use crate::adapter::{
    Adapter, Config, Destination, Field, FieldKind, Inbound, Message, Parsed, SendError, USERNAME, field,
};
use crate::vendor::Vendors;
use crate::verify::{self, Rejected};

pub struct Slack;

const VENDOR: &str = "slack";
const WEBHOOK_PREFIX: &str = "https://hooks.slack.com/";

static SCHEMA: [Field; 6] = [
    Field {
        key: "bot_token",
        label: "Bot Token",
        kind: FieldKind::Password,
        required: false,
        sensitive: true,
        placeholder: Some("xoxb-..."),
        help: Some("Bot mode: posts with chat.postMessage (needs channel_id)."),
    },
    Field {
        key: "channel_id",
        label: "Channel ID",
        kind: FieldKind::Text,
        required: false,
        sensitive: false,
        placeholder: Some("C0123456789"),
        help: None,
    },
    Field {
        key: "webhook_url",
        label: "Incoming Webhook URL",
        kind: FieldKind::Password,
        required: false,
        sensitive: true,
        placeholder: Some("https://hooks.slack.com/services/..."),
        help: Some("Webhook mode, when there is no bot token."),
    },
    Field {
        key: "signing_secret",
        label: "Signing Secret",
        kind: FieldKind::Password,
        required: false,
        sensitive: true,
        placeholder: None,
        help: Some("From the app's Basic Information page; every inbound request is checked with it."),
    },
    USERNAME,
    Field {
        key: "icon_emoji",
        label: "Icon emoji",
        kind: FieldKind::Text,
        required: false,
        sensitive: false,
        placeholder: Some(":robot_face:"),
        help: None,
    },
];

/// Slack's cap on an answer read (conversations.history).
const HISTORY_BYTES: usize = 64 * 1024;

/// Markdown as the agents write it, in Slack's mrkdwn: headings and `**bold**` become `*bold*`,
/// `~~x~~` `~x~`, `[t](u)` `<u|t>`, rules a dashed line.
pub fn mrkdwn(text: &str) -> String {
    let mut out = Vec::new();
    let mut table: Vec<Vec<String>> = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('|') && t.len() > 1 {
            let cells: Vec<String> = t.trim_matches('|').split('|').map(|c| c.trim().to_owned()).collect();
            // The header's rule (`|---|:--:|`) only marks the header.
            if !cells
                .iter()
                .all(|c| !c.is_empty() && c.chars().all(|ch| matches!(ch, '-' | ':')))
            {
                table.push(cells);
            }
            continue;
        }
        if !table.is_empty() {
            out.push(monospace(std::mem::take(&mut table)));
        }
        if t.len() >= 3 && ["-", "*", "_"].iter().any(|c| t.chars().all(|x| x.to_string() == *c)) {
            out.push("----------".to_owned());
            continue;
        }
        let hashes = t.chars().take_while(|c| *c == '#').count();
        let line = if (1..=6).contains(&hashes) && t[hashes..].starts_with(' ') {
            format!("*{}*", t[hashes..].trim())
        } else {
            line.to_owned()
        };
        out.push(inline(&line));
    }
    if !table.is_empty() {
        out.push(monospace(table));
    }
    out.join("\n")
}

/// A pipe table as a fenced block with padded columns (Slack has no tables).
fn monospace(rows: Vec<Vec<String>>) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width = |i: usize| {
        rows.iter()
            .filter_map(|r| r.get(i))
            .map(|c| c.chars().count())
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..columns).map(width).collect();
    let lines: Vec<String> = rows
        .iter()
        .map(|r| {
            (0..columns)
                .map(|i| {
                    let cell = r.get(i).map_or("", String::as_str);
                    format!("{cell}{}", " ".repeat(widths[i] - cell.chars().count()))
                })
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_owned()
        })
        .collect();
    format!("```\n{}\n```", lines.join("\n"))
}

fn inline(line: &str) -> String {
    // Links first ([t](u) → <u|t>), then the emphasis pairs.
    let mut s = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let parsed = after.find("](").and_then(|close| {
            let url_part = &after[close + 2..];
            url_part
                .find(')')
                .map(|end| (close, &after[..close], &url_part[..end], end))
        });
        match parsed {
            Some((close, label, url, end)) if !url.contains(' ') => {
                s.push_str(&rest[..open]);
                s.push_str(&format!("<{url}|{label}>"));
                rest = &after[close + 2 + end + 1..];
            }
            _ => {
                s.push_str(&rest[..=open]);
                rest = after;
            }
        }
    }
    s.push_str(rest);
    s.replace("**", "*").replace("~~", "~")
}

/// The last `n` people's messages of a channel, oldest first, as `(name, text)`: the
/// scheduler's ambient context. Bots' posts without a name are left out.
pub async fn recent(vendors: &Vendors, config: &Config, n: usize) -> Result<Vec<(String, String)>, SendError> {
    let (Some(token), Some(channel)) = (field(config, "bot_token"), field(config, "channel_id")) else {
        return Ok(Vec::new());
    };
    let url = reqwest::Url::parse_with_params(
        &vendors.slack_api("conversations.history"),
        &[("channel", channel), ("limit", &(2 * n).to_string())],
    )
    .map_err(|e| SendError::NotConfigured(format!("SLACK_API_BASE is not a URL: {e}")))?;
    let resp = vendors
        .http
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| SendError::transport(VENDOR, e))?;
    let bytes = resp.bytes().await.map_err(|e| SendError::transport(VENDOR, e))?;
    let body: Value = serde_json::from_slice(&bytes[..bytes.len().min(HISTORY_BYTES)]).unwrap_or(Value::Null);
    if body.get("ok").and_then(Value::as_bool) != Some(true) {
        return Err(SendError::Refused {
            vendor: VENDOR,
            message: format!(
                "API error: {}",
                body.get("error").and_then(Value::as_str).unwrap_or("unreadable answer")
            ),
        });
    }
    let mut kept: Vec<(String, String)> = body
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|m| m.get("bot_id").is_none() || m.get("username").is_some())
        .filter_map(|m| {
            let text = m.get("text").and_then(Value::as_str)?;
            let name = m
                .get("username")
                .or_else(|| m.get("user"))
                .and_then(Value::as_str)
                .unwrap_or("someone");
            Some((name.to_owned(), text.chars().take(200).collect()))
        })
        .take(n)
        .collect();
    kept.reverse();
    Ok(kept)
}

#[async_trait::async_trait]
impl Adapter for Slack {
    fn kind(&self) -> ChannelType {
        ChannelType::Slack
    }

    fn display_name(&self) -> &'static str {
        "Slack"
    }

    fn schema(&self) -> &'static [Field] {
        &SCHEMA
    }

    fn validate(&self, config: &Config) -> Result<(), String> {
        let (bot, hook) = (field(config, "bot_token"), field(config, "webhook_url"));
        if bot.is_none() && hook.is_none() {
            return Err("missing required field: bot_token or webhook_url".into());
        }
        if bot.is_some() && field(config, "channel_id").is_none() {
            return Err("bot_token mode requires channel_id".into());
        }
        if let Some(url) = hook
            && !url.starts_with(WEBHOOK_PREFIX)
        {
            return Err(format!("invalid Slack webhook URL (must start with {WEBHOOK_PREFIX})"));
        }
        Ok(())
    }

    fn verify(&self, config: &Config, inbound: Inbound<'_>, _fallback: Option<&str>) -> Result<(), Rejected> {
        // No signing secret: nothing can prove a request is Slack's (the original took them all).
        let secret = field(config, "signing_secret").ok_or(Rejected::Mismatch)?;
        verify::slack(
            secret.as_bytes(),
            inbound.headers.get("X-Slack-Request-Timestamp"),
            inbound.headers.get("X-Slack-Signature"),
            inbound.body,
            inbound.now_unix,
        )
    }

    fn parse(&self, _config: &Config, inbound: Inbound<'_>) -> Result<Parsed, String> {
        let form = inbound
            .headers
            .get("Content-Type")
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
        if form {
            return slash_command(inbound.body);
        }
        let v: Value = serde_json::from_slice(inbound.body).map_err(|e| format!("not an Events API body: {e}"))?;
        match v.get("type").and_then(Value::as_str) {
            Some("url_verification") => {
                let challenge = v.get("challenge").cloned().unwrap_or(Value::Null);
                Ok(Parsed::Handshake(json!({ "challenge": challenge })))
            }
            Some("event_callback") => {
                let ev = v.get("event").cloned().unwrap_or(Value::Null);
                if ev.get("bot_id").is_some() || ev.get("subtype").and_then(Value::as_str) == Some("bot_message") {
                    return Ok(Parsed::Ignored("a bot's own message"));
                }
                if ev.get("type").and_then(Value::as_str) != Some("message") {
                    return Ok(Parsed::Ignored("not a message event"));
                }
                let Some(text) = ev.get("text").and_then(Value::as_str).filter(|t| !t.is_empty()) else {
                    return Ok(Parsed::Ignored("a message without text"));
                };
                let s = |k: &str| ev.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
                let external_id = v
                    .get("event_id")
                    .and_then(Value::as_str)
                    .map_or_else(|| s("ts"), str::to_owned);
                let mut metadata = Map::new();
                metadata.insert("platform".into(), json!("slack"));
                Ok(Parsed::Message {
                    message: Box::new(Message {
                        external_id,
                        chat_id: s("channel"),
                        user_id: s("user"),
                        username: s("user"),
                        text: text.to_owned(),
                        metadata,
                        reply_context: Value::Null,
                    }),
                    ack: Some(json!({ "status": "accepted" })),
                })
            }
            _ => Ok(Parsed::Ignored("not an event")),
        }
    }

    async fn send(&self, vendors: &Vendors, config: &Config, to: &Destination, text: &str) -> Result<(), SendError> {
        if let Some(token) = field(config, "bot_token") {
            let channel = Some(to.chat_id.as_str())
                .filter(|c| !c.is_empty())
                .or_else(|| field(config, "channel_id"))
                .ok_or_else(|| SendError::NotConfigured("the channel has no channel_id".into()))?;
            for part in crate::chunk::slack(&mrkdwn(text)) {
                let mut body = json!({ "channel": channel, "text": part,
                    "blocks": [{ "type": "section", "text": { "type": "mrkdwn", "text": part } }] });
                for k in ["username", "icon_emoji"] {
                    if let Some(v) = field(config, k) {
                        body[k] = json!(v);
                    }
                }
                let resp = crate::vendor::send_respecting_429(
                    vendors
                        .http
                        .post(vendors.slack_api("chat.postMessage"))
                        .bearer_auth(token)
                        .json(&body),
                )
                .await
                .map_err(|e| SendError::transport(VENDOR, e))?;
                let status = resp.status();
                let answer: Value = resp.json().await.unwrap_or(Value::Null);
                if answer.get("ok").and_then(Value::as_bool) != Some(true) {
                    let error = answer
                        .get("error")
                        .and_then(Value::as_str)
                        .map_or_else(|| format!("HTTP {status}"), str::to_owned);
                    return Err(
                        if matches!(error.as_str(), "invalid_auth" | "token_revoked" | "not_authed") {
                            SendError::Unauthorized {
                                vendor: VENDOR,
                                message: error,
                            }
                        } else {
                            SendError::Refused {
                                vendor: VENDOR,
                                message: format!("API error: {error}"),
                            }
                        },
                    );
                }
            }
            return Ok(());
        }
        let url = field(config, "webhook_url")
            .ok_or_else(|| SendError::NotConfigured("the channel has neither bot_token nor webhook_url".into()))?;
        let resp = crate::vendor::send_respecting_429(
            vendors
                .http
                .post(vendors.slack_webhook(url))
                .json(&json!({ "text": text })),
        )
        .await
        .map_err(|e| SendError::transport(VENDOR, e))?;
        if resp.status().as_u16() != 200 {
            let status = resp.status().as_u16();
            let said = resp.text().await.unwrap_or_default();
            return Err(SendError::Refused {
                vendor: VENDOR,
                message: format!(
                    "webhook answered {status}: {}",
                    said.chars().take(200).collect::<String>()
                ),
            });
        }
        Ok(())
    }

    fn destinations(&self, config: &Config) -> Vec<Destination> {
        vec![Destination {
            chat_id: if field(config, "bot_token").is_some() {
                field(config, "channel_id").unwrap_or_default().to_owned()
            } else {
                String::new()
            },
            reply_context: Value::Null,
        }]
    }
}

fn slash_command(body: &[u8]) -> Result<Parsed, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the form is not UTF-8".to_owned())?;
    let mut f: Map<String, Value> = Map::new();
    for pair in text.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        f.insert(decode(k), json!(decode(v)));
    }
    let s = |k: &str| f.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    let command = s("command");
    if command.is_empty() {
        return Ok(Parsed::Ignored("a form without a command"));
    }
    let mut metadata = Map::new();
    metadata.insert("platform".into(), json!("slack"));
    Ok(Parsed::Message {
        message: Box::new(Message {
            external_id: s("trigger_id"),
            chat_id: s("channel_id"),
            user_id: s("user_id"),
            username: s("user_name"),
            text: format!("{command} {}", s("text")).trim().to_owned(),
            metadata,
            reply_context: Value::Null,
        }),
        // An empty 200 acknowledges a slash command; the answer follows as a post.
        ack: None,
    })
}

/// `application/x-www-form-urlencoded` decoding (`+` is a space, `%XX` a byte).
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_becomes_mrkdwn() {
        assert_eq!(
            mrkdwn("# Title\n**bold** and ~~gone~~ [docs](https://x.y/z)\n---"),
            "*Title*\n*bold* and ~gone~ <https://x.y/z|docs>\n----------"
        );
    }

    #[test]
    fn pipe_tables_become_padded_monospace_blocks() {
        assert_eq!(
            mrkdwn("Status:\n| svc | state |\n|---|:---:|\n| api | up |\n| scheduler | down |\ndone"),
            "Status:\n```\nsvc        state\napi        up\nscheduler  down\n```\ndone"
        );
    }

    #[test]
    fn a_slash_command_reads_from_its_form() {
        let p =
            slash_command(b"command=%2Fask&text=what+is+up%3F&user_id=U1&user_name=ada&channel_id=C1&trigger_id=t.1")
                .unwrap();
        let Parsed::Message { message, ack } = p else { panic!() };
        assert_eq!(message.text, "/ask what is up?");
        assert_eq!(message.chat_id, "C1");
        assert!(ack.is_none());
    }
}
