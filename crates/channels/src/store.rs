//! `store`: the `workspace_channels` and `channel_messages` tables, their one owner.
//!
//! Owns: a channel row (clear config and sealed secrets kept apart; `config_version` bumped by
//! every change a poller must see), the IDOR rule (every read or write by a workspace names
//! both ids), counting and the budget, disabling with a reason, the Telegram poller's lease
//! and position (each write fenced by the holder), and the inbound messages: taken in once by
//! the vendor's id, their statuses, the history a chat's next message carries, the sweep.
//!
//! Must not know: vendors, sealing (it stores what it is given), HTTP.

use diesel::OptionalExtension;
use diesel::sql_types::{Bool, Int4, Int8, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use molecule_domain::{ChannelMessageStatus, ChannelType, Vocabulary};
use molecule_tree::{Result, ServiceError};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

/// How many answered messages of a chat the agent is sent as history, and how far back.
pub const HISTORY_ENTRIES: i64 = 10;
pub const HISTORY_HOURS: i64 = 24;

const COLUMNS: &str = "id, workspace_id, channel_type, channel_config AS config, channel_secrets AS secrets, enabled, allowed_users, \
     last_message_at, message_count, channel_budget, disabled_reason, config_version, poll_offset, source, \
     created_at, updated_at";

/// A channel row as stored.
#[derive(Debug, Clone, diesel::QueryableByName)]
pub struct Row {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub workspace_id: Uuid,
    #[diesel(sql_type = Text)]
    channel_type: String,
    #[diesel(sql_type = Jsonb)]
    pub config: Value,
    #[diesel(sql_type = Jsonb)]
    pub secrets: Value,
    #[diesel(sql_type = Bool)]
    pub enabled: bool,
    #[diesel(sql_type = Nullable<Jsonb>)]
    pub allowed_users: Option<Value>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub last_message_at: Option<OffsetDateTime>,
    #[diesel(sql_type = Int4)]
    pub message_count: i32,
    #[diesel(sql_type = Nullable<Int4>)]
    pub channel_budget: Option<i32>,
    #[diesel(sql_type = Nullable<Text>)]
    pub disabled_reason: Option<String>,
    #[diesel(sql_type = Int4)]
    pub config_version: i32,
    #[diesel(sql_type = Int8)]
    pub poll_offset: i64,
    #[diesel(sql_type = Text)]
    pub source: String,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: OffsetDateTime,
    #[diesel(sql_type = Timestamptz)]
    pub updated_at: OffsetDateTime,
}

impl Row {
    pub fn kind(&self) -> Result<ChannelType> {
        ChannelType::parse(&self.channel_type).map_err(|e| ServiceError::internal("reading a channel row", e))
    }
}

/// A new row; its id is chosen by the caller (its secrets are sealed bound to it).
#[derive(Debug)]
pub struct NewRow<'a> {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub kind: ChannelType,
    pub config: &'a Value,
    pub secrets: &'a Value,
    pub enabled: bool,
    pub allowed_users: Option<&'a Value>,
    pub budget: Option<i32>,
    /// `runtime` (the API) or `template` (org import).
    pub source: &'static str,
}

/// How [`write`] meets an existing row of the same workspace and type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// Leave it: the write is refused (`None`).
    Insert,
    /// Org import: overwrite its config, secrets, enabled and allowed users (keeping its id,
    /// so secrets must be sealed for that id).
    Upsert,
}

/// Writes a row; the id written, or `None` when an [`Write::Insert`] met the workspace's
/// existing channel of this type.
pub async fn write(conn: &mut AsyncPgConnection, r: NewRow<'_>, how: Write) -> Result<Option<Uuid>> {
    #[derive(diesel::QueryableByName)]
    struct Id {
        #[diesel(sql_type = SqlUuid)]
        id: Uuid,
    }
    let conflict = match how {
        Write::Insert => "ON CONFLICT DO NOTHING",
        Write::Upsert => {
            "ON CONFLICT (workspace_id, channel_type) DO UPDATE SET channel_config = EXCLUDED.channel_config, \
             channel_secrets = EXCLUDED.channel_secrets, enabled = EXCLUDED.enabled, \
             allowed_users = EXCLUDED.allowed_users, disabled_reason = NULL, \
             config_version = workspace_channels.config_version + 1, updated_at = now()"
        }
    };
    let row: Option<Id> = diesel::sql_query(format!(
        "INSERT INTO workspace_channels (id, workspace_id, channel_type, channel_config, channel_secrets, enabled, \
         allowed_users, channel_budget, source) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) {conflict} RETURNING id"
    ))
    .bind::<SqlUuid, _>(r.id)
    .bind::<SqlUuid, _>(r.workspace_id)
    .bind::<Text, _>(r.kind.as_str())
    .bind::<Jsonb, _>(r.config)
    .bind::<Jsonb, _>(r.secrets)
    .bind::<Bool, _>(r.enabled)
    .bind::<Nullable<Jsonb>, _>(r.allowed_users)
    .bind::<Nullable<Int4>, _>(r.budget)
    .bind::<Text, _>(r.source)
    .get_result(conn)
    .await
    .optional()?;
    Ok(row.map(|r| r.id))
}

/// The workspace's channels, oldest first.
pub async fn list(conn: &mut AsyncPgConnection, workspace_id: Uuid) -> Result<Vec<Row>> {
    Ok(diesel::sql_query(format!(
        "SELECT {COLUMNS} FROM workspace_channels WHERE workspace_id = $1 ORDER BY created_at, id"
    ))
    .bind::<SqlUuid, _>(workspace_id)
    .load(conn)
    .await?)
}

/// One of the workspace's channels (`None` for another workspace's: the IDOR rule).
pub async fn get(conn: &mut AsyncPgConnection, workspace_id: Uuid, id: Uuid) -> Result<Option<Row>> {
    Ok(diesel::sql_query(format!(
        "SELECT {COLUMNS} FROM workspace_channels WHERE id = $1 AND workspace_id = $2"
    ))
    .bind::<SqlUuid, _>(id)
    .bind::<SqlUuid, _>(workspace_id)
    .get_result(conn)
    .await
    .optional()?)
}

/// A channel by its id alone (inbound webhooks carry it in their path; pollers hold it).
pub async fn by_id(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<Row>> {
    Ok(
        diesel::sql_query(format!("SELECT {COLUMNS} FROM workspace_channels WHERE id = $1"))
            .bind::<SqlUuid, _>(id)
            .get_result(conn)
            .await
            .optional()?,
    )
}

/// Every enabled channel of a type (the compatibility route, the pollers), oldest first.
pub async fn enabled_of(conn: &mut AsyncPgConnection, kind: ChannelType) -> Result<Vec<Row>> {
    Ok(diesel::sql_query(format!(
        "SELECT {COLUMNS} FROM workspace_channels WHERE channel_type = $1 AND enabled ORDER BY created_at, id"
    ))
    .bind::<Text, _>(kind.as_str())
    .load(conn)
    .await?)
}

/// What a PATCH changes; `None` leaves a column as it is.
#[derive(Debug, Default)]
pub struct Change<'a> {
    pub config: Option<(&'a Value, &'a Value)>,
    pub allowed_users: Option<&'a Value>,
    pub enabled: Option<bool>,
    pub budget: Option<Option<i32>>,
    /// Another Telegram bot: its updates are numbered afresh.
    pub reset_offset: bool,
}

/// Applies a change to one of the workspace's channels; false when it has none by that id.
pub async fn update(conn: &mut AsyncPgConnection, workspace_id: Uuid, id: Uuid, c: Change<'_>) -> Result<bool> {
    let n = diesel::sql_query(
        "UPDATE workspace_channels SET \
           channel_config = COALESCE($3, channel_config), \
           channel_secrets = COALESCE($4, channel_secrets), \
           allowed_users = CASE WHEN $5 THEN $6 ELSE allowed_users END, \
           enabled = COALESCE($7, enabled), \
           channel_budget = CASE WHEN $8 THEN $9 ELSE channel_budget END, \
           disabled_reason = CASE WHEN $7 THEN NULL ELSE disabled_reason END, \
           poll_offset = CASE WHEN $10 THEN 0 ELSE poll_offset END, \
           config_version = config_version + 1, updated_at = now() \
         WHERE id = $1 AND workspace_id = $2",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<SqlUuid, _>(workspace_id)
    .bind::<Nullable<Jsonb>, _>(c.config.map(|(clear, _)| clear))
    .bind::<Nullable<Jsonb>, _>(c.config.map(|(_, sealed)| sealed))
    .bind::<Bool, _>(c.allowed_users.is_some())
    .bind::<Nullable<Jsonb>, _>(c.allowed_users)
    .bind::<Nullable<Bool>, _>(c.enabled)
    .bind::<Bool, _>(c.budget.is_some())
    .bind::<Nullable<Int4>, _>(c.budget.flatten())
    .bind::<Bool, _>(c.reset_offset)
    .execute(conn)
    .await?;
    Ok(n == 1)
}

pub async fn delete(conn: &mut AsyncPgConnection, workspace_id: Uuid, id: Uuid) -> Result<bool> {
    let n = diesel::sql_query("DELETE FROM workspace_channels WHERE id = $1 AND workspace_id = $2")
        .bind::<SqlUuid, _>(id)
        .bind::<SqlUuid, _>(workspace_id)
        .execute(conn)
        .await?;
    Ok(n == 1)
}

/// Turns a row off with the reason the list shows (a revoked token); its poller stops.
pub async fn disable(conn: &mut AsyncPgConnection, id: Uuid, reason: &str) -> Result<()> {
    diesel::sql_query(
        "UPDATE workspace_channels SET enabled = false, disabled_reason = $2, config_version = config_version + 1, \
         updated_at = now() WHERE id = $1",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<Text, _>(reason)
    .execute(conn)
    .await?;
    Ok(())
}

/// Disables every channel of a removed workspace.
pub async fn disable_workspace(conn: &mut AsyncPgConnection, workspace_id: Uuid, reason: &str) -> Result<usize> {
    Ok(diesel::sql_query(
        "UPDATE workspace_channels SET enabled = false, disabled_reason = $2, config_version = config_version + 1, \
         updated_at = now() WHERE workspace_id = $1 AND enabled",
    )
    .bind::<SqlUuid, _>(workspace_id)
    .bind::<Text, _>(reason)
    .execute(conn)
    .await?)
}

/// One more message through the channel (in or out).
pub async fn count_message(conn: &mut AsyncPgConnection, id: Uuid) -> Result<()> {
    diesel::sql_query(
        "UPDATE workspace_channels SET message_count = message_count + 1, last_message_at = now() WHERE id = $1",
    )
    .bind::<SqlUuid, _>(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Takes one message of the budget: false when the channel's budget is spent (the count is
/// then left as it is).
pub async fn take_budget(conn: &mut AsyncPgConnection, id: Uuid) -> Result<bool> {
    let n = diesel::sql_query(
        "UPDATE workspace_channels SET message_count = message_count + 1, last_message_at = now() \
         WHERE id = $1 AND (channel_budget IS NULL OR message_count < channel_budget)",
    )
    .bind::<SqlUuid, _>(id)
    .execute(conn)
    .await?;
    Ok(n == 1)
}

// ----- the Telegram poller's lease -----

/// Takes (or keeps) the poller lease of a row for `owner`: its config version and offset, or
/// `None` when a live holder has it, or the row is gone or off.
pub async fn claim_poller(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    owner: Uuid,
    lease_seconds: i64,
) -> Result<Option<(i32, i64)>> {
    #[derive(diesel::QueryableByName)]
    struct Got {
        #[diesel(sql_type = Int4)]
        config_version: i32,
        #[diesel(sql_type = Int8)]
        poll_offset: i64,
    }
    let got: Option<Got> = diesel::sql_query(
        "UPDATE workspace_channels SET poller_owner = $2, poller_lease_until = now() + make_interval(secs => $3) \
         WHERE id = $1 AND enabled AND (poller_owner IS NULL OR poller_owner = $2 OR poller_lease_until < now()) \
         RETURNING config_version, poll_offset",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<SqlUuid, _>(owner)
    .bind::<diesel::sql_types::Double, _>(lease_seconds as f64)
    .get_result(conn)
    .await
    .optional()?;
    Ok(got.map(|g| (g.config_version, g.poll_offset)))
}

/// Renews a held lease; false when it is lost (taken over, the row off or gone, or its
/// config changed since `version`: the poller restarts with the new one).
pub async fn renew_poller(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    owner: Uuid,
    version: i32,
    lease_seconds: i64,
) -> Result<bool> {
    let n = diesel::sql_query(
        "UPDATE workspace_channels SET poller_lease_until = now() + make_interval(secs => $4) \
         WHERE id = $1 AND poller_owner = $2 AND config_version = $3 AND enabled",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<SqlUuid, _>(owner)
    .bind::<Int4, _>(version)
    .bind::<diesel::sql_types::Double, _>(lease_seconds as f64)
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// Holds rows' poller leases for `holder` (Discover, which must be the bot's only reader for
/// a moment): their pollers lose their next renewal and stop.
pub async fn fence_pollers(conn: &mut AsyncPgConnection, ids: &[Uuid], holder: Uuid, seconds: i64) -> Result<()> {
    diesel::sql_query(
        "UPDATE workspace_channels SET poller_owner = $2, poller_lease_until = now() + make_interval(secs => $3) \
         WHERE id = ANY($1)",
    )
    .bind::<diesel::sql_types::Array<SqlUuid>, _>(ids)
    .bind::<SqlUuid, _>(holder)
    .bind::<diesel::sql_types::Double, _>(seconds as f64)
    .execute(conn)
    .await?;
    Ok(())
}

/// Lets a lease go (a clean stop), so another replica need not wait for it to run out.
pub async fn release_poller(conn: &mut AsyncPgConnection, id: Uuid, owner: Uuid) -> Result<()> {
    diesel::sql_query(
        "UPDATE workspace_channels SET poller_owner = NULL, poller_lease_until = NULL \
         WHERE id = $1 AND poller_owner = $2",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<SqlUuid, _>(owner)
    .execute(conn)
    .await?;
    Ok(())
}

/// Moves the row's position past `update_id`, fenced by the holder: false when `owner` no
/// longer holds it (the update is then left to the new holder).
pub async fn advance_offset(conn: &mut AsyncPgConnection, id: Uuid, owner: Uuid, update_id: i64) -> Result<bool> {
    let n = diesel::sql_query(
        "UPDATE workspace_channels SET poll_offset = GREATEST(poll_offset, $3 + 1) \
         WHERE id = $1 AND poller_owner = $2 AND poller_lease_until > now()",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<SqlUuid, _>(owner)
    .bind::<Int8, _>(update_id)
    .execute(conn)
    .await?;
    Ok(n == 1)
}

// ----- inbound messages -----

/// An inbound message as it is taken in.
#[derive(Debug)]
pub struct NewMessage<'a> {
    pub channel_id: Uuid,
    pub workspace_id: Uuid,
    pub external_id: &'a str,
    pub a2a_message_id: &'a str,
    pub chat_id: &'a str,
    pub user_id: &'a str,
    pub username: &'a str,
    pub text: &'a str,
    pub reply_context: &'a Value,
    pub status: ChannelMessageStatus,
}

/// Takes a message in: its row id, or `None` when this vendor id was taken in before (a
/// vendor's retry, a second poller).
pub async fn take_in(conn: &mut AsyncPgConnection, m: NewMessage<'_>) -> Result<Option<Uuid>> {
    #[derive(diesel::QueryableByName)]
    struct Id {
        #[diesel(sql_type = SqlUuid)]
        id: Uuid,
    }
    let got: Option<Id> = diesel::sql_query(
        "INSERT INTO channel_messages (channel_id, workspace_id, external_id, a2a_message_id, chat_id, user_id, \
         username, text, reply_context, status) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind::<SqlUuid, _>(m.channel_id)
    .bind::<SqlUuid, _>(m.workspace_id)
    .bind::<Text, _>(m.external_id)
    .bind::<Text, _>(m.a2a_message_id)
    .bind::<Text, _>(m.chat_id)
    .bind::<Text, _>(m.user_id)
    .bind::<Text, _>(m.username)
    .bind::<Text, _>(m.text)
    .bind::<Jsonb, _>(m.reply_context)
    .bind::<Text, _>(m.status.as_str())
    .get_result(conn)
    .await
    .optional()?;
    Ok(got.map(|g| g.id))
}

/// Moves a message on; a final status is never left (a late answer after a failure is
/// dropped). False when the move did not apply.
pub async fn set_status(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    status: ChannelMessageStatus,
    reply: Option<&str>,
    error: Option<&str>,
) -> Result<bool> {
    let n = diesel::sql_query(
        "UPDATE channel_messages SET status = $2, reply = COALESCE($3, reply), error = $4, updated_at = now(), \
         attempts = attempts + CASE WHEN $2 = 'answered' THEN 0 ELSE 1 END \
         WHERE id = $1 AND status NOT IN ('replied', 'failed', 'dropped')",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<Text, _>(status.as_str())
    .bind::<Nullable<Text>, _>(reply)
    .bind::<Nullable<Text>, _>(error)
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// A message waiting for its reply, with where the reply goes.
#[derive(Debug, Clone, diesel::QueryableByName)]
pub struct Pending {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub channel_id: Uuid,
    #[diesel(sql_type = Text)]
    pub chat_id: String,
    #[diesel(sql_type = Text)]
    pub username: String,
    #[diesel(sql_type = Text)]
    pub text: String,
    #[diesel(sql_type = Jsonb)]
    pub reply_context: Value,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub reply: Option<String>,
}

impl Pending {
    pub fn status(&self) -> Result<ChannelMessageStatus> {
        ChannelMessageStatus::parse(&self.status).map_err(|e| ServiceError::internal("reading a channel message", e))
    }
}

const PENDING: &str = "id, channel_id, chat_id, username, text, reply_context, status, reply";

/// The message the agent knows by this messageId.
pub async fn by_a2a_id(conn: &mut AsyncPgConnection, a2a_message_id: &str) -> Result<Option<Pending>> {
    Ok(diesel::sql_query(format!(
        "SELECT {PENDING} FROM channel_messages WHERE a2a_message_id = $1"
    ))
    .bind::<Text, _>(a2a_message_id)
    .get_result(conn)
    .await
    .optional()?)
}

/// Answers whose reply has not gone out for `older_than_seconds` (the replica that had them
/// stopped), oldest first.
pub async fn unsent(conn: &mut AsyncPgConnection, older_than_seconds: i64, limit: i64) -> Result<Vec<Pending>> {
    Ok(diesel::sql_query(format!(
        "SELECT {PENDING} FROM channel_messages WHERE status = 'answered' \
         AND updated_at < now() - make_interval(secs => $1) ORDER BY updated_at LIMIT $2"
    ))
    .bind::<diesel::sql_types::Double, _>(older_than_seconds as f64)
    .bind::<Int8, _>(limit)
    .load(conn)
    .await?)
}

/// One entry of a chat's history.
#[derive(Debug, Clone, diesel::QueryableByName)]
pub struct HistoryEntry {
    #[diesel(sql_type = Text)]
    pub username: String,
    #[diesel(sql_type = Text)]
    pub text: String,
    #[diesel(sql_type = Text)]
    pub reply: String,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: OffsetDateTime,
}

/// The chat's last answered messages within [`HISTORY_HOURS`], newest first (as the original's
/// Redis list).
pub async fn history(conn: &mut AsyncPgConnection, channel_id: Uuid, chat_id: &str) -> Result<Vec<HistoryEntry>> {
    Ok(diesel::sql_query(
        "SELECT username, text, COALESCE(reply, '') AS reply, created_at FROM channel_messages \
         WHERE channel_id = $1 AND chat_id = $2 AND status = 'replied' AND in_history \
         AND created_at > now() - make_interval(hours => $3) ORDER BY created_at DESC LIMIT $4",
    )
    .bind::<SqlUuid, _>(channel_id)
    .bind::<Text, _>(chat_id)
    .bind::<Int4, _>(HISTORY_HOURS as i32)
    .bind::<Int8, _>(HISTORY_ENTRIES)
    .load(conn)
    .await?)
}

/// `/reset`: the chat's messages so far are left out of its history.
pub async fn reset_history(conn: &mut AsyncPgConnection, channel_id: Uuid, chat_id: &str) -> Result<()> {
    diesel::sql_query(
        "UPDATE channel_messages SET in_history = false WHERE channel_id = $1 AND chat_id = $2 AND in_history",
    )
    .bind::<SqlUuid, _>(channel_id)
    .bind::<Text, _>(chat_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes messages older than `days` (history reads one day; the rest is for operators).
pub async fn purge(conn: &mut AsyncPgConnection, days: i32) -> Result<usize> {
    Ok(diesel::sql_query(
        "DELETE FROM channel_messages WHERE id IN (SELECT id FROM channel_messages \
         WHERE created_at < now() - make_interval(days => $1) LIMIT 10000)",
    )
    .bind::<Int4, _>(days)
    .execute(conn)
    .await?)
}

/// Queued messages whose queue item ended without an answer (dropped, expired, failed) long
/// ago are failed: nothing will answer them.
pub async fn fail_stale_queued(conn: &mut AsyncPgConnection, hours: i32) -> Result<usize> {
    Ok(diesel::sql_query(
        "UPDATE channel_messages SET status = 'failed', error = 'no answer came from the queue', updated_at = now() \
         WHERE status IN ('queued', 'received') AND updated_at < now() - make_interval(hours => $1)",
    )
    .bind::<Int4, _>(hours)
    .execute(conn)
    .await?)
}
