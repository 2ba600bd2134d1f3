ALTER TABLE worker_heartbeats DROP COLUMN stopped_at;
