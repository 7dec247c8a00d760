-- Key/value memory (`/workspaces/:id/memory*`): the original's table (006, 023). Expired
-- rows are invisible, swept by a loop, and never count: a write to an expired key starts
-- again at version 1 (the original continued the stale counter and made a create-only write
-- on an expired key a 409).
CREATE TABLE workspace_memory (
    id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    key          TEXT NOT NULL,
    value        JSONB NOT NULL,
    expires_at   TIMESTAMPTZ,
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    version      BIGINT NOT NULL DEFAULT 1,
    UNIQUE (workspace_id, key)
);
CREATE INDEX workspace_memory_expiring ON workspace_memory (expires_at) WHERE expires_at IS NOT NULL;
