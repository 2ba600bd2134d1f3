-- Samples a collector has sent part of (ingest.rs): Prometheus remote write, line protocol and
-- OTLP carry a node's three metrics as separate series, and a sender may put them in different
-- requests (Prometheus shards series across its queues). A reading whose metrics have not all
-- arrived waits here, keyed like a sample, its missing metrics NULL; the request that brings the
-- last one moves it into telemetry_samples. The workers delete what waited longer than the
-- ingest's wait (counted as refused, reason `incomplete`). `protocol` names the sender's
-- protocol for that count.
CREATE TABLE telemetry_partials (
    node_id BIGINT NOT NULL,
    sampled_at BIGINT NOT NULL,
    deployment_id BIGINT NOT NULL,
    latency_ms DOUBLE,
    throughput_gbps DOUBLE,
    error_rate DOUBLE,
    protocol TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (node_id, sampled_at)
);
CREATE INDEX telemetry_partials_received ON telemetry_partials (received_at);
CREATE INDEX telemetry_partials_deployment ON telemetry_partials (deployment_id);
