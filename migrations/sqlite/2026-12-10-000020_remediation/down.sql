ALTER TABLE nodes DROP COLUMN remediated_at;
ALTER TABLE nodes DROP COLUMN remediations;
ALTER TABLE deployments DROP COLUMN remediation_stopped;
ALTER TABLE deployments DROP COLUMN remediation;
