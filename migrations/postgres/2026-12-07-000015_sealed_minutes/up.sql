-- Sealed minutes (rollups/sealed.rs): per node and UTC hour, the one-minute rollups of the
-- hour's first `sealed_minutes` minutes packed in one row (`minutes`: per minute its index, count,
-- newest sample and per metric mean, M2, min and max), with their total `sample_count`. The
-- workers write them once those minutes are past, in 10-minute steps, so that a bottleneck
-- report over an hour of minute means reads a row or two per node instead of sixty. A reader
-- uses a node's row only while it is exact: its count plus the node's minute rollups after the
-- sealed minutes equals the node's hour rollup (a late sample for a sealed minute makes it
-- differ, and the reader reads that node's minutes instead). Partitioned by `bucket` like the
-- minute rollups and kept as long (partitions.rs creates and drops the partitions, with
-- fillfactor 50 as for every rollup table; the default partition here likewise).
CREATE TABLE telemetry_sealed_minutes (
    deployment_id BIGINT NOT NULL,
    bucket BIGINT NOT NULL,
    node_id BIGINT NOT NULL,
    sealed_minutes INTEGER NOT NULL,
    sample_count BIGINT NOT NULL,
    minutes BYTEA NOT NULL,
    PRIMARY KEY (deployment_id, bucket, node_id)
) PARTITION BY RANGE (bucket);
CREATE TABLE telemetry_sealed_minutes_default PARTITION OF telemetry_sealed_minutes DEFAULT
    WITH (fillfactor = 50);
