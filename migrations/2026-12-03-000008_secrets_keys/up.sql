-- Secrets sealed with a key id and row-bound associated data (version 2), global secrets, and
-- no default version: an INSERT that forgets the version fails instead of mislabelling
-- ciphertext (the original's org-import bug). Version 0 = plaintext, 1 = the original's
-- AES-GCM without associated data, 2 = AES-GCM bound to its row, under `key_id`.
ALTER TABLE workspace_secrets DROP CONSTRAINT workspace_secrets_encryption_version_check;
ALTER TABLE workspace_secrets ALTER COLUMN encryption_version DROP DEFAULT;
ALTER TABLE workspace_secrets ADD COLUMN key_id TEXT;
ALTER TABLE workspace_secrets ADD CONSTRAINT workspace_secrets_sealing_check
    CHECK (encryption_version IN (0, 1, 2) AND (encryption_version = 2) = (key_id IS NOT NULL));
ALTER TABLE workspace_secrets ADD CONSTRAINT workspace_secrets_key_length_check CHECK (length(key) <= 256);

CREATE TABLE global_secrets (
    id                  UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    key                 TEXT NOT NULL UNIQUE CHECK (key ~ '^[A-Za-z_][A-Za-z0-9_]*$' AND length(key) <= 256),
    encrypted_value     BYTEA NOT NULL,
    encryption_version  SMALLINT NOT NULL,
    key_id              TEXT,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (encryption_version IN (0, 1, 2) AND (encryption_version = 2) = (key_id IS NOT NULL))
);
