DROP TABLE workspace_seeds;
