DROP TABLE provisioner_runs;
ALTER TABLE deployments DROP COLUMN provisioner_parameters;
ALTER TABLE deployments DROP COLUMN provisioner;
