-- Timestamps are BIGINT microseconds since the Unix epoch, UTC, in both backends: one portable
-- schema, exact ordering, and no text formatting on the telemetry ingest path.

CREATE TABLE deployments (
    id INTEGER PRIMARY KEY AUTOINCREMENT, -- AUTOINCREMENT: a deleted deployment's id is never reused
    name TEXT NOT NULL,
    description TEXT,
    target_node_count INTEGER NOT NULL CHECK (target_node_count >= 1),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    -- How many of its nodes are in each state, kept by the transaction that changes a state
    -- (creation and nodes::apply_transitions, the only two), so that reading a deployment
    -- does not count its nodes.
    pending_nodes BIGINT NOT NULL DEFAULT 0,
    provisioning_nodes BIGINT NOT NULL DEFAULT 0,
    configuring_nodes BIGINT NOT NULL DEFAULT 0,
    running_nodes BIGINT NOT NULL DEFAULT 0,
    failed_nodes BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE nodes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    deployment_id BIGINT NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    state TEXT NOT NULL
        CHECK (state IN ('PENDING', 'PROVISIONING', 'CONFIGURING', 'RUNNING', 'FAILED')),
    hostname TEXT,
    ip_address TEXT UNIQUE,
    attempt INTEGER NOT NULL DEFAULT 0,
    failure_reason TEXT,
    version BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    state_changed_at BIGINT NOT NULL,
    -- When the lifecycle worker should next look at the node: set on entering a state from
    -- the provisioner's earliest completion, NULL once the node is RUNNING or FAILED.
    check_after BIGINT,
    -- Also serves every per-deployment query (state counts and filters scan the deployment's
    -- nodes through it).
    UNIQUE (deployment_id, name)
);
-- Every index here is paid for by each of the lifecycle's transitions, so there are few and
-- they are partial: the lifecycle worker's scan holds in-flight nodes only, the telemetry
-- worker's running nodes only.
CREATE INDEX nodes_check_after ON nodes (check_after) WHERE check_after IS NOT NULL;
CREATE INDEX nodes_running ON nodes (id) WHERE state = 'RUNNING';

-- Samples are clustered by their key, (deployment, time, node), in a WITHOUT ROWID table: a
-- window of a deployment's telemetry is one contiguous range of the table (the bottleneck
-- report reads a million of them in one scan), samples arrive in time order so the table
-- grows at its right edge, and there is one b-tree to write instead of a table and an index.
-- The key is unique per (node, timestamp) because a node belongs to exactly one deployment.
-- `id` comes from `id_counters` (a range reserved per batch, see telemetry.rs), since a
-- WITHOUT ROWID table has no rowid to number its rows. No foreign keys: checking two parents
-- per row would tax the ingest path, the repository validates node ownership before it
-- writes, and deleting a deployment deletes its samples explicitly.
CREATE TABLE telemetry_samples (
    deployment_id BIGINT NOT NULL,
    sampled_at BIGINT NOT NULL,
    node_id BIGINT NOT NULL,
    id BIGINT NOT NULL,
    latency_ms DOUBLE PRECISION NOT NULL,
    throughput_gbps DOUBLE PRECISION NOT NULL,
    error_rate DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (deployment_id, sampled_at, node_id)
) WITHOUT ROWID;

-- Id sequences for tables without a rowid.
CREATE TABLE id_counters (
    name TEXT PRIMARY KEY NOT NULL,
    next_id BIGINT NOT NULL
);
INSERT INTO id_counters (name, next_id) VALUES ('telemetry_samples', 1);

-- The audit log. No foreign key: DEPLOYMENT_DELETED outlives its deployment.
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    deployment_id BIGINT,
    node_id BIGINT,
    event_type TEXT NOT NULL,
    message TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL
);
CREATE INDEX events_deployment ON events (deployment_id, id);

-- One row per worker process and kind; /health reads it.
CREATE TABLE worker_heartbeats (
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('lifecycle', 'telemetry')),
    interval_ms BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    last_heartbeat BIGINT NOT NULL,
    PRIMARY KEY (name, kind)
);
