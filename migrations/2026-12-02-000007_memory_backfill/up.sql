-- Where `workspace-server memory-backfill --apply` stopped, per source table (and workspace
-- filter), so a second run resumes instead of starting over. Rows are idempotent by id in the
-- plugin either way; this only saves the work.
CREATE TABLE memory_backfill_progress (
    source      TEXT PRIMARY KEY,
    last_id     UUID NOT NULL,
    copied      BIGINT NOT NULL DEFAULT 0,
    started_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
