-- The deployment listing counts each deployment's open alerts: an index of the open ones only,
-- so the count does not walk a deployment's resolved history (kept --keep-alerts-days).
CREATE INDEX alerts_open_deployment ON alerts (deployment_id) WHERE state <> 'resolved';
