DROP TABLE events;
DROP TABLE activity_logs;
DROP TABLE workspace_auth_tokens;
