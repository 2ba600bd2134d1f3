-- The telemetry export to time-series databases (remote write): a cursor per target, and the
-- order it follows. SQLite commits one write transaction at a time and sample ids are reserved
-- inside it (id_counters), so id order is commit order: the export follows the ids.
CREATE INDEX telemetry_samples_id ON telemetry_samples (id);

CREATE TABLE export_cursors (
    -- The target's URL (credentials are never part of it).
    target TEXT PRIMARY KEY,
    -- The last exported position: a sample id here, a transaction id on PostgreSQL.
    position BIGINT NOT NULL,
    -- The worker exporting to it, and until when (microseconds) its lease holds.
    holder TEXT,
    lease_until BIGINT,
    -- When an exporter last found nothing left to send (microseconds): everything stored
    -- before it was sent. The lag is now minus this.
    caught_up_at BIGINT,
    -- Samples sent (each as three series' points), ever.
    exported BIGINT NOT NULL DEFAULT 0,
    -- The last failure, and when; NULL once a send succeeds.
    last_error TEXT,
    failed_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
