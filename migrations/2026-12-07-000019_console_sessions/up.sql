-- Operator console sessions. The cookie carries the session id, a 256-bit secret and an HMAC
-- over both (keyed from ADMIN_TOKEN, so rotating the token ends every session); the row keeps
-- only the secret's SHA-256, the CSRF token its forms must carry, who signed in, and when it
-- ends (`expires_at`; `revoked_at` on sign-out).
CREATE TABLE console_sessions (
    id            UUID PRIMARY KEY,
    secret_sha256 BYTEA NOT NULL CHECK (octet_length(secret_sha256) = 32),
    csrf          TEXT NOT NULL,
    actor         TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at    TIMESTAMPTZ NOT NULL,
    revoked_at    TIMESTAMPTZ
);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);
