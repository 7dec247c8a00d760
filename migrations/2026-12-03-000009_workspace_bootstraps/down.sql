DROP TABLE workspace_bootstraps;
