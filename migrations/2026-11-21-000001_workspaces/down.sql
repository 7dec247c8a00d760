DROP TABLE workspaces;
DROP TYPE workspace_status;
