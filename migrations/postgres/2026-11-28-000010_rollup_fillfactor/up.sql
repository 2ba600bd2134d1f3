-- Rollup rows are rewritten by every tick that touches their bucket (a minute row 12 times, an
-- hour row 720 times at the default interval). With full pages each rewrite is a new tuple on
-- another page with new index entries, and the dead versions pile up until autovacuum comes: an
-- hour rollup measured 17 KB a row. With half of each page left free, a rewrite stays on its page
-- as a HOT update (no indexed column changes) and the page's dead versions are pruned as it
-- goes: every update was HOT, the tables 5 to 40 times smaller and ticks twice as fast
-- (docs/PERFORMANCE.md). Storage parameters belong to partitions, not to the partitioned
-- parent: the default partitions and any made already get it here, new ones when the worker
-- creates them (partitions.rs). Raw samples are never updated and keep full pages.
DO $$
DECLARE
    child regclass;
BEGIN
    FOR child IN
        SELECT i.inhrelid::regclass FROM pg_inherits i
        WHERE i.inhparent IN ('telemetry_minutes'::regclass, 'telemetry_hours'::regclass,
                              'fleet_telemetry_minutes'::regclass, 'fleet_telemetry_hours'::regclass)
    LOOP
        EXECUTE format('ALTER TABLE %s SET (fillfactor = 50)', child);
    END LOOP;
END
$$;
