ALTER TABLE deployments DROP COLUMN telemetry_origin;
