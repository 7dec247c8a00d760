-- What a workload's /configs starts with: the template it was made from (its id under
-- CONFIGS_DIR), or an org node's files_dir, and an org node's system prompt. The first
-- provision that succeeds seeds them and sets seeded_at; later provisions leave /configs
-- alone, so edits made through the Files API survive restarts. A workspace without a row
-- here gets `<runtime>-default` (if there is one) and a generated config.yaml.
CREATE TABLE workspace_seeds (
    workspace_id   UUID PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    template       TEXT NOT NULL DEFAULT '',
    files_dir      TEXT,
    system_prompt  TEXT,
    seeded_at      TIMESTAMPTZ,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
