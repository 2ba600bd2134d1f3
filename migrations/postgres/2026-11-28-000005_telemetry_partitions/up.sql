-- PostgreSQL only: the samples and the four rollup tables become partitioned by range of their
-- time column (`sampled_at`, `bucket`, microseconds since the epoch), so that expiry drops whole
-- partitions instead of deleting rows (partitions.rs). Workers create the partitions, at fixed
-- epoch-aligned widths (an hour of samples, a day of minute rollups, 30 days of hour rollups),
-- ahead of time; a DEFAULT partition holds what no partition covers (rows stored before this
-- migration, until a worker moves them; timestamps far from now), and is expired row by row.
-- Each table is rebuilt under its own name with the same columns, keys and indexes.

-- telemetry_samples
ALTER TABLE telemetry_samples RENAME TO telemetry_samples_old;
ALTER INDEX telemetry_samples_key RENAME TO telemetry_samples_key_old;
CREATE TABLE telemetry_samples (LIKE telemetry_samples_old INCLUDING DEFAULTS) PARTITION BY RANGE (sampled_at);
ALTER TABLE telemetry_samples ADD CONSTRAINT telemetry_samples_key PRIMARY KEY (deployment_id, sampled_at, node_id);
CREATE TABLE telemetry_samples_default PARTITION OF telemetry_samples DEFAULT;
INSERT INTO telemetry_samples SELECT * FROM telemetry_samples_old;
ALTER SEQUENCE telemetry_samples_id_seq OWNED BY telemetry_samples.id;
DROP TABLE telemetry_samples_old;

-- telemetry_minutes
ALTER TABLE telemetry_minutes RENAME TO telemetry_minutes_old;
ALTER INDEX telemetry_minutes_pkey RENAME TO telemetry_minutes_pkey_old;
ALTER INDEX telemetry_minutes_node RENAME TO telemetry_minutes_node_old;
CREATE TABLE telemetry_minutes (LIKE telemetry_minutes_old INCLUDING DEFAULTS) PARTITION BY RANGE (bucket);
ALTER TABLE telemetry_minutes ADD CONSTRAINT telemetry_minutes_pkey PRIMARY KEY (deployment_id, bucket, node_id);
CREATE INDEX telemetry_minutes_node ON telemetry_minutes (deployment_id, node_id, bucket);
CREATE TABLE telemetry_minutes_default PARTITION OF telemetry_minutes DEFAULT;
INSERT INTO telemetry_minutes SELECT * FROM telemetry_minutes_old;
DROP TABLE telemetry_minutes_old;

-- telemetry_hours
ALTER TABLE telemetry_hours RENAME TO telemetry_hours_old;
ALTER INDEX telemetry_hours_pkey RENAME TO telemetry_hours_pkey_old;
ALTER INDEX telemetry_hours_node RENAME TO telemetry_hours_node_old;
CREATE TABLE telemetry_hours (LIKE telemetry_hours_old INCLUDING DEFAULTS) PARTITION BY RANGE (bucket);
ALTER TABLE telemetry_hours ADD CONSTRAINT telemetry_hours_pkey PRIMARY KEY (deployment_id, bucket, node_id);
CREATE INDEX telemetry_hours_node ON telemetry_hours (deployment_id, node_id, bucket);
CREATE TABLE telemetry_hours_default PARTITION OF telemetry_hours DEFAULT;
INSERT INTO telemetry_hours SELECT * FROM telemetry_hours_old;
DROP TABLE telemetry_hours_old;

-- fleet_telemetry_minutes
ALTER TABLE fleet_telemetry_minutes RENAME TO fleet_telemetry_minutes_old;
ALTER INDEX fleet_telemetry_minutes_pkey RENAME TO fleet_telemetry_minutes_pkey_old;
CREATE TABLE fleet_telemetry_minutes (LIKE fleet_telemetry_minutes_old INCLUDING DEFAULTS) PARTITION BY RANGE (bucket);
ALTER TABLE fleet_telemetry_minutes ADD CONSTRAINT fleet_telemetry_minutes_pkey PRIMARY KEY (deployment_id, bucket);
CREATE TABLE fleet_telemetry_minutes_default PARTITION OF fleet_telemetry_minutes DEFAULT;
INSERT INTO fleet_telemetry_minutes SELECT * FROM fleet_telemetry_minutes_old;
DROP TABLE fleet_telemetry_minutes_old;

-- fleet_telemetry_hours
ALTER TABLE fleet_telemetry_hours RENAME TO fleet_telemetry_hours_old;
ALTER INDEX fleet_telemetry_hours_pkey RENAME TO fleet_telemetry_hours_pkey_old;
CREATE TABLE fleet_telemetry_hours (LIKE fleet_telemetry_hours_old INCLUDING DEFAULTS) PARTITION BY RANGE (bucket);
ALTER TABLE fleet_telemetry_hours ADD CONSTRAINT fleet_telemetry_hours_pkey PRIMARY KEY (deployment_id, bucket);
CREATE TABLE fleet_telemetry_hours_default PARTITION OF fleet_telemetry_hours DEFAULT;
INSERT INTO fleet_telemetry_hours SELECT * FROM fleet_telemetry_hours_old;
DROP TABLE fleet_telemetry_hours_old;
