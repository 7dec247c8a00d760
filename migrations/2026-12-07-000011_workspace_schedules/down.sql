ALTER TABLE workspaces DROP COLUMN native_scheduler;
DROP TABLE workspace_schedules;
