-- Alerts (issue 27). Times are microseconds since the epoch.

-- Each deployment's rules, as JSON (netorch_domain::AlertRules); '{}' is the defaults.
ALTER TABLE deployments ADD COLUMN alert_rules TEXT NOT NULL DEFAULT '{}';

-- One row per firing of one condition (a rule on a node, or on a deployment's fleet). No
-- foreign key: the history outlives its deployment, kept --keep-alerts-days.
CREATE TABLE alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    fingerprint TEXT NOT NULL,
    deployment_id BIGINT NOT NULL,
    node_id BIGINT,
    rule TEXT NOT NULL,
    alertname TEXT NOT NULL,
    severity TEXT NOT NULL CHECK (severity IN ('critical', 'warning', 'info')),
    state TEXT NOT NULL CHECK (state IN ('pending', 'firing', 'resolved')),
    labels TEXT NOT NULL,
    annotations TEXT NOT NULL,
    active_since BIGINT NOT NULL,
    starts_at BIGINT,
    ends_at BIGINT,
    clear_since BIGINT,
    acknowledged_by TEXT,
    acknowledged_at BIGINT,
    ack_comment TEXT,
    -- The active silences matching its labels, a JSON array of ids; '[]' when none.
    silenced_by TEXT NOT NULL DEFAULT '[]',
    updated_at BIGINT NOT NULL
);
-- At most one unresolved alert per condition: a second evaluation of the same moment cannot
-- open another.
CREATE UNIQUE INDEX alerts_one_open ON alerts (fingerprint) WHERE state <> 'resolved';
CREATE INDEX alerts_deployment ON alerts (deployment_id, id);
CREATE INDEX alerts_fingerprint ON alerts (fingerprint, id);
CREATE INDEX alerts_resolved ON alerts (ends_at) WHERE state = 'resolved';

CREATE TABLE silences (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    -- JSON array of {name, value, is_regex, is_equal}.
    matchers TEXT NOT NULL,
    starts_at BIGINT NOT NULL,
    ends_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    comment TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expired_by TEXT,
    -- Whether its SILENCE_EXPIRED event is written (by an early expiry, or by the alerts loop
    -- once it ends).
    expiry_recorded BOOLEAN NOT NULL DEFAULT FALSE,
    -- Equal for one expired before it started.
    CHECK (ends_at >= starts_at)
);
CREATE INDEX silences_open ON silences (ends_at) WHERE NOT expiry_recorded;

-- Which collection slot of the alerts loop each deployment was last evaluated for, and who is
-- evaluating it now (until when): the evaluation and this row's update commit together, so a
-- slot's state changes are applied once whatever the number of workers.
CREATE TABLE alert_evaluations (
    deployment_id BIGINT PRIMARY KEY REFERENCES deployments (id) ON DELETE CASCADE,
    evaluated_slot BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT
);

-- Where alerts are told (managed by admins): Alertmanager, a signed webhook, PagerDuty. The
-- secret (the webhook's signing key, PagerDuty's routing key) is never returned by the API.
CREATE TABLE alert_receivers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('alertmanager', 'webhook', 'pagerduty')),
    url TEXT NOT NULL,
    secret TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    -- Alertmanager: when the firing alerts were last sent again (it resolves what it stops
    -- hearing about).
    resent_at BIGINT
);

-- The durable outbox: each alert change that must be told, per receiver, written in the
-- transaction of the change; delivered at least once, in order per receiver and alert.
CREATE TABLE notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    receiver_id BIGINT NOT NULL REFERENCES alert_receivers (id) ON DELETE CASCADE,
    alert_id BIGINT NOT NULL,
    fingerprint TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('firing', 'resolved', 'acknowledged')),
    state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    delivered_at BIGINT,
    -- A worker delivering it now, until when.
    lease_until BIGINT
);
CREATE INDEX notifications_pending ON notifications (next_attempt_at) WHERE state = 'pending';
CREATE INDEX notifications_alert ON notifications (alert_id, receiver_id);
CREATE INDEX notifications_state ON notifications (state, id);

-- The alerts loop's heartbeats: SQLite cannot change a CHECK, so the table is rebuilt.
CREATE TABLE worker_heartbeats_new (
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('lifecycle', 'telemetry', 'alerts')),
    interval_ms BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    last_heartbeat BIGINT NOT NULL,
    stopped_at BIGINT,
    PRIMARY KEY (name, kind)
);
INSERT INTO worker_heartbeats_new (name, kind, interval_ms, started_at, last_heartbeat, stopped_at)
    SELECT name, kind, interval_ms, started_at, last_heartbeat, stopped_at FROM worker_heartbeats;
DROP TABLE worker_heartbeats;
ALTER TABLE worker_heartbeats_new RENAME TO worker_heartbeats;
