DELETE FROM worker_heartbeats WHERE kind = 'server';
CREATE TABLE worker_heartbeats_old (
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('lifecycle', 'telemetry', 'alerts')),
    interval_ms BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    last_heartbeat BIGINT NOT NULL,
    stopped_at BIGINT,
    PRIMARY KEY (name, kind)
);
INSERT INTO worker_heartbeats_old SELECT name, kind, interval_ms, started_at, last_heartbeat, stopped_at FROM worker_heartbeats;
DROP TABLE worker_heartbeats;
ALTER TABLE worker_heartbeats_old RENAME TO worker_heartbeats;
