DROP INDEX telemetry_samples_node;
DROP TABLE fleet_telemetry_hours;
DROP TABLE fleet_telemetry_minutes;
DROP TABLE telemetry_hours;
DROP TABLE telemetry_minutes;
