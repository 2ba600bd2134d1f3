DROP TABLE telemetry_sealed_minutes;
