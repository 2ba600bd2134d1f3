DROP TABLE export_cursors;
DROP INDEX telemetry_samples_txid;
ALTER TABLE telemetry_samples DROP COLUMN txid;
