-- Messaging: what the A2A proxy needs on a workspace, and the durable message queue.

-- Budget (cents): a message to a workspace whose monthly_spend reached budget_limit is refused
-- with 402. NULL budget_limit means no limit. monthly_spend comes from heartbeats.
ALTER TABLE workspaces
    ADD COLUMN budget_limit         BIGINT CHECK (budget_limit >= 0),
    ADD COLUMN monthly_spend        BIGINT NOT NULL DEFAULT 0 CHECK (monthly_spend >= 0),
    -- The heartbeat's runtime_metadata.idle_timeout_seconds (NULL: A2A_IDLE_TIMEOUT_SECONDS).
    ADD COLUMN idle_timeout_seconds INTEGER CHECK (idle_timeout_seconds > 0),
    -- The last message this workspace sent through the proxy, and the last it was sent.
    ADD COLUMN last_outbound_at     TIMESTAMPTZ,
    ADD COLUMN last_inbound_at      TIMESTAMPTZ,
    -- The idle monitor hibernates the workspace after this long without a message in or out
    -- and without an active task (NULL: never).
    ADD COLUMN hibernation_idle_minutes INTEGER CHECK (hibernation_idle_minutes > 0);

-- Statuses mirror molecule_domain::QueueStatus (a test compares the CHECK with the Rust list).
CREATE TABLE a2a_queue (
    id              UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id    UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    -- NULL: the operator/canvas.
    caller_id       UUID,
    priority        SMALLINT NOT NULL DEFAULT 50 CHECK (priority BETWEEN 0 AND 100),
    body            JSONB NOT NULL,
    method          TEXT,
    -- A2A protocol headers forwarded unchanged (A2A-Version, A2A-Extensions).
    headers         JSONB NOT NULL DEFAULT '{}',
    -- params.message.messageId: a retried send is one item while it is live.
    idempotency_key TEXT,
    -- Set when a delegation's message waits here: the drain completes that delegation.
    delegation_id   TEXT,
    status          TEXT NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'dispatched', 'completed', 'dropped', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    enqueued_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- While dispatched: the replica delivering it holds it until then; after, the reaper
    -- puts it back (the replica died mid-delivery).
    lease_until     TIMESTAMPTZ,
    dispatched_at   TIMESTAMPTZ,
    completed_at    TIMESTAMPTZ,
    expires_at      TIMESTAMPTZ NOT NULL
);

-- The drain's claim: the next live item of one workspace, priority first, then FIFO. Partial,
-- so finished rows (the bulk, until the reaper deletes them) never slow it down.
CREATE INDEX a2a_queue_claim_idx ON a2a_queue (workspace_id, priority DESC, enqueued_at)
    WHERE status = 'queued';
-- The depth (queued and in delivery) of one workspace.
CREATE INDEX a2a_queue_live_idx ON a2a_queue (workspace_id) WHERE status IN ('queued', 'dispatched');
CREATE UNIQUE INDEX a2a_queue_idempotency_uniq ON a2a_queue (workspace_id, idempotency_key)
    WHERE status IN ('queued', 'dispatched') AND idempotency_key IS NOT NULL;
CREATE INDEX a2a_queue_lease_idx ON a2a_queue (lease_until) WHERE status = 'dispatched';
CREATE INDEX a2a_queue_finished_idx ON a2a_queue (completed_at)
    WHERE status IN ('completed', 'dropped', 'failed');

-- The agent's result.metadata.tool_trace on an a2a_receive row.
ALTER TABLE activity_logs ADD COLUMN tool_trace JSONB;

-- Token usage reported in A2A answers (result.usage), per workspace and UTC day, spread over
-- 16 shards (a random one per answer) so one busy agent's answers do not queue on one row's
-- lock; readers sum the shards.
CREATE TABLE workspace_token_usage (
    workspace_id  UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    day           DATE NOT NULL,
    shard         SMALLINT NOT NULL DEFAULT 0 CHECK (shard BETWEEN 0 AND 15),
    input_tokens  BIGINT NOT NULL DEFAULT 0 CHECK (input_tokens >= 0),
    output_tokens BIGINT NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),
    calls         BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (workspace_id, day, shard)
);
