-- A workspace's position on the original canvas (its `x`/`y`, §5.2), in the original's
-- `canvas_layouts` beside the row (its `collapsed` is a column of the row here). No row:
-- (0, 0). Removed with the workspace.
CREATE TABLE canvas_layouts (
    workspace_id UUID PRIMARY KEY REFERENCES workspaces(id) ON DELETE CASCADE,
    x DOUBLE PRECISION NOT NULL DEFAULT 0,
    y DOUBLE PRECISION NOT NULL DEFAULT 0
);
