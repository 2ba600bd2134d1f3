DROP TABLE telemetry_partials;
