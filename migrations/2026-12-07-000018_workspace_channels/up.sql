-- A system caller's label on a queued message (`channel:telegram`, `webhook:github`): the
-- drained delivery's activity row says who sent it, and the channels find their answers.
ALTER TABLE a2a_queue ADD COLUMN via TEXT;

-- Chat channels (the original's 016 and 024, with these differences):
-- * Sensitive fields (the adapter schema's `sensitive` ones: tokens, signing secrets, webhook
--   URLs, which embed credentials) never sit in `channel_config`: each is sealed by the
--   keyring, bound to this row and field, in `channel_secrets` {field: {v, k, b}} (version,
--   key id, base64). The original stored two of them sealed and the rest in clear.
-- * `channel_type` is CHECKed against the domain's ChannelType (a test compares the lists).
-- * `disabled_reason`: why the platform turned the row off (a revoked bot token), shown in
--   the list; cleared when the operator enables it again.
-- * The Telegram poller's lease (`poller_owner`, `poller_lease_until`) and its position
--   (`poll_offset`, the next update_id), so one replica polls each row and a takeover goes on
--   where the dead holder stopped; `config_version` is bumped by every config change, so a
--   running poller sees it and restarts.
CREATE TABLE workspace_channels (
    id                 UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id       UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    channel_type       TEXT NOT NULL CHECK (channel_type IN ('telegram', 'slack', 'lark', 'discord')),
    channel_config     JSONB NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(channel_config) = 'object'),
    channel_secrets    JSONB NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(channel_secrets) = 'object'),
    enabled            BOOLEAN NOT NULL DEFAULT true,
    allowed_users      JSONB DEFAULT '[]',
    last_message_at    TIMESTAMPTZ,
    message_count      INTEGER NOT NULL DEFAULT 0,
    channel_budget     INTEGER CHECK (channel_budget >= 0),
    disabled_reason    TEXT,
    config_version     INTEGER NOT NULL DEFAULT 1,
    poller_owner       UUID,
    poller_lease_until TIMESTAMPTZ,
    poll_offset        BIGINT NOT NULL DEFAULT 0,
    source             TEXT NOT NULL DEFAULT 'runtime' CHECK (source IN ('runtime', 'template')),
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX workspace_channels_workspace_type ON workspace_channels (workspace_id, channel_type);
CREATE INDEX workspace_channels_enabled ON workspace_channels (channel_type) WHERE enabled;

-- Every inbound chat message, from the moment it is taken in until its reply reached the chat.
-- * Deduplicated by the vendor's own id (`external_id`: Telegram's update_id, Slack's event
--   id, Discord's interaction id, Lark's event id), so a vendor's retry or a poller takeover
--   never reaches the agent twice.
-- * `a2a_message_id` is the messageId the agent receives: a reply the A2A queue delivers later
--   finds its chat through it (the original lost every queued reply).
-- * The last ten answered ones of a chat within a day are the conversation history the agent
--   is sent (the original kept it in Redis); `/reset` hides a chat's rows from it.
-- Statuses mirror molecule_domain::ChannelMessageStatus.
CREATE TABLE channel_messages (
    id             UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    channel_id     UUID NOT NULL REFERENCES workspace_channels (id) ON DELETE CASCADE,
    workspace_id   UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    external_id    TEXT NOT NULL,
    a2a_message_id TEXT NOT NULL UNIQUE,
    chat_id        TEXT NOT NULL,
    user_id        TEXT NOT NULL DEFAULT '',
    username       TEXT NOT NULL DEFAULT '',
    text           TEXT NOT NULL,
    -- What a reply needs besides the chat (Discord's interaction token).
    reply_context  JSONB NOT NULL DEFAULT '{}',
    status         TEXT NOT NULL DEFAULT 'received'
                   CHECK (status IN ('received', 'queued', 'answered', 'replied', 'failed', 'dropped')),
    reply          TEXT,
    error          TEXT,
    in_history     BOOLEAN NOT NULL DEFAULT true,
    attempts       INTEGER NOT NULL DEFAULT 0,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (channel_id, external_id)
);
CREATE INDEX channel_messages_history ON channel_messages (channel_id, chat_id, created_at DESC)
    WHERE status = 'replied' AND in_history;
-- The sweep: answers whose reply did not go out (the replica stopped), and old rows.
CREATE INDEX channel_messages_unsent ON channel_messages (updated_at) WHERE status = 'answered';
CREATE INDEX channel_messages_created ON channel_messages (created_at);
