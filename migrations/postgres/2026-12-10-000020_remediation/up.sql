-- Self-healing (issue 31): a deployment's remediation policy (JSON: after_seconds,
-- max_concurrent, max_unhealthy_percent; NULL: off) and, while too many of its nodes are
-- unhealthy, why remediation stopped (JSON: since, unhealthy, total, max_unhealthy_percent).
-- A node counts its remediations (the simulator's fault rule reads the count) and records when
-- it was last remediated (microseconds): an alert whose condition was first seen before then
-- does not remediate it again.
ALTER TABLE deployments ADD COLUMN remediation TEXT;
ALTER TABLE deployments ADD COLUMN remediation_stopped TEXT;
ALTER TABLE nodes ADD COLUMN remediations INTEGER NOT NULL DEFAULT 0;
ALTER TABLE nodes ADD COLUMN remediated_at BIGINT;
