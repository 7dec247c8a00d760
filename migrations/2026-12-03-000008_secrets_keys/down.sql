DROP TABLE global_secrets;
ALTER TABLE workspace_secrets DROP CONSTRAINT workspace_secrets_key_length_check;
ALTER TABLE workspace_secrets DROP CONSTRAINT workspace_secrets_sealing_check;
ALTER TABLE workspace_secrets DROP COLUMN key_id;
ALTER TABLE workspace_secrets ALTER COLUMN encryption_version SET DEFAULT 1;
ALTER TABLE workspace_secrets ADD CONSTRAINT workspace_secrets_encryption_version_check CHECK (encryption_version IN (0, 1));
