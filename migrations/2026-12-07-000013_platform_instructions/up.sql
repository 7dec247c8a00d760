-- Platform instructions: rules the operator writes once and every agent (global) or one
-- agent (workspace) reads at boot, through GET /workspaces/:id/instructions/resolve. The
-- original's table (040) with these differences: `scope_target` is the workspace's id,
-- typed and tied to the workspace (a removed workspace's rows go with it), and absent for
-- global rows; the `team` scope the original reserved but refused is not offered; lengths
-- are counted in characters, as the CHECKs always did.
CREATE TABLE platform_instructions (
    id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    scope        TEXT NOT NULL CHECK (scope IN ('global', 'workspace')),
    scope_target UUID REFERENCES workspaces (id) ON DELETE CASCADE,
    title        TEXT NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    content      TEXT NOT NULL CHECK (char_length(content) BETWEEN 1 AND 8192),
    priority     INTEGER NOT NULL DEFAULT 0,
    enabled      BOOLEAN NOT NULL DEFAULT true,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((scope = 'global') = (scope_target IS NULL))
);
CREATE INDEX platform_instructions_enabled ON platform_instructions (scope, scope_target) WHERE enabled;
