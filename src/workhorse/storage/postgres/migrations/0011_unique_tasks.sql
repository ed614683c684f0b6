-- Unique tasks: a task may carry a key, and while one task of a code with that key
-- is queued or running, queueing another with the same key stores nothing and
-- answers with the one already there. The partial unique index is the rule itself,
-- so producers racing on many hosts cannot both get through (no check-then-insert):
-- the second insert waits for the first's transaction and then skips its row.
-- A task leaves the index when it finishes (complete, error, cancelled, timeout,
-- killed); a retry after an error stays in it (running -> queued).
-- Adding a nullable column is instant; the index starts empty (no task has a key).
ALTER TABLE tasks ADD COLUMN unique_key text;

CREATE UNIQUE INDEX tasks_unique_active ON tasks (project_id, code_name, unique_key)
WHERE unique_key IS NOT NULL AND status IN ('queued', 'running');
