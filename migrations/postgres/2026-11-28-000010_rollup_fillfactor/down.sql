DO $$
DECLARE
    child regclass;
BEGIN
    FOR child IN
        SELECT i.inhrelid::regclass FROM pg_inherits i
        WHERE i.inhparent IN ('telemetry_minutes'::regclass, 'telemetry_hours'::regclass,
                              'fleet_telemetry_minutes'::regclass, 'fleet_telemetry_hours'::regclass)
    LOOP
        EXECUTE format('ALTER TABLE %s RESET (fillfactor)', child);
    END LOOP;
END
$$;
