DROP INDEX nodes_pending;
UPDATE nodes SET check_after = updated_at WHERE state = 'PENDING';
UPDATE nodes SET check_after = NULL WHERE state = 'FAILED';
ALTER TABLE deployments DROP COLUMN retrying_nodes;
ALTER TABLE deployments DROP COLUMN paused_at;
ALTER TABLE deployments DROP COLUMN phase_timeout_seconds;
ALTER TABLE deployments DROP COLUMN max_retries;
ALTER TABLE deployments DROP COLUMN max_failure_percent;
ALTER TABLE deployments DROP COLUMN max_in_flight;
