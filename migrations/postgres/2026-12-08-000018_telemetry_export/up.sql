-- The telemetry export to time-series databases (remote write): a cursor per target, and on
-- PostgreSQL the order it follows.
--
-- Sample ids cannot order an export here: they come from a sequence with CACHE 1000, so each
-- connection draws them a thousand at a time, and a sample committed now may hold a smaller id
-- than one committed an hour ago. What orders commits without gaps is the transaction: every
-- sample is stamped with its (top-level) transaction's id, and an exporter reads only below
-- the oldest transaction still running (pg_snapshot_xmin of the current snapshot), where no
-- row can appear any more. A transaction's rows are exported together.
--
-- Rows stored before this migration are stamped 0 and are not exported (adding the column with
-- a constant default changes no row, however large the table).
ALTER TABLE telemetry_samples ADD COLUMN txid BIGINT NOT NULL DEFAULT 0;
ALTER TABLE telemetry_samples ALTER COLUMN txid SET DEFAULT (pg_current_xact_id()::text::bigint);
-- A transaction stores thousands of samples under one id: the index deduplicates them into a
-- few posting lists, so it costs little to keep.
CREATE INDEX telemetry_samples_txid ON telemetry_samples (txid);

CREATE TABLE export_cursors (
    -- The target's URL (credentials are never part of it).
    target TEXT PRIMARY KEY,
    -- The last exported position: a transaction id here, a sample id on SQLite.
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
