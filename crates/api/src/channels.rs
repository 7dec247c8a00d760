//! Channel bodies (`/channels/*`, `/workspaces/:id/channels*`, `/webhooks/*`): the original's
//! shapes (B §1), with every sensitive field masked in answers, the budget and the reason a
//! row was disabled shown, and the URL to give the vendor.

use molecule_domain::ChannelType;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// One field of an adapter's config schema.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SchemaField {
    pub key: String,
    pub label: String,
    /// `text`, `password` or `textarea`.
    #[serde(rename = "type")]
    pub kind: String,
    pub required: bool,
    /// Sealed at rest and masked in every answer.
    pub sensitive: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

/// `GET /channels/adapters` element.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AdapterInfo {
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub kind: ChannelType,
    pub display_name: String,
    pub config_schema: Vec<SchemaField>,
}

/// `POST /workspaces/:id/channels` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateChannel {
    /// `telegram`, `slack`, `lark` or `discord`.
    #[serde(default)]
    pub channel_type: String,
    /// The adapter's fields (`GET /channels/adapters`), string values.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub config: Map<String, Value>,
    /// User or chat ids allowed to talk to the agent (empty: everyone in the configured chats).
    #[serde(default)]
    pub allowed_users: Option<Vec<String>>,
    /// Default true.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Most messages (in and out) the channel may carry; null: no limit.
    #[serde(default)]
    pub channel_budget: Option<i32>,
}

/// `PATCH /workspaces/:id/channels/:channelId` body: each field present replaces the column.
/// A masked value echoed back from the list keeps the stored secret.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchChannel {
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub config: Option<Map<String, Value>>,
    #[serde(default)]
    pub allowed_users: Option<Vec<String>>,
    #[serde(default)]
    pub enabled: Option<bool>,
    /// A number sets the budget; `null` removes it; absent leaves it.
    #[serde(default, deserialize_with = "some_or_null")]
    #[schema(value_type = Option<i32>)]
    pub channel_budget: Option<Option<i32>>,
}

fn some_or_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<i32>>, D::Error> {
    Ok(Some(Option::deserialize(d)?))
}

/// `201` of a create.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChannelCreated {
    pub id: Uuid,
    #[schema(value_type = String)]
    pub channel_type: ChannelType,
    pub enabled: bool,
    /// The URL to give the vendor for inbound messages (null for a polling Telegram row).
    pub inbound_url: Option<String>,
}

/// A channel as the list shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Channel {
    pub id: Uuid,
    pub workspace_id: Uuid,
    #[schema(value_type = String)]
    pub channel_type: ChannelType,
    /// The config, every sensitive field masked (`****` and its last four characters).
    #[schema(value_type = Object)]
    pub config: Map<String, Value>,
    pub enabled: bool,
    /// Why the platform disabled it (a revoked bot token); null otherwise.
    pub disabled_reason: Option<String>,
    pub allowed_users: Option<Vec<String>>,
    pub message_count: i32,
    pub channel_budget: Option<i32>,
    /// The URL to give the vendor for inbound messages (null for a polling Telegram row).
    pub inbound_url: Option<String>,
    /// `runtime` (the API) or `template` (org import).
    pub source: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub last_message_at: Option<OffsetDateTime>,
}

/// `POST …/send` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendText {
    #[serde(default)]
    pub text: String,
}

/// `POST /channels/discover` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Discover {
    #[serde(default)]
    pub channel_type: String,
    #[serde(default)]
    pub bot_token: String,
    #[serde(default)]
    pub workspace_id: String,
}

/// A chat Discover found.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DiscoveredChat {
    pub chat_id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
}

/// `200` of Discover.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Discovered {
    pub bot_username: String,
    /// Null when none were found (the original's shape).
    pub chats: Option<Vec<DiscoveredChat>>,
    pub can_read_all_group_messages: bool,
    pub privacy_warning: String,
    pub hint: String,
}

/// What an inbound webhook was answered (besides the vendors' own handshakes).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookAnswer {
    /// `accepted`, `ignored`, `duplicate`, `dropped`, `no_channel` or `unknown_agent`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_slug: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available_slugs: Option<Vec<String>>,
}
