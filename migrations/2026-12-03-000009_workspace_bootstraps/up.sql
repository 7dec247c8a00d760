-- One-time bootstrap codes for backends whose launch parameters are readable through the
-- provider's API (EC2 user-data): the instance gets only the code, and exchanges it once, before
-- it expires, for its secret environment (token included), sealed here meanwhile.
CREATE TABLE workspace_bootstraps (
    code_hash           BYTEA PRIMARY KEY,
    workspace_id        UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    sealed_env          BYTEA NOT NULL,
    encryption_version  SMALLINT NOT NULL,
    key_id              TEXT,
    expires_at          TIMESTAMPTZ NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (encryption_version IN (0, 2) AND (encryption_version = 2) = (key_id IS NOT NULL))
);
CREATE INDEX workspace_bootstraps_workspace_idx ON workspace_bootstraps (workspace_id);
