-- One-time console sign-in links (`cargo xtask up` prints one): the code's SHA-256, who it
-- signs in, when it stops working, and when it was used (once).
CREATE TABLE console_sign_in_links (
    code_sha256 BYTEA PRIMARY KEY CHECK (octet_length(code_sha256) = 32),
    actor       TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ
);
