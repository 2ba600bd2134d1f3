-- Scaling (docs/API.md "Scaling"): a deployment scaled down decommissions its newest nodes
-- through the DECOMMISSIONING state until the lifecycle worker removes them.
ALTER TABLE deployments ADD COLUMN decommissioning_nodes BIGINT NOT NULL DEFAULT 0;
-- SQLite cannot change a CHECK constraint: the nodes table is rebuilt with the new state in
-- its list (nothing references it; its rows, ids and indexes are kept).
CREATE TEMP TABLE nodes_sequence AS SELECT seq FROM sqlite_sequence WHERE name = 'nodes';
CREATE TABLE nodes_rebuilt (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    deployment_id BIGINT NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    state TEXT NOT NULL
        CHECK (state IN ('PENDING', 'PROVISIONING', 'CONFIGURING', 'RUNNING', 'FAILED',
            'DECOMMISSIONING')),
    hostname TEXT,
    ip_address TEXT UNIQUE,
    attempt INTEGER NOT NULL DEFAULT 0,
    failure_reason TEXT,
    version BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    state_changed_at BIGINT NOT NULL,
    check_after BIGINT,
    UNIQUE (deployment_id, name)
);
INSERT INTO nodes_rebuilt (id, deployment_id, name, state, hostname, ip_address, attempt,
        failure_reason, version, created_at, updated_at, state_changed_at, check_after)
    SELECT id, deployment_id, name, state, hostname, ip_address, attempt, failure_reason,
        version, created_at, updated_at, state_changed_at, check_after
    FROM nodes;
DROP TABLE nodes;
ALTER TABLE nodes_rebuilt RENAME TO nodes;
CREATE INDEX nodes_check_after ON nodes (check_after) WHERE check_after IS NOT NULL;
CREATE INDEX nodes_running ON nodes (id) WHERE state = 'RUNNING';
CREATE INDEX nodes_pending ON nodes (deployment_id, id) WHERE state = 'PENDING';
-- The new table's AUTOINCREMENT counter starts from its highest id: put back the old one, so
-- that the ids of nodes already deleted are never given again.
UPDATE sqlite_sequence
    SET seq = MAX(seq, COALESCE((SELECT seq FROM nodes_sequence), 0))
    WHERE name = 'nodes';
DROP TABLE nodes_sequence;
