-- A workspace's config blob (the original's 006) and its agent assignments (002).
--
-- `workspace_config.data` is always a JSON object (the original accepted any JSON value, so
-- an array body turned the blob into an array). `agents` keeps every assignment a workspace
-- ever had; at most one is `active` per workspace, which the partial unique index enforces
-- (the original had neither a transaction nor this index, so two racing assigns left two
-- active agents).
CREATE TABLE workspace_config (
    workspace_id UUID PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    data         JSONB NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(data) = 'object'),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE agents (
    id             UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id   UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    model          TEXT NOT NULL,
    status         TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'replaced', 'removed')),
    removed_at     TIMESTAMPTZ,
    removal_reason TEXT,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX agents_workspace ON agents (workspace_id);
CREATE UNIQUE INDEX agents_one_active ON agents (workspace_id) WHERE status = 'active';
