-- A worker loop that stops cleanly records when, so /health stops calling it alive at once.
ALTER TABLE worker_heartbeats ADD COLUMN stopped_at BIGINT;
