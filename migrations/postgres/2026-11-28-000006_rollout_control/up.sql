-- Rollout control (docs/API.md "Rollout control"): how a deployment's nodes are started,
-- retried and timed out. NULL means "no limit", and together with max_retries 0 keeps the
-- original behaviour: every node starts at once, a failed node waits for an operator.
ALTER TABLE deployments ADD COLUMN max_in_flight INTEGER CHECK (max_in_flight >= 1);
ALTER TABLE deployments ADD COLUMN max_failure_percent DOUBLE PRECISION
    CHECK (max_failure_percent >= 0 AND max_failure_percent <= 100);
ALTER TABLE deployments ADD COLUMN max_retries INTEGER NOT NULL DEFAULT 0 CHECK (max_retries >= 0);
ALTER TABLE deployments ADD COLUMN phase_timeout_seconds INTEGER CHECK (phase_timeout_seconds >= 1);
-- Set while the rollout is paused (by an operator or by max_failure_percent).
ALTER TABLE deployments ADD COLUMN paused_at BIGINT;
-- Of failed_nodes, those with an automatic retry scheduled (their check_after is set): kept
-- with the other counters, so status and progress never count nodes.
ALTER TABLE deployments ADD COLUMN retrying_nodes BIGINT NOT NULL DEFAULT 0;
-- Pending nodes are no longer scheduled one by one: the lifecycle worker starts them per
-- deployment, lowest id first, as many as max_in_flight leaves room for, through this index.
UPDATE nodes SET check_after = NULL WHERE state = 'PENDING';
CREATE INDEX nodes_pending ON nodes (deployment_id, id) WHERE state = 'PENDING';
