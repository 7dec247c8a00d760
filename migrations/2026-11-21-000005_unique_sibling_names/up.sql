-- Sibling names are unique among live workspaces, so an org import can be idempotent (the
-- same name under the same parent is the same workspace) even when two imports race.
CREATE UNIQUE INDEX workspaces_sibling_name_uniq
    ON workspaces (COALESCE(parent_id, '00000000-0000-0000-0000-000000000000'::uuid), name)
    WHERE status <> 'removed';
