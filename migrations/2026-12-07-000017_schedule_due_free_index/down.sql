CREATE INDEX workspace_schedules_due ON workspace_schedules (next_run_at) WHERE enabled;
DROP INDEX workspace_schedules_due_free;
