ALTER TABLE workspace_schedules DROP COLUMN firing_sent_at;
