-- Provisioner profiles (issue 31): which provisioner drives a deployment's nodes, chosen at
-- creation ('simulator', the workers' built-in one, for every deployment before this
-- migration), the free-form parameters its program is given (a JSON object), and a record of
-- every run of an external provisioner's program.
ALTER TABLE deployments ADD COLUMN provisioner TEXT NOT NULL DEFAULT 'simulator';
ALTER TABLE deployments ADD COLUMN provisioner_parameters TEXT NOT NULL DEFAULT '{}';

CREATE TABLE provisioner_runs (
    id BIGSERIAL PRIMARY KEY,
    node_id BIGINT NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    deployment_id BIGINT NOT NULL,
    profile TEXT NOT NULL,
    -- provision, configure or release.
    phase TEXT NOT NULL CHECK (phase IN ('provision', 'configure', 'release')),
    -- When the node entered the phase (microseconds): with the node and the phase, which of
    -- the node's passes through its phases this run is for.
    phase_started_at BIGINT NOT NULL,
    attempt INTEGER NOT NULL,
    -- Times the program was started: more than 1 after a takeover.
    starts INTEGER NOT NULL DEFAULT 1,
    -- The worker running it, until when its lease holds, and its process (host, pid, the
    -- process's start time in clock ticks since boot) so that a worker taking the run over on
    -- the same host can kill what is left of it first.
    holder TEXT NOT NULL,
    lease_until BIGINT NOT NULL,
    host TEXT,
    pid BIGINT,
    pid_started BIGINT,
    started_at BIGINT NOT NULL,
    finished_at BIGINT,
    outcome TEXT CHECK (outcome IN ('succeeded', 'failed', 'timed_out', 'cancelled')),
    exit_code INTEGER,
    message TEXT,
    address TEXT,
    stdout TEXT NOT NULL DEFAULT '',
    stderr TEXT NOT NULL DEFAULT '',
    UNIQUE (node_id, phase, phase_started_at)
);
-- The runs not finished, for renewing a holder's leases and finding expired ones.
CREATE INDEX provisioner_runs_open ON provisioner_runs (holder) WHERE outcome IS NULL;
