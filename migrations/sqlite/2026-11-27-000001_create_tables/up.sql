-- Timestamps are BIGINT microseconds since the Unix epoch, UTC, in both backends: one portable
-- schema, exact ordering, and no text formatting on the telemetry ingest path.

CREATE TABLE deployments (
    id INTEGER PRIMARY KEY AUTOINCREMENT, -- AUTOINCREMENT: a deleted deployment's id is never reused
    name TEXT NOT NULL,
    description TEXT,
    target_node_count INTEGER NOT NULL CHECK (target_node_count >= 1),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
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

-- No foreign keys here on purpose: checking two parents per row would tax the ingest path, the
-- repository validates node ownership before it writes, and deleting a deployment deletes its
-- samples explicitly. The one index serves both the uniqueness of (node, timestamp) (a node
-- belongs to exactly one deployment) and every query, which always names the deployment and
-- usually a time range. Samples arrive in time order, so it grows at its right edge.
CREATE TABLE telemetry_samples (
    id INTEGER PRIMARY KEY,
    deployment_id BIGINT NOT NULL,
    node_id BIGINT NOT NULL,
    sampled_at BIGINT NOT NULL,
    latency_ms DOUBLE PRECISION NOT NULL,
    throughput_gbps DOUBLE PRECISION NOT NULL,
    error_rate DOUBLE PRECISION NOT NULL
);
CREATE UNIQUE INDEX telemetry_samples_key ON telemetry_samples (deployment_id, sampled_at, node_id);

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
