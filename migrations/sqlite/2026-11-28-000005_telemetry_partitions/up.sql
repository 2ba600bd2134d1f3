-- PostgreSQL partitions its telemetry tables by time in this version; SQLite has no
-- partitioning and expires rows in chunks (retention.rs). Kept so both backends share versions.
SELECT 1;
