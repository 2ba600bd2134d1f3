-- Each netorch-server reports its presence as a `server` heartbeat (the rate limit's share).
ALTER TABLE worker_heartbeats DROP CONSTRAINT worker_heartbeats_kind_check;
ALTER TABLE worker_heartbeats ADD CONSTRAINT worker_heartbeats_kind_check
    CHECK (kind IN ('lifecycle', 'telemetry', 'alerts', 'server'));
