ALTER TABLE workspaces DROP COLUMN backend;
