DROP TABLE export_cursors;
DROP INDEX telemetry_samples_id;
