DELETE FROM nodes WHERE state = 'DECOMMISSIONING';
ALTER TABLE nodes DROP CONSTRAINT nodes_state_check;
ALTER TABLE nodes ADD CONSTRAINT nodes_state_check
    CHECK (state IN ('PENDING', 'PROVISIONING', 'CONFIGURING', 'RUNNING', 'FAILED'));
ALTER TABLE deployments DROP COLUMN decommissioning_nodes;
