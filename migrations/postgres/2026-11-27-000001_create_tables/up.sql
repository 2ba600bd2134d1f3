-- Timestamps are BIGINT microseconds since the Unix epoch, UTC, in both backends: one portable
-- schema, exact ordering, and no text formatting on the telemetry ingest path.

CREATE TABLE deployments (
    id BIGSERIAL PRIMARY KEY,
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
    id BIGSERIAL PRIMARY KEY,
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

-- No foreign keys here on purpose (see the SQLite migration). One index only, the primary key,
-- which serves uniqueness of (node, timestamp) and every query: `id` is drawn from a sequence
-- for the API but nothing looks a sample up by it, and a second index would cost a third of
-- the ingest rate.
CREATE SEQUENCE telemetry_samples_id_seq CACHE 1000;
CREATE TABLE telemetry_samples (
    id BIGINT NOT NULL DEFAULT nextval('telemetry_samples_id_seq'),
    deployment_id BIGINT NOT NULL,
    node_id BIGINT NOT NULL,
    sampled_at BIGINT NOT NULL,
    latency_ms DOUBLE PRECISION NOT NULL,
    throughput_gbps DOUBLE PRECISION NOT NULL,
    error_rate DOUBLE PRECISION NOT NULL,
    CONSTRAINT telemetry_samples_key PRIMARY KEY (deployment_id, sampled_at, node_id)
);
ALTER SEQUENCE telemetry_samples_id_seq OWNED BY telemetry_samples.id;

-- The audit log. No foreign key: DEPLOYMENT_DELETED outlives its deployment. Transactions
-- append events last and under an advisory lock held to their commit (events.rs), so ids are
-- committed in order and a reader paging with "after id X" never steps past an event.
CREATE TABLE events (
    id BIGSERIAL PRIMARY KEY,
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
