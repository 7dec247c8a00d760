-- The workspace tree. Status values mirror molecule_domain::WorkspaceStatus; a test compares
-- enum_range(NULL::workspace_status) with WorkspaceStatus::ALL.
CREATE TYPE workspace_status AS ENUM (
    'provisioning', 'online', 'offline', 'degraded', 'failed',
    'removed', 'paused', 'hibernated', 'awaiting_agent'
);

CREATE TABLE workspaces (
    id                    UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name                  TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    role                  TEXT,
    tier                  INTEGER NOT NULL DEFAULT 3 CHECK (tier BETWEEN 1 AND 4),
    status                workspace_status NOT NULL DEFAULT 'provisioning',
    runtime               TEXT NOT NULL DEFAULT 'claude-code',
    model                 TEXT,
    url                   TEXT,
    delivery_mode         TEXT CHECK (delivery_mode IN ('push', 'poll')),
    agent_card            JSONB,
    parent_id             UUID REFERENCES workspaces (id),
    instance_id           TEXT,
    last_sample_error     TEXT,
    last_heartbeat_at     TIMESTAMPTZ,
    active_tasks          INTEGER NOT NULL DEFAULT 0 CHECK (active_tasks >= 0),
    max_concurrent_tasks  INTEGER NOT NULL DEFAULT 1 CHECK (max_concurrent_tasks >= 1),
    current_task          TEXT,
    last_error_rate       DOUBLE PRECISION NOT NULL DEFAULT 0,
    uptime_seconds        BIGINT NOT NULL DEFAULT 0,
    collapsed             BOOLEAN NOT NULL DEFAULT false,
    created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (parent_id IS DISTINCT FROM id)
);

CREATE INDEX workspaces_parent_idx ON workspaces (parent_id);
CREATE INDEX workspaces_status_idx ON workspaces (status);
CREATE INDEX workspaces_instance_idx ON workspaces (instance_id) WHERE instance_id IS NOT NULL;
-- Liveness sweeps look at live workspaces by heartbeat age.
CREATE INDEX workspaces_heartbeat_idx ON workspaces (last_heartbeat_at) WHERE status IN ('online', 'degraded');
