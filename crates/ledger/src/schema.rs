//! The ledger's DDL, rendered from the domain vocabulary. Idempotent (`IF NOT EXISTS`), so an
//! embedding service can apply it at every boot.

use molecule_domain::{DelegationStatus, Vocabulary};

/// Bytes kept of task and result previews (cut on a character boundary).
pub const PREVIEW_LIMIT: usize = 4096;

/// The SQL that creates the `delegations` table and its indexes.
pub fn schema_sql() -> String {
    let all = DelegationStatus::sql_list(DelegationStatus::ALL);
    let in_flight = DelegationStatus::sql_list(DelegationStatus::IN_FLIGHT);
    let queued = DelegationStatus::Queued.as_str();
    let completed = DelegationStatus::Completed.as_str();
    format!(
        "CREATE TABLE IF NOT EXISTS delegations (
    delegation_id    TEXT PRIMARY KEY CHECK (length(delegation_id) BETWEEN 1 AND 200),
    caller_id        UUID NOT NULL,
    callee_id        UUID NOT NULL,
    task_preview     TEXT NOT NULL CHECK (octet_length(task_preview) <= {PREVIEW_LIMIT}),
    result_preview   TEXT CHECK (octet_length(result_preview) <= {PREVIEW_LIMIT}),
    error_detail     TEXT,
    status           TEXT NOT NULL DEFAULT '{queued}' CONSTRAINT delegations_status_check CHECK (status IN ({all})),
    last_heartbeat   TIMESTAMPTZ,
    deadline         TIMESTAMPTZ NOT NULL DEFAULT now() + interval '6 hours',
    retry_count      INTEGER NOT NULL DEFAULT 0 CHECK (retry_count >= 0),
    idempotency_key  TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at      TIMESTAMPTZ
);
CREATE UNIQUE INDEX IF NOT EXISTS delegations_idempotency_uniq ON delegations (caller_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS delegations_inflight_heartbeat ON delegations (last_heartbeat NULLS FIRST) WHERE status IN ({in_flight});
CREATE INDEX IF NOT EXISTS delegations_inflight_deadline ON delegations (deadline) WHERE status IN ({in_flight});
CREATE INDEX IF NOT EXISTS delegations_inflight_callee ON delegations (callee_id) WHERE status IN ({in_flight});
CREATE INDEX IF NOT EXISTS delegations_caller_created ON delegations (caller_id, created_at DESC);
CREATE INDEX IF NOT EXISTS delegations_callee_created ON delegations (callee_id, created_at DESC);
CREATE INDEX IF NOT EXISTS delegations_completed_finished ON delegations (finished_at) WHERE status = '{completed}';
"
    )
}

// The columns the ledger's cached (DSL) statements use; the rest go through `sql_query`.
diesel::table! {
    delegations (delegation_id) {
        delegation_id -> Text,
        callee_id -> Uuid,
        status -> Text,
        last_heartbeat -> Nullable<Timestamptz>,
        updated_at -> Timestamptz,
        error_detail -> Nullable<Text>,
    }
}
