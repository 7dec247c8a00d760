-- Cron schedules: a prompt sent to a workspace's agent at the instants a five-field cron
-- expression names in an IANA timezone. The original's table (015, 022, 032), with two
-- differences: `name` has no empty default (an unnamed schedule gets a generated name, so a
-- second one is not a unique-violation 500), and the due index leads with `next_run_at` for
-- the claim, which takes due rows with FOR UPDATE SKIP LOCKED and moves `next_run_at` on in
-- the same transaction, so each slot fires once across replicas. While a slot is being fired
-- the row holds it (`firing_slot`) under a lease (`firing_until`): a replica that dies
-- mid-fire leaves the lease to run out, and the next claim fires that slot again with the
-- same messageId, so no slot is lost and an agent can tell a repeat.
CREATE TABLE workspace_schedules (
    id                     UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id           UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name                   TEXT NOT NULL,
    cron_expr              TEXT NOT NULL,
    timezone               TEXT NOT NULL DEFAULT 'UTC',
    prompt                 TEXT NOT NULL,
    enabled                BOOLEAN NOT NULL DEFAULT true,
    last_run_at            TIMESTAMPTZ,
    next_run_at            TIMESTAMPTZ,
    run_count              INTEGER NOT NULL DEFAULT 0,
    last_status            TEXT CHECK (last_status IN ('ok', 'error', 'skipped', 'stale')),
    last_error             TEXT,
    source                 TEXT NOT NULL DEFAULT 'runtime' CHECK (source IN ('template', 'runtime')),
    consecutive_empty_runs INTEGER NOT NULL DEFAULT 0,
    firing_slot            TIMESTAMPTZ,
    firing_until           TIMESTAMPTZ,
    created_at             TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at             TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, name)
);
CREATE INDEX workspace_schedules_due ON workspace_schedules (next_run_at) WHERE enabled;
-- A runtime that runs its own scheduler says so in its heartbeats
-- (`runtime_metadata.capabilities.scheduler`); the platform then does not fire that
-- workspace's schedules (it only moves their slots on), so the two never double up. Kept on
-- the row rather than in one replica's memory, so a replica that just started knows it too.
ALTER TABLE workspaces ADD COLUMN native_scheduler BOOLEAN NOT NULL DEFAULT false;
CREATE INDEX workspace_schedules_firing ON workspace_schedules (firing_until) WHERE firing_slot IS NOT NULL;
