-- Which backend provisioned the workspace (docker, local, ec2), so it is stopped through the same one.
ALTER TABLE workspaces ADD COLUMN backend TEXT;
