DROP TABLE channel_messages;
DROP TABLE workspace_channels;
ALTER TABLE a2a_queue DROP COLUMN via;
