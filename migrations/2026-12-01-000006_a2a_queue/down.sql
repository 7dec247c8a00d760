DROP TABLE workspace_token_usage;
ALTER TABLE activity_logs DROP COLUMN tool_trace;
DROP TABLE a2a_queue;
ALTER TABLE workspaces
    DROP COLUMN budget_limit,
    DROP COLUMN monthly_spend,
    DROP COLUMN idle_timeout_seconds,
    DROP COLUMN last_outbound_at,
    DROP COLUMN last_inbound_at,
    DROP COLUMN hibernation_idle_minutes;
