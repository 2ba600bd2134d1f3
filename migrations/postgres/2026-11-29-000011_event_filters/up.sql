-- The event filters a deployment's readers use, indexed so that they read only the events they
-- return, not the deployment's whole log (300,000 events for a 100,000-node rollout):
-- a node's history (the dashboard's node page, ?node_id=) and the audit trail (?actor=).
-- Only API calls set an actor, so that index holds a handful of rows per deployment.
CREATE INDEX events_node ON events (deployment_id, node_id, id);
CREATE INDEX events_actor ON events (deployment_id, actor, id) WHERE actor IS NOT NULL;
