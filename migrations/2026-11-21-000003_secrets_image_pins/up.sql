-- Workspace secrets, AES-256-GCM at rest (nonce(12) || ciphertext), key from
-- SECRETS_ENCRYPTION_KEY. Version 0 = plaintext (no key configured), 1 = AES-GCM.
CREATE TABLE workspace_secrets (
    id                  UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id        UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    key                 TEXT NOT NULL CHECK (key ~ '^[A-Za-z_][A-Za-z0-9_]*$'),
    encrypted_value     BYTEA NOT NULL,
    encryption_version  SMALLINT NOT NULL DEFAULT 1 CHECK (encryption_version IN (0, 1)),
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, key)
);

-- Operator-pinned image digests per runtime template; a pin wins over the runtime's image map.
CREATE TABLE runtime_image_pins (
    template_name  TEXT PRIMARY KEY CHECK (length(template_name) BETWEEN 1 AND 200),
    digest         TEXT NOT NULL CHECK (digest ~ '^sha256:[a-f0-9]{64}$'),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_by     TEXT,
    notes          TEXT
);

-- Which digest each workspace runs, so "who still runs the old digest" is one query.
ALTER TABLE workspaces ADD COLUMN runtime_image_digest TEXT;
CREATE INDEX workspaces_image_digest_idx ON workspaces (runtime_image_digest)
    WHERE runtime_image_digest IS NOT NULL;
