DROP TABLE fleet_telemetry_hours;
DROP TABLE fleet_telemetry_minutes;
DROP TABLE telemetry_hours;
DROP TABLE telemetry_minutes;
