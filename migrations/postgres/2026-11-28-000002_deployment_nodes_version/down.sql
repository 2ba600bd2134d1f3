ALTER TABLE deployments DROP COLUMN nodes_version;
