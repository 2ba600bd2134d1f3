-- Back to plain tables, rows kept.

-- telemetry_samples
ALTER TABLE telemetry_samples RENAME TO telemetry_samples_old;
ALTER INDEX telemetry_samples_key RENAME TO telemetry_samples_key_old;
CREATE TABLE telemetry_samples (LIKE telemetry_samples_old INCLUDING DEFAULTS);
ALTER TABLE telemetry_samples ADD CONSTRAINT telemetry_samples_key PRIMARY KEY (deployment_id, sampled_at, node_id);
INSERT INTO telemetry_samples SELECT * FROM telemetry_samples_old;
ALTER SEQUENCE telemetry_samples_id_seq OWNED BY telemetry_samples.id;
DROP TABLE telemetry_samples_old;

-- telemetry_minutes
ALTER TABLE telemetry_minutes RENAME TO telemetry_minutes_old;
ALTER INDEX telemetry_minutes_pkey RENAME TO telemetry_minutes_pkey_old;
ALTER INDEX telemetry_minutes_node RENAME TO telemetry_minutes_node_old;
CREATE TABLE telemetry_minutes (LIKE telemetry_minutes_old INCLUDING DEFAULTS);
ALTER TABLE telemetry_minutes ADD CONSTRAINT telemetry_minutes_pkey PRIMARY KEY (deployment_id, bucket, node_id);
CREATE INDEX telemetry_minutes_node ON telemetry_minutes (deployment_id, node_id, bucket);
INSERT INTO telemetry_minutes SELECT * FROM telemetry_minutes_old;
DROP TABLE telemetry_minutes_old;

-- telemetry_hours
ALTER TABLE telemetry_hours RENAME TO telemetry_hours_old;
ALTER INDEX telemetry_hours_pkey RENAME TO telemetry_hours_pkey_old;
ALTER INDEX telemetry_hours_node RENAME TO telemetry_hours_node_old;
CREATE TABLE telemetry_hours (LIKE telemetry_hours_old INCLUDING DEFAULTS);
ALTER TABLE telemetry_hours ADD CONSTRAINT telemetry_hours_pkey PRIMARY KEY (deployment_id, bucket, node_id);
CREATE INDEX telemetry_hours_node ON telemetry_hours (deployment_id, node_id, bucket);
INSERT INTO telemetry_hours SELECT * FROM telemetry_hours_old;
DROP TABLE telemetry_hours_old;

-- fleet_telemetry_minutes
ALTER TABLE fleet_telemetry_minutes RENAME TO fleet_telemetry_minutes_old;
ALTER INDEX fleet_telemetry_minutes_pkey RENAME TO fleet_telemetry_minutes_pkey_old;
CREATE TABLE fleet_telemetry_minutes (LIKE fleet_telemetry_minutes_old INCLUDING DEFAULTS);
ALTER TABLE fleet_telemetry_minutes ADD CONSTRAINT fleet_telemetry_minutes_pkey PRIMARY KEY (deployment_id, bucket);
INSERT INTO fleet_telemetry_minutes SELECT * FROM fleet_telemetry_minutes_old;
DROP TABLE fleet_telemetry_minutes_old;

-- fleet_telemetry_hours
ALTER TABLE fleet_telemetry_hours RENAME TO fleet_telemetry_hours_old;
ALTER INDEX fleet_telemetry_hours_pkey RENAME TO fleet_telemetry_hours_pkey_old;
CREATE TABLE fleet_telemetry_hours (LIKE fleet_telemetry_hours_old INCLUDING DEFAULTS);
ALTER TABLE fleet_telemetry_hours ADD CONSTRAINT fleet_telemetry_hours_pkey PRIMARY KEY (deployment_id, bucket);
INSERT INTO fleet_telemetry_hours SELECT * FROM fleet_telemetry_hours_old;
DROP TABLE fleet_telemetry_hours_old;
