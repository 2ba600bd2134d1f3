-- Each netorch-server reports its presence as a `server` heartbeat (the rate limit's share):
-- SQLite cannot change a CHECK, so the table is rebuilt.
CREATE TABLE worker_heartbeats_new (
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('lifecycle', 'telemetry', 'alerts', 'server')),
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
