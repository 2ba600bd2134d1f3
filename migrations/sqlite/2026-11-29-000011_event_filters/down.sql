DROP INDEX events_actor;
DROP INDEX events_node;
