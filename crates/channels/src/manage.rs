//! `manage`: a workspace's channels as the API and org import change them, and what is sent
//! through them on request (Send, Test) or found with a bot token (Discover).
//!
//! Owns: the config's way in (string values, the schema's keys only, the adapter's checks on
//! the whole config, create and PATCH alike), sealing each sensitive field bound to its row
//! and field, the mask every answer shows (`****` and the last four characters) and the echo
//! rule (a PATCH that sends the mask back keeps the stored secret), the inbound URL shown for a
//! row, Send and Test (every destination tried; any failure is the vendor's error), the budget,
//! Discover's Telegram calls, and org import's upsert.
//!
//! Must not know: HTTP, the A2A proxy.

use base64::Engine;
use molecule_api::channels::{
    AdapterInfo, Channel, ChannelCreated, CreateChannel, Discovered, DiscoveredChat, PatchChannel, SchemaField,
};
use molecule_domain::{ChannelType, EventType, Vocabulary};
use molecule_secrets::{ExposeSecret, Sealed, SecretString, Slot, Version};
use molecule_tree::{Result, ServiceError, events};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::adapter::{self, Adapter, Config, Destination, SendError};
use crate::store;

/// The mask's prefix: a value starting with it is never a real secret.
pub const MASK: &str = "****";
/// The text of `POST …/test`.
pub const TEST_TEXT: &str = "🔔 Molecule AI channel test — connection successful!";
/// Most characters one config value may have.
const MAX_VALUE_CHARS: usize = 4096;

fn mask(value: &str) -> String {
    let n = value.chars().count();
    if n >= 12 {
        let tail: String = value.chars().skip(n - 4).collect();
        format!("{MASK}{tail}")
    } else {
        MASK.to_owned()
    }
}

/// One channel of an org template (`channels:` of a workspace), its values expanded.
#[derive(Debug, Clone)]
pub struct OrgChannel {
    pub kind: String,
    pub config: Map<String, Value>,
    pub allowed_users: Vec<String>,
    pub enabled: Option<bool>,
}

/// What import did with one template channel.
#[derive(Debug, Clone)]
pub enum ImportedChannel {
    Written(ChannelType),
    Skipped { kind: String, reason: String },
}

impl crate::Channels {
    /// `GET /channels/adapters`.
    pub fn adapters() -> Vec<AdapterInfo> {
        crate::catalogue::all()
            .into_iter()
            .map(|a| AdapterInfo {
                kind: a.kind(),
                display_name: a.display_name().to_owned(),
                config_schema: a
                    .schema()
                    .iter()
                    .map(|f| SchemaField {
                        key: f.key.to_owned(),
                        label: f.label.to_owned(),
                        kind: f.kind.as_str().to_owned(),
                        required: f.required,
                        sensitive: f.sensitive,
                        placeholder: f.placeholder.map(str::to_owned),
                        help: f.help.map(str::to_owned),
                    })
                    .collect(),
            })
            .collect()
    }

    fn slot_key(channel_id: Uuid, field: &str) -> String {
        format!("channel:{channel_id}:{field}")
    }

    /// Splits a config into its clear part and its sealed part (bound to the row and field).
    fn seal(&self, a: &dyn Adapter, workspace_id: Uuid, channel_id: Uuid, config: &Config) -> Result<(Value, Value)> {
        let (mut clear, mut sealed) = (Map::new(), Map::new());
        for (k, v) in config {
            if adapter::is_sensitive(a, k) {
                let key = Self::slot_key(channel_id, k);
                let s = self
                    .inner
                    .keyring
                    .seal(
                        Slot::Workspace {
                            workspace_id,
                            key: &key,
                        },
                        &SecretString::from(v.clone()),
                    )
                    .map_err(|e| ServiceError::internal("sealing a channel secret", e))?;
                sealed.insert(
                    k.clone(),
                    json!({ "v": s.version.column(), "k": s.key_id,
                            "b": base64::engine::general_purpose::STANDARD.encode(&s.bytes) }),
                );
            } else {
                clear.insert(k.clone(), json!(v));
            }
        }
        Ok((Value::Object(clear), Value::Object(sealed)))
    }

    /// Seals `config` for the row and writes it (its `config` and `secrets` are filled here).
    async fn write_row(&self, row: store::NewRow<'_>, config: &Config, how: store::Write) -> Result<Option<Uuid>> {
        let a = crate::catalogue::adapter(row.kind);
        let (clear, sealed) = self.seal(a, row.workspace_id, row.id, config)?;
        let mut conn = self.pool().get().await?;
        store::write(
            &mut conn,
            store::NewRow {
                config: &clear,
                secrets: &sealed,
                ..row
            },
            how,
        )
        .await
    }

    /// A row's config with its secrets opened.
    pub(crate) fn open(&self, row: &store::Row) -> Result<Config> {
        let mut config = Config::new();
        for (k, v) in row.config.as_object().into_iter().flatten() {
            if let Some(s) = v.as_str() {
                config.insert(k.clone(), s.to_owned());
            }
        }
        for (k, v) in row.secrets.as_object().into_iter().flatten() {
            let version = v
                .get("v")
                .and_then(Value::as_i64)
                .and_then(|n| i16::try_from(n).ok())
                .and_then(Version::from_column);
            let bytes = v
                .get("b")
                .and_then(Value::as_str)
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok());
            let (Some(version), Some(bytes)) = (version, bytes) else {
                return Err(ServiceError::internal(
                    "opening a channel secret",
                    format!("channel {} field {k}: the stored secret is malformed", row.id),
                ));
            };
            let sealed = Sealed {
                version,
                key_id: v.get("k").and_then(Value::as_str).map(str::to_owned),
                bytes,
            };
            let key = Self::slot_key(row.id, k);
            let opened = self
                .inner
                .keyring
                .open(
                    Slot::Workspace {
                        workspace_id: row.workspace_id,
                        key: &key,
                    },
                    &sealed,
                )
                .map_err(|e| ServiceError::internal("opening a channel secret", e))?;
            config.insert(k.clone(), opened.expose_secret().to_owned());
        }
        Ok(config)
    }

    /// The config a request gives: strings only, each named when it is not.
    fn config_of(a: &dyn Adapter, raw: &Map<String, Value>) -> Result<Config> {
        let mut config = Config::new();
        for (k, v) in raw {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Null => continue,
                _ => {
                    return Err(ServiceError::invalid("config", format!("config.{k} must be a string")));
                }
            };
            if s.chars().count() > MAX_VALUE_CHARS {
                return Err(ServiceError::invalid(
                    "config",
                    format!("config.{k} is longer than {MAX_VALUE_CHARS} characters"),
                ));
            }
            if s.contains('\0') {
                return Err(ServiceError::invalid(
                    "config",
                    format!("config.{k} contains a NUL character"),
                ));
            }
            config.insert(k.clone(), s);
        }
        adapter::check_fields(a, &config).map_err(|m| ServiceError::invalid("config", m))?;
        a.validate(&config)
            .map_err(|m| ServiceError::invalid("config", format!("invalid channel config: {m}")))?;
        Ok(config)
    }

    fn kind_of(raw: &str) -> Result<ChannelType> {
        if raw.trim().is_empty() {
            return Err(ServiceError::invalid("channel_type", "channel_type is required"));
        }
        ChannelType::parse(raw.trim()).map_err(|_| {
            ServiceError::invalid(
                "channel_type",
                format!(
                    "unsupported channel_type: {raw} (one of {})",
                    ChannelType::ALL
                        .iter()
                        .map(|t| t.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })
    }

    fn users_of(users: Option<Vec<String>>) -> Result<Option<Value>> {
        let Some(users) = users else { return Ok(None) };
        if users.len() > 1000 {
            return Err(ServiceError::invalid("allowed_users", "at most 1000 entries"));
        }
        let users: Vec<String> = users.into_iter().map(|u| u.trim().to_owned()).collect();
        if users.iter().any(|u| u.is_empty() || u.len() > 256 || u.contains('\0')) {
            return Err(ServiceError::invalid(
                "allowed_users",
                "each entry must be a user or chat id of 1 to 256 characters",
            ));
        }
        Ok(Some(json!(users)))
    }

    fn budget_of(b: Option<i32>) -> Result<Option<i32>> {
        match b {
            Some(n) if n < 0 => Err(ServiceError::invalid(
                "channel_budget",
                "must be 0 or more (null: no limit)",
            )),
            other => Ok(other),
        }
    }

    /// Where the vendor sends this row's inbound messages (none for a polling Telegram row).
    fn inbound_url(&self, kind: ChannelType, id: Uuid, config: &Config) -> Option<String> {
        if crate::catalogue::adapter(kind).polls(config) {
            return None;
        }
        let base = self.inner.shared.settings.public_url.as_deref()?;
        Some(format!("{}/webhooks/{kind}/{id}", base.trim_end_matches('/')))
    }

    fn view(&self, row: store::Row) -> Result<Channel> {
        let kind = row.kind()?;
        let config = self.open(&row)?;
        let a = crate::catalogue::adapter(kind);
        let shown: Map<String, Value> = config
            .iter()
            .map(|(k, v)| {
                let v = if adapter::is_sensitive(a, k) {
                    mask(v)
                } else {
                    v.clone()
                };
                (k.clone(), json!(v))
            })
            .collect();
        let allowed_users = row
            .allowed_users
            .as_ref()
            .and_then(|u| serde_json::from_value::<Vec<String>>(u.clone()).ok());
        Ok(Channel {
            id: row.id,
            workspace_id: row.workspace_id,
            channel_type: kind,
            inbound_url: self.inbound_url(kind, row.id, &config),
            config: shown,
            enabled: row.enabled,
            disabled_reason: row.disabled_reason,
            allowed_users,
            message_count: row.message_count,
            channel_budget: row.channel_budget,
            source: row.source,
            created_at: row.created_at,
            updated_at: row.updated_at,
            last_message_at: row.last_message_at,
        })
    }

    /// `GET /workspaces/:id/channels`, oldest first.
    pub async fn list(&self, workspace_id: Uuid) -> Result<Vec<Channel>> {
        let rows = {
            let mut conn = self.pool().get().await?;
            store::list(&mut conn, workspace_id).await?
        };
        rows.into_iter().map(|r| self.view(r)).collect()
    }

    /// `POST /workspaces/:id/channels`. One channel per type per workspace (409).
    pub async fn create(&self, workspace_id: Uuid, body: CreateChannel) -> Result<ChannelCreated> {
        let kind = Self::kind_of(&body.channel_type)?;
        let a = crate::catalogue::adapter(kind);
        let config = Self::config_of(a, &body.config)?;
        let users = Self::users_of(body.allowed_users)?;
        let budget = Self::budget_of(body.channel_budget)?;
        self.inner.tree.require_live(workspace_id).await?;
        let id = Uuid::new_v4();
        let enabled = body.enabled.unwrap_or(true);
        let made = self
            .write_row(
                store::NewRow {
                    id,
                    workspace_id,
                    kind,
                    config: &Value::Null,
                    secrets: &Value::Null,
                    enabled,
                    allowed_users: Some(users.as_ref().unwrap_or(&json!([]))),
                    budget,
                    source: "runtime",
                },
                &config,
                store::Write::Insert,
            )
            .await?;
        if made.is_none() {
            return Err(ServiceError::conflict(
                format!("the workspace already has a {kind} channel: change it (PATCH) or delete it first"),
                json!({ "channel_type": kind.as_str() }),
            ));
        }
        self.after_change(kind, id, &config).await;
        Ok(ChannelCreated {
            id,
            channel_type: kind,
            enabled,
            inbound_url: self.inbound_url(kind, id, &config),
        })
    }

    /// `PATCH /workspaces/:id/channels/:channelId`: present fields replace; the new config is
    /// checked whole; a masked value keeps its stored secret.
    pub async fn update(&self, workspace_id: Uuid, id: Uuid, body: PatchChannel) -> Result<()> {
        let row = self.owned(workspace_id, id).await?;
        let kind = row.kind()?;
        let a = crate::catalogue::adapter(kind);
        let mut new_config = None;
        let mut reset_offset = false;
        if let Some(raw) = &body.config {
            let stored = self.open(&row)?;
            let mut raw = raw.clone();
            for (k, v) in raw.iter_mut() {
                let Some(s) = v.as_str() else { continue };
                if adapter::is_sensitive(a, k) && s.starts_with(MASK) {
                    match stored.get(k) {
                        Some(old) if mask(old) == s => *v = json!(old),
                        _ => {
                            return Err(ServiceError::invalid(
                                "config",
                                format!(
                                    "config.{k} is a mask that does not match the stored value: send the real value, or the mask the list shows to keep it"
                                ),
                            ));
                        }
                    }
                }
            }
            let config = Self::config_of(a, &raw)?;
            reset_offset = config.get("bot_token") != stored.get("bot_token");
            new_config = Some((self.seal(a, workspace_id, id, &config)?, config));
        }
        let users = Self::users_of(body.allowed_users)?;
        let budget = match body.channel_budget {
            Some(b) => Some(Self::budget_of(b)?),
            None => None,
        };
        let changed = {
            let mut conn = self.pool().get().await?;
            store::update(
                &mut conn,
                workspace_id,
                id,
                store::Change {
                    config: new_config.as_ref().map(|((c, s), _)| (c, s)),
                    allowed_users: users.as_ref(),
                    enabled: body.enabled,
                    budget,
                    reset_offset,
                },
            )
            .await?
        };
        if !changed {
            return Err(ServiceError::NotFound("channel not found".into()));
        }
        let config = match new_config {
            Some((_, c)) => c,
            None => self.open(&row)?,
        };
        self.after_change(kind, id, &config).await;
        Ok(())
    }

    /// `DELETE /workspaces/:id/channels/:channelId`.
    pub async fn delete(&self, workspace_id: Uuid, id: Uuid) -> Result<()> {
        let gone = {
            let mut conn = self.pool().get().await?;
            store::delete(&mut conn, workspace_id, id).await?
        };
        if !gone {
            return Err(ServiceError::NotFound("channel not found".into()));
        }
        self.stop_poller(id);
        Ok(())
    }

    /// After a row changed: a Telegram row in webhook mode registers its webhook; a poller of
    /// this replica sees the new config version at its next renewal.
    async fn after_change(&self, kind: ChannelType, id: Uuid, config: &Config) {
        if kind != ChannelType::Telegram || crate::catalogue::adapter(kind).polls(config) {
            return;
        }
        let (Some(url), Some(token), Some(secret)) = (
            self.inbound_url(kind, id, config),
            adapter::field(config, "bot_token"),
            adapter::field(config, "webhook_secret"),
        ) else {
            tracing::warn!(channel_id = %id, "telegram webhook mode needs EXTERNAL_PLATFORM_URL to register the webhook; set it, or register it by hand");
            return;
        };
        let params = json!({ "url": url, "secret_token": secret, "allowed_updates": crate::telegram::ALLOWED_UPDATES });
        if let Err(e) = crate::telegram::call(&self.inner.shared.vendors, token, "setWebhook", &params, None).await {
            tracing::warn!(channel_id = %id, error = %e, "telegram setWebhook failed; inbound messages will not arrive until it succeeds");
        }
    }

    /// One of the workspace's channels, or 404 (another workspace's is not found either).
    async fn owned(&self, workspace_id: Uuid, id: Uuid) -> Result<store::Row> {
        let mut conn = self.pool().get().await?;
        store::get(&mut conn, workspace_id, id)
            .await?
            .ok_or_else(|| ServiceError::NotFound("channel not found".into()))
    }

    /// `POST …/send`: budget-checked; every destination is tried, and any failure is a 502
    /// with the vendor's error.
    pub async fn send(&self, workspace_id: Uuid, id: Uuid, text: &str) -> Result<()> {
        if text.trim().is_empty() {
            return Err(ServiceError::invalid("text", "text is required"));
        }
        let row = self.owned(workspace_id, id).await?;
        if !row.enabled {
            return Err(ServiceError::conflict(
                "the channel is disabled: enable it (PATCH enabled=true) first",
                json!({ "disabled_reason": row.disabled_reason }),
            ));
        }
        let within = {
            let mut conn = self.pool().get().await?;
            store::take_budget(&mut conn, id).await?
        };
        if !within {
            return Err(ServiceError::TooMany("channel budget exceeded".into()));
        }
        self.send_everywhere(&row, text).await
    }

    /// `POST …/test`: the fixed test text, no budget.
    pub async fn test(&self, workspace_id: Uuid, id: Uuid) -> Result<()> {
        let row = self.owned(workspace_id, id).await?;
        self.send_everywhere(&row, TEST_TEXT).await?;
        let mut conn = self.pool().get().await?;
        store::count_message(&mut conn, id).await
    }

    /// Sends to every destination of the row; any failure fails the call (502 with each
    /// vendor error), a revoked token also disables the row.
    pub(crate) async fn send_everywhere(&self, row: &store::Row, text: &str) -> Result<()> {
        let kind = row.kind()?;
        let a = crate::catalogue::adapter(kind);
        let config = self.open(row)?;
        let destinations = a.destinations(&config);
        let mut failures = Vec::new();
        for to in &destinations {
            if let Err(e) = a.send(&self.inner.shared.vendors, &config, to, text).await {
                tracing::warn!(channel_id = %row.id, channel_type = %kind, error = %e, "channel send failed");
                if matches!(e, SendError::Unauthorized { .. }) {
                    self.disable_for(row.id, &e.to_string()).await;
                }
                failures.push(e.to_string());
            }
        }
        self.event(
            row.workspace_id,
            json!({ "channel_id": row.id, "channel_type": kind.as_str(), "direction": "outbound",
                    "delivered": destinations.len() - failures.len(), "failed": failures.len() }),
        )
        .await;
        if failures.is_empty() {
            Ok(())
        } else {
            Err(ServiceError::Upstream {
                message: format!("the vendor refused the message: {}", failures.join("; ")),
                details: json!({ "errors": failures }),
            })
        }
    }

    /// Sends to one destination (a reply); a revoked token disables the row.
    pub(crate) async fn send_to(
        &self,
        row: &store::Row,
        config: &Config,
        to: &Destination,
        text: &str,
    ) -> std::result::Result<(), SendError> {
        let a = crate::catalogue::adapter(row.kind().map_err(|e| SendError::NotConfigured(e.to_string()))?);
        let sent = a.send(&self.inner.shared.vendors, config, to, text).await;
        if let Err(e @ SendError::Unauthorized { .. }) = &sent {
            self.disable_for(row.id, &e.to_string()).await;
        }
        sent
    }

    pub(crate) async fn disable_for(&self, id: Uuid, reason: &str) {
        let done = async {
            let mut conn = self.pool().get().await?;
            store::disable(&mut conn, id, reason).await
        }
        .await;
        match done {
            Ok(()) => tracing::warn!(channel_id = %id, reason, "channel disabled"),
            Err(e) => tracing::warn!(channel_id = %id, error = %e.chain(), "a channel to disable could not be"),
        }
    }

    /// `CHANNEL_MESSAGE` on the workspace.
    pub(crate) async fn event(&self, workspace_id: Uuid, payload: Value) {
        let done = async {
            let mut conn = self.pool().get().await?;
            events::record(&mut conn, EventType::ChannelMessage, Some(workspace_id), payload).await
        }
        .await;
        if let Err(e) = done {
            tracing::warn!(workspace_id = %workspace_id, error = %e.chain(), "CHANNEL_MESSAGE not recorded");
        }
    }

    /// `POST /channels/discover`: the bot's identity and the chats that wrote to it.
    pub async fn discover(&self, body: molecule_api::channels::Discover) -> Result<Discovered> {
        if body.bot_token.trim().is_empty() {
            return Err(ServiceError::invalid("bot_token", "bot_token is required"));
        }
        if body.workspace_id.trim().is_empty() {
            return Err(ServiceError::invalid("workspace_id", "workspace_id is required"));
        }
        let workspace_id: Uuid = body
            .workspace_id
            .trim()
            .parse()
            .map_err(|_| ServiceError::invalid("workspace_id", "workspace_id must be a workspace's UUID"))?;
        let kind = ChannelType::parse(body.channel_type.trim())
            .map_err(|_| ServiceError::invalid("channel_type", "unsupported channel_type"))?;
        if kind != ChannelType::Telegram {
            return Err(ServiceError::invalid(
                "channel_type",
                format!("discovery not supported for {kind}"),
            ));
        }
        self.inner.tree.require_live(workspace_id).await?;
        let token = body.bot_token.trim();
        let v = &self.inner.shared.vendors;
        let friendly = |e: crate::telegram::TgError| {
            use crate::telegram::TgError as E;
            let m = match &e {
                E::Unauthorized | E::Api { code: 404, .. } => {
                    "Invalid bot token. Check the token from @BotFather and try again."
                }
                E::Conflict(_) => {
                    "This bot is already connected to another channel. Disconnect the existing channel first, or wait 30 seconds and retry."
                }
                E::Transport(..) => "Cannot reach Telegram API. Check your network connection and try again.",
                _ => "Failed to connect to Telegram. Check your bot token and try again.",
            };
            tracing::info!(error = %e, "telegram discover failed");
            ServiceError::invalid("bot_token", m)
        };
        let me = crate::telegram::call(v, token, "getMe", &json!({}), None)
            .await
            .map_err(friendly)?;
        let commands = json!({ "commands": [
            { "command": "start", "description": "Connect this chat to the agent" },
            { "command": "help", "description": "Show available commands" },
            { "command": "reset", "description": "Clear conversation history" },
            { "command": "cancel", "description": "Cancel current request" } ] });
        if let Err(e) = crate::telegram::call(v, token, "setMyCommands", &commands, None).await {
            tracing::info!(error = %e, "telegram setMyCommands failed; discovery goes on");
        }
        let updates = self.read_updates_alone(token).await.map_err(friendly)?;
        let mut chats: Vec<DiscoveredChat> = Vec::new();
        for u in updates.as_array().into_iter().flatten() {
            let chat = u
                .pointer("/my_chat_member/chat")
                .or_else(|| u.pointer("/message/chat"))
                .or_else(|| u.pointer("/channel_post/chat"));
            let Some(chat) = chat else { continue };
            let Some(id) = chat.get("id").map(|i| i.to_string().trim_matches('"').to_owned()) else {
                continue;
            };
            if chats.iter().any(|c| c.chat_id == id) {
                continue;
            }
            let name = chat
                .get("title")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| {
                    [chat.get("first_name"), chat.get("last_name")]
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(" ")
                });
            chats.push(DiscoveredChat {
                chat_id: id,
                name,
                kind: chat.get("type").and_then(Value::as_str).unwrap_or_default().to_owned(),
            });
        }
        let can_read = me
            .get("can_read_all_group_messages")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok(Discovered {
            bot_username: me
                .get("username")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            chats: (!chats.is_empty()).then_some(chats),
            can_read_all_group_messages: can_read,
            privacy_warning: if can_read {
                String::new()
            } else {
                "⚠️ Group privacy mode is ON: in groups the bot only sees commands and replies to it. Turn it off with @BotFather (/setprivacy) for it to read every message.".into()
            },
            hint: "For groups: add bot and send a message. For DMs: send /start to the bot. Then retry.".into(),
        })
    }

    /// Org import: upserts the template's channels of a workspace (each sealed, as the API's);
    /// a channel that cannot be written is skipped with the reason.
    pub async fn import(&self, workspace_id: Uuid, channels: Vec<OrgChannel>) -> Result<Vec<ImportedChannel>> {
        let mut out = Vec::new();
        for c in channels {
            let kind = match ChannelType::parse(c.kind.trim()) {
                Ok(k) => k,
                Err(_) => {
                    out.push(ImportedChannel::Skipped {
                        reason: if c.kind.trim().is_empty() {
                            "empty type".into()
                        } else {
                            "unknown adapter".into()
                        },
                        kind: c.kind,
                    });
                    continue;
                }
            };
            let a = crate::catalogue::adapter(kind);
            let config = match Self::config_of(a, &c.config) {
                Ok(config) => config,
                Err(e) => {
                    out.push(ImportedChannel::Skipped {
                        kind: c.kind,
                        reason: match e {
                            ServiceError::Invalid { message, .. } => message,
                            other => other.to_string(),
                        },
                    });
                    continue;
                }
            };
            let users = Self::users_of(Some(c.allowed_users))?;
            let existing = {
                let mut conn = self.pool().get().await?;
                store::list(&mut conn, workspace_id)
                    .await?
                    .into_iter()
                    .find(|r| r.kind().ok() == Some(kind))
                    .map(|r| r.id)
            };
            let id = existing.unwrap_or_else(Uuid::new_v4);
            self.write_row(
                store::NewRow {
                    id,
                    workspace_id,
                    kind,
                    config: &Value::Null,
                    secrets: &Value::Null,
                    enabled: c.enabled.unwrap_or(true),
                    allowed_users: users.as_ref(),
                    budget: None,
                    source: "template",
                },
                &config,
                store::Write::Upsert,
            )
            .await?;
            self.after_change(kind, id, &config).await;
            out.push(ImportedChannel::Written(kind));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_show_only_a_tail_of_long_values() {
        assert_eq!(mask("123456:abcdefghijklmnop"), "****mnop");
        assert_eq!(mask("short"), "****");
    }
}
