-- Approvals: an agent asks a human (or an ancestor agent) before an action. The original's
-- table (007) with three differences: `context` is never null (an absent one is `{}`),
-- every request carries its own deadline (`expires_at`, from APPROVAL_TIMEOUT_MINUTES or a
-- shorter `timeout_seconds`) so a background loop expires it and says so, and the statuses
-- are the ones this platform writes (`expired` and `withdrawn` instead of the never-written
-- `escalated`). `decided_by` says who: `human` (or the name the operator gave), a deciding
-- ancestor's workspace id, `auto-expired`, or the requester for a withdrawal.
CREATE TABLE approval_requests (
    id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    task_id      TEXT NOT NULL DEFAULT '',
    action       TEXT NOT NULL,
    reason       TEXT NOT NULL DEFAULT '',
    context      JSONB NOT NULL DEFAULT '{}'::jsonb,
    status       TEXT NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'approved', 'denied', 'expired', 'withdrawn')),
    decided_by   TEXT,
    decided_at   TIMESTAMPTZ,
    expires_at   TIMESTAMPTZ NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX approval_requests_workspace ON approval_requests (workspace_id, created_at DESC);
CREATE INDEX approval_requests_pending ON approval_requests (expires_at) WHERE status = 'pending';
