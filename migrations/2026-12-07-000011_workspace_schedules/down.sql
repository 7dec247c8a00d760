DROP TABLE workspace_schedules;
