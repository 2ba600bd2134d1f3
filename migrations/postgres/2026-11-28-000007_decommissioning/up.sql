-- Scaling (docs/API.md "Scaling"): a deployment scaled down decommissions its newest nodes
-- through the DECOMMISSIONING state until the lifecycle worker removes them.
ALTER TABLE deployments ADD COLUMN decommissioning_nodes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE nodes DROP CONSTRAINT nodes_state_check;
ALTER TABLE nodes ADD CONSTRAINT nodes_state_check
    CHECK (state IN ('PENDING', 'PROVISIONING', 'CONFIGURING', 'RUNNING', 'FAILED',
        'DECOMMISSIONING'));
