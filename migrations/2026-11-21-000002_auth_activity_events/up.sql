-- Workspace bearer tokens: only sha256(plaintext) and an 8-char display prefix are stored.
CREATE TABLE workspace_auth_tokens (
    id            UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id  UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    token_hash    BYTEA NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    prefix        TEXT NOT NULL CHECK (length(prefix) = 8),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at  TIMESTAMPTZ,
    revoked_at    TIMESTAMPTZ
);
CREATE INDEX workspace_auth_tokens_live_idx ON workspace_auth_tokens (workspace_id) WHERE revoked_at IS NULL;

-- Per-workspace activity: A2A traffic, task updates, logs, delegation rows, and the inbox that
-- poll-mode agents read.
CREATE TABLE activity_logs (
    id               UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id     UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    activity_type    TEXT NOT NULL,
    source_id        UUID,
    target_id        UUID,
    method           TEXT,
    summary          TEXT,
    request_body     JSONB,
    response_body    JSONB,
    duration_ms      INTEGER CHECK (duration_ms >= 0),
    status           TEXT NOT NULL DEFAULT 'ok',
    error_detail     TEXT,
    idempotency_key  TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX activity_logs_workspace_idx ON activity_logs (workspace_id, created_at DESC);
CREATE INDEX activity_logs_workspace_type_idx ON activity_logs (workspace_id, activity_type, created_at DESC);
CREATE UNIQUE INDEX activity_logs_idempotency_uniq ON activity_logs (workspace_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- Persisted structure events (WORKSPACE_ONLINE, WORKSPACE_REMOVED, ...). No foreign key: the
-- history outlives a purged workspace. The bigserial id orders the stream for replay.
CREATE TABLE events (
    id            BIGSERIAL PRIMARY KEY,
    event_type    TEXT NOT NULL CHECK (event_type ~ '^[A-Z][A-Z0-9_]*$'),
    workspace_id  UUID,
    payload       JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX events_workspace_idx ON events (workspace_id, id);
CREATE INDEX events_type_idx ON events (event_type, id);
