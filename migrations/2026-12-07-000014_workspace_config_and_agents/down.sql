DROP TABLE agents;
DROP TABLE workspace_config;
