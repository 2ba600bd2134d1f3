DELETE FROM worker_heartbeats WHERE kind = 'alerts';
ALTER TABLE worker_heartbeats DROP CONSTRAINT worker_heartbeats_kind_check;
ALTER TABLE worker_heartbeats ADD CONSTRAINT worker_heartbeats_kind_check
    CHECK (kind IN ('lifecycle', 'telemetry'));
DROP TABLE notifications;
DROP TABLE alert_receivers;
DROP TABLE alert_evaluations;
DROP TABLE silences;
DROP TABLE alerts;
ALTER TABLE deployments DROP COLUMN alert_rules;
