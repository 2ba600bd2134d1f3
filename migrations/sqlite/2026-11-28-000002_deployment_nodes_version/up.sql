-- Bumped by every transaction that changes any of the deployment's nodes (the same ones that
-- keep the state counters), so a reader can tell with one point query whether a listing of
-- its nodes it holds is still current.
ALTER TABLE deployments ADD COLUMN nodes_version BIGINT NOT NULL DEFAULT 0;
