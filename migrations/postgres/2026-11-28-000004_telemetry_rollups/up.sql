-- Telemetry rollups, kept by the transaction that stores the samples (telemetry.rs, rollups.rs):
-- per node and per deployment ("fleet"), per UTC minute and hour. Each row holds the count, the
-- newest timestamp, and per metric the mean, M2 (sum of squared deviations from the mean), min
-- and max, which merge exactly with Chan's formula, so late and out-of-order samples update their
-- bucket and reports and charts read a row per bucket instead of every sample.
--
-- Node rollups are clustered like the samples, (deployment, bucket, node): a report reads a
-- window of whole minutes of every node as one range. A second index (deployment, node, bucket)
-- serves one
-- node's series; it is written once per node and bucket, not per sample.
-- Fleet rollups also keep `nodes`, how many nodes have samples in the bucket (recounted from the
-- node rollups of the buckets a batch touched).

CREATE TABLE telemetry_minutes (
    deployment_id BIGINT NOT NULL,
    bucket BIGINT NOT NULL,
    node_id BIGINT NOT NULL,
    sample_count BIGINT NOT NULL,
    newest BIGINT NOT NULL,
    latency_mean DOUBLE PRECISION NOT NULL,
    latency_m2 DOUBLE PRECISION NOT NULL,
    latency_min DOUBLE PRECISION NOT NULL,
    latency_max DOUBLE PRECISION NOT NULL,
    throughput_mean DOUBLE PRECISION NOT NULL,
    throughput_m2 DOUBLE PRECISION NOT NULL,
    throughput_min DOUBLE PRECISION NOT NULL,
    throughput_max DOUBLE PRECISION NOT NULL,
    error_mean DOUBLE PRECISION NOT NULL,
    error_m2 DOUBLE PRECISION NOT NULL,
    error_min DOUBLE PRECISION NOT NULL,
    error_max DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (deployment_id, bucket, node_id)
);

CREATE TABLE telemetry_hours (
    deployment_id BIGINT NOT NULL,
    bucket BIGINT NOT NULL,
    node_id BIGINT NOT NULL,
    sample_count BIGINT NOT NULL,
    newest BIGINT NOT NULL,
    latency_mean DOUBLE PRECISION NOT NULL,
    latency_m2 DOUBLE PRECISION NOT NULL,
    latency_min DOUBLE PRECISION NOT NULL,
    latency_max DOUBLE PRECISION NOT NULL,
    throughput_mean DOUBLE PRECISION NOT NULL,
    throughput_m2 DOUBLE PRECISION NOT NULL,
    throughput_min DOUBLE PRECISION NOT NULL,
    throughput_max DOUBLE PRECISION NOT NULL,
    error_mean DOUBLE PRECISION NOT NULL,
    error_m2 DOUBLE PRECISION NOT NULL,
    error_min DOUBLE PRECISION NOT NULL,
    error_max DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (deployment_id, bucket, node_id)
);

CREATE TABLE fleet_telemetry_minutes (
    deployment_id BIGINT NOT NULL,
    bucket BIGINT NOT NULL,
    nodes BIGINT NOT NULL,
    sample_count BIGINT NOT NULL,
    newest BIGINT NOT NULL,
    latency_mean DOUBLE PRECISION NOT NULL,
    latency_m2 DOUBLE PRECISION NOT NULL,
    latency_min DOUBLE PRECISION NOT NULL,
    latency_max DOUBLE PRECISION NOT NULL,
    throughput_mean DOUBLE PRECISION NOT NULL,
    throughput_m2 DOUBLE PRECISION NOT NULL,
    throughput_min DOUBLE PRECISION NOT NULL,
    throughput_max DOUBLE PRECISION NOT NULL,
    error_mean DOUBLE PRECISION NOT NULL,
    error_m2 DOUBLE PRECISION NOT NULL,
    error_min DOUBLE PRECISION NOT NULL,
    error_max DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (deployment_id, bucket)
);

CREATE TABLE fleet_telemetry_hours (
    deployment_id BIGINT NOT NULL,
    bucket BIGINT NOT NULL,
    nodes BIGINT NOT NULL,
    sample_count BIGINT NOT NULL,
    newest BIGINT NOT NULL,
    latency_mean DOUBLE PRECISION NOT NULL,
    latency_m2 DOUBLE PRECISION NOT NULL,
    latency_min DOUBLE PRECISION NOT NULL,
    latency_max DOUBLE PRECISION NOT NULL,
    throughput_mean DOUBLE PRECISION NOT NULL,
    throughput_m2 DOUBLE PRECISION NOT NULL,
    throughput_min DOUBLE PRECISION NOT NULL,
    throughput_max DOUBLE PRECISION NOT NULL,
    error_mean DOUBLE PRECISION NOT NULL,
    error_m2 DOUBLE PRECISION NOT NULL,
    error_min DOUBLE PRECISION NOT NULL,
    error_max DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (deployment_id, bucket)
);

CREATE INDEX telemetry_minutes_node ON telemetry_minutes (deployment_id, node_id, bucket);
CREATE INDEX telemetry_hours_node ON telemetry_hours (deployment_id, node_id, bucket);

-- No (node_id, sampled_at) index on the samples: it cut ingest below its floor (468 - 515 k to
-- 198 - 320 k samples/s, docs/PERFORMANCE.md). One node's samples are found by seeking slot by
-- slot along the primary key instead (telemetry.rs), as on SQLite.

-- Samples stored before this migration, rolled up (M2 from sums of squares here, once).
INSERT INTO telemetry_minutes (deployment_id, bucket, node_id, sample_count, newest, latency_mean, latency_m2, latency_min, latency_max, throughput_mean, throughput_m2, throughput_min, throughput_max, error_mean, error_m2, error_min, error_max)
SELECT deployment_id, (sampled_at - ((sampled_at % 60000000) + 60000000) % 60000000) AS bucket, node_id, count(*), max(sampled_at), avg(latency_ms), CASE WHEN count(*) > 1 THEN GREATEST(0.0, sum(latency_ms * latency_ms) - sum(latency_ms) * sum(latency_ms) / count(*)) ELSE 0.0 END, min(latency_ms), max(latency_ms), avg(throughput_gbps), CASE WHEN count(*) > 1 THEN GREATEST(0.0, sum(throughput_gbps * throughput_gbps) - sum(throughput_gbps) * sum(throughput_gbps) / count(*)) ELSE 0.0 END, min(throughput_gbps), max(throughput_gbps), avg(error_rate), CASE WHEN count(*) > 1 THEN GREATEST(0.0, sum(error_rate * error_rate) - sum(error_rate) * sum(error_rate) / count(*)) ELSE 0.0 END, min(error_rate), max(error_rate)
FROM telemetry_samples GROUP BY deployment_id, bucket, node_id;
INSERT INTO telemetry_hours (deployment_id, bucket, node_id, sample_count, newest, latency_mean, latency_m2, latency_min, latency_max, throughput_mean, throughput_m2, throughput_min, throughput_max, error_mean, error_m2, error_min, error_max)
SELECT deployment_id, (sampled_at - ((sampled_at % 3600000000) + 3600000000) % 3600000000) AS bucket, node_id, count(*), max(sampled_at), avg(latency_ms), CASE WHEN count(*) > 1 THEN GREATEST(0.0, sum(latency_ms * latency_ms) - sum(latency_ms) * sum(latency_ms) / count(*)) ELSE 0.0 END, min(latency_ms), max(latency_ms), avg(throughput_gbps), CASE WHEN count(*) > 1 THEN GREATEST(0.0, sum(throughput_gbps * throughput_gbps) - sum(throughput_gbps) * sum(throughput_gbps) / count(*)) ELSE 0.0 END, min(throughput_gbps), max(throughput_gbps), avg(error_rate), CASE WHEN count(*) > 1 THEN GREATEST(0.0, sum(error_rate * error_rate) - sum(error_rate) * sum(error_rate) / count(*)) ELSE 0.0 END, min(error_rate), max(error_rate)
FROM telemetry_samples GROUP BY deployment_id, bucket, node_id;
INSERT INTO fleet_telemetry_minutes (deployment_id, bucket, nodes, sample_count, newest, latency_mean, latency_m2, latency_min, latency_max, throughput_mean, throughput_m2, throughput_min, throughput_max, error_mean, error_m2, error_min, error_max)
SELECT deployment_id, (sampled_at - ((sampled_at % 60000000) + 60000000) % 60000000) AS bucket, count(DISTINCT node_id), count(*), max(sampled_at), avg(latency_ms), CASE WHEN count(*) > 1 THEN GREATEST(0.0, sum(latency_ms * latency_ms) - sum(latency_ms) * sum(latency_ms) / count(*)) ELSE 0.0 END, min(latency_ms), max(latency_ms), avg(throughput_gbps), CASE WHEN count(*) > 1 THEN GREATEST(0.0, sum(throughput_gbps * throughput_gbps) - sum(throughput_gbps) * sum(throughput_gbps) / count(*)) ELSE 0.0 END, min(throughput_gbps), max(throughput_gbps), avg(error_rate), CASE WHEN count(*) > 1 THEN GREATEST(0.0, sum(error_rate * error_rate) - sum(error_rate) * sum(error_rate) / count(*)) ELSE 0.0 END, min(error_rate), max(error_rate)
FROM telemetry_samples GROUP BY deployment_id, bucket;
INSERT INTO fleet_telemetry_hours (deployment_id, bucket, nodes, sample_count, newest, latency_mean, latency_m2, latency_min, latency_max, throughput_mean, throughput_m2, throughput_min, throughput_max, error_mean, error_m2, error_min, error_max)
SELECT deployment_id, (sampled_at - ((sampled_at % 3600000000) + 3600000000) % 3600000000) AS bucket, count(DISTINCT node_id), count(*), max(sampled_at), avg(latency_ms), CASE WHEN count(*) > 1 THEN GREATEST(0.0, sum(latency_ms * latency_ms) - sum(latency_ms) * sum(latency_ms) / count(*)) ELSE 0.0 END, min(latency_ms), max(latency_ms), avg(throughput_gbps), CASE WHEN count(*) > 1 THEN GREATEST(0.0, sum(throughput_gbps * throughput_gbps) - sum(throughput_gbps) * sum(throughput_gbps) / count(*)) ELSE 0.0 END, min(throughput_gbps), max(throughput_gbps), avg(error_rate), CASE WHEN count(*) > 1 THEN GREATEST(0.0, sum(error_rate * error_rate) - sum(error_rate) * sum(error_rate) / count(*)) ELSE 0.0 END, min(error_rate), max(error_rate)
FROM telemetry_samples GROUP BY deployment_id, bucket;
