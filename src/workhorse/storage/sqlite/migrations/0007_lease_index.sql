-- The lease index covers rows with a lease rather than rows whose status is 'running'.
-- Queries that name tasks by id and check `status = 'running'` (finish, heartbeat)
-- matched the old index's predicate, so PostgreSQL's planner scanned all of it; on a
-- busy table that index is mostly dead entries until vacuum reaches it, which made
-- each finish cost milliseconds. The rescuer's `lease_expires_at < now` still uses it.
DROP INDEX tasks_lease;
CREATE INDEX tasks_lease ON tasks (lease_expires_at) WHERE lease_expires_at IS NOT NULL;
