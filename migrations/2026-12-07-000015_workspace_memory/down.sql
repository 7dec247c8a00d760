DROP TABLE workspace_memory;
