//! `adapter`: what every vendor adapter offers, behind one trait ([`Adapter`]), and the
//! catalogue of config schemas the canvas form is drawn from.
//!
//! Owns: the config schema of each vendor (field order, kinds, which are required and which
//! are sensitive), [`Config`] (a row's opened values), what a parsed inbound request is
//! ([`Parsed`]), where a reply goes ([`Destination`]), and the send error every vendor maps
//! its failures to ([`SendError`]).
//!
//! Must not know: the database, sealing, HTTP frameworks, the A2A proxy.

use std::collections::BTreeMap;

use molecule_domain::ChannelType;
use serde_json::{Map, Value};

use crate::vendor::Vendors;
use crate::verify::Rejected;

/// A row's config with its sensitive values opened: field → value.
pub type Config = BTreeMap<String, String>;

/// How the canvas draws a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    Text,
    Password,
    Textarea,
}

impl FieldKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Password => "password",
            Self::Textarea => "textarea",
        }
    }
}

/// One field of an adapter's config schema.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub key: &'static str,
    pub label: &'static str,
    pub kind: FieldKind,
    pub required: bool,
    /// Sealed at rest, never answered (a mask stands in for it).
    pub sensitive: bool,
    pub placeholder: Option<&'static str>,
    pub help: Option<&'static str>,
}

/// The `[slug]` name every adapter accepts: the agent a `[name] text` message is for when one
/// chat reaches several workspaces (the original's routing).
pub const USERNAME: Field = Field {
    key: "username",
    label: "Agent name",
    kind: FieldKind::Text,
    required: false,
    sensitive: false,
    placeholder: Some("backend-engineer"),
    help: Some("Messages starting with [name] go to the channel with this name."),
};

/// The request headers an adapter reads, by name (case-insensitive).
#[derive(Debug, Clone, Default)]
pub struct Headers(pub Vec<(String, String)>);

impl Headers {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One inbound request, as the vendor sent it.
#[derive(Debug, Clone, Copy)]
pub struct Inbound<'a> {
    pub headers: &'a Headers,
    pub body: &'a [u8],
    /// Unix seconds now (a test may pin it).
    pub now_unix: i64,
}

/// A chat message for the agent.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The vendor's own id of this message: a retry of it is recognised.
    pub external_id: String,
    pub chat_id: String,
    pub user_id: String,
    pub username: String,
    pub text: String,
    /// The vendor's details the agent is sent (`metadata.extra`).
    pub metadata: Map<String, Value>,
    /// What a reply to this message needs besides the chat (Discord's interaction).
    pub reply_context: Value,
}

/// What an inbound request is.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// For the agent; the vendor is answered with `ack` (`None`: an empty 200).
    Message { message: Box<Message>, ack: Option<Value> },
    /// An endpoint check: the vendor is answered with this, and nothing else happens.
    Handshake(Value),
    /// Not a message (an edit, a bot's own post, a join): answered `{"status":"ignored"}`.
    Ignored(&'static str),
}

/// Where a reply or an outbound message goes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Destination {
    /// The chat (Telegram's chat id, Slack's channel id); empty for webhook-only vendors.
    pub chat_id: String,
    pub reply_context: Value,
}

/// Why a send failed, in the vendor's own words (never a token or a webhook URL).
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The vendor refused the credentials (a revoked bot token).
    #[error("{vendor}: unauthorized: {message}")]
    Unauthorized { vendor: &'static str, message: String },
    /// The vendor answered, and refused.
    #[error("{vendor}: {message}")]
    Refused { vendor: &'static str, message: String },
    /// The vendor could not be reached, or its answer not read.
    #[error("{vendor}: cannot reach the API: {reason}")]
    Transport {
        vendor: &'static str,
        reason: String,
        #[source]
        source: reqwest::Error,
    },
    /// The row cannot send this way (no destination configured).
    #[error("{0}")]
    NotConfigured(String),
}

impl SendError {
    pub(crate) fn transport(vendor: &'static str, e: reqwest::Error) -> Self {
        // reqwest's own text names the URL, and a webhook URL is a credential.
        let e = e.without_url();
        let reason = if e.is_timeout() {
            "timed out".to_owned()
        } else if e.is_connect() {
            "connection failed".to_owned()
        } else {
            e.to_string()
        };
        Self::Transport {
            vendor,
            reason,
            source: e,
        }
    }
}

/// One vendor.
#[async_trait::async_trait]
pub trait Adapter: Send + Sync {
    fn kind(&self) -> ChannelType;
    fn display_name(&self) -> &'static str;
    /// The config schema, in the order the form shows it.
    fn schema(&self) -> &'static [Field];
    /// Checks a whole config; the error says which field and what to change.
    fn validate(&self, config: &Config) -> Result<(), String>;
    /// Whether this inbound request is the vendor's, for this row (its secrets opened).
    fn verify(&self, config: &Config, inbound: Inbound<'_>, fallback_key: Option<&str>) -> Result<(), Rejected>;
    /// What a verified request is.
    fn parse(&self, config: &Config, inbound: Inbound<'_>) -> Result<Parsed, String>;
    /// Sends `text` (cut to the vendor's sizes) to one destination.
    async fn send(&self, vendors: &Vendors, config: &Config, to: &Destination, text: &str) -> Result<(), SendError>;
    /// Shows "typing…" in the chat, where the vendor has it.
    async fn typing(&self, _vendors: &Vendors, _config: &Config, _to: &Destination) {}
    /// Where Send, Test and the scheduler's auto-post go.
    fn destinations(&self, config: &Config) -> Vec<Destination>;
    /// Whether this row is read by polling (a Telegram row without a webhook secret).
    fn polls(&self, _config: &Config) -> bool {
        false
    }
}

/// Whether `key` is one of the adapter's sensitive fields.
pub fn is_sensitive(adapter: &dyn Adapter, key: &str) -> bool {
    adapter.schema().iter().any(|f| f.key == key && f.sensitive)
}

/// Checks the keys against the schema and the required ones for presence: the error names
/// the field.
pub fn check_fields(adapter: &dyn Adapter, config: &Config) -> Result<(), String> {
    for key in config.keys() {
        if !adapter.schema().iter().any(|f| f.key == key) {
            let known: Vec<&str> = adapter.schema().iter().map(|f| f.key).collect();
            return Err(format!(
                "config.{key} is not a {} field (known: {})",
                adapter.kind(),
                known.join(", ")
            ));
        }
    }
    for f in adapter.schema() {
        if f.required && config.get(f.key).is_none_or(|v| v.trim().is_empty()) {
            return Err(format!("missing required field: {}", f.key));
        }
    }
    Ok(())
}

/// A comma-separated list, trimmed, empties dropped.
pub fn list(value: Option<&String>) -> Vec<String> {
    value
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The value of a field, or `None` when absent or blank.
pub fn field<'c>(config: &'c Config, key: &str) -> Option<&'c str> {
    config.get(key).map(|v| v.trim()).filter(|v| !v.is_empty())
}
