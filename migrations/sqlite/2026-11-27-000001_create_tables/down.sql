DROP TABLE worker_heartbeats;
DROP TABLE events;
DROP TABLE id_counters;
DROP TABLE telemetry_samples;
DROP TABLE nodes;
DROP TABLE deployments;
