DELETE FROM worker_heartbeats WHERE kind = 'server';
ALTER TABLE worker_heartbeats DROP CONSTRAINT worker_heartbeats_kind_check;
ALTER TABLE worker_heartbeats ADD CONSTRAINT worker_heartbeats_kind_check
    CHECK (kind IN ('lifecycle', 'telemetry', 'alerts'));
