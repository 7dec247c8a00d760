-- The claim reads free due slots (`enabled AND firing_slot IS NULL AND next_run_at <= now`,
-- oldest first) apart from slots whose lease ran out, so each read is an index range scan
-- whatever the statistics say. This index serves the first; `workspace_schedules_firing`
-- the second. It replaces `workspace_schedules_due`, which held slots being fired too.
CREATE INDEX workspace_schedules_due_free ON workspace_schedules (next_run_at) WHERE enabled AND firing_slot IS NULL;
DROP INDEX workspace_schedules_due;
