DROP INDEX workspaces_image_digest_idx;
ALTER TABLE workspaces DROP COLUMN runtime_image_digest;
DROP TABLE runtime_image_pins;
DROP TABLE workspace_secrets;
