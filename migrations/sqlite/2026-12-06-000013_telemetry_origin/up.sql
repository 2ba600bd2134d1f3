-- Where a deployment's telemetry comes from (issue 27): 'simulated', sampled by the telemetry
-- workers (every deployment before this migration), or 'pushed', only what collectors push.
ALTER TABLE deployments ADD COLUMN telemetry_origin TEXT NOT NULL DEFAULT 'simulated'
    CHECK (telemetry_origin IN ('simulated', 'pushed'));
