-- Unique tasks: a task may carry a key, and while one task of a code with that key
-- is queued or running, queueing another with the same key stores nothing and
-- answers with the one already there. The partial unique index is the rule itself,
-- so producers racing on many hosts cannot both get through (no check-then-insert).
-- A task leaves the index when it finishes (complete, error, cancelled, timeout,
-- killed); a retry after an error stays in it (running -> queued).
ALTER TABLE tasks ADD COLUMN unique_key TEXT;

CREATE UNIQUE INDEX tasks_unique_active ON tasks (project_id, code_name, unique_key)
WHERE unique_key IS NOT NULL AND status IN ('queued', 'running');

-- The intake's rows read as tasks: they never carry a key (keyed tasks go straight
-- into `tasks`, where the index sees them).
DROP VIEW intake_tasks;
CREATE VIEW intake_tasks AS
SELECT NULL AS seq, id, project_id, code_name, kind, code_revision, payload,
       'queued' AS status, priority, created_at + delay AS run_at, timeout, label, cluster, retries,
       retries_delay, backoff, 0 AS attempt, 0 AS lost_count, NULL AS lease_token,
       NULL AS lease_expires_at, NULL AS runner_id, created_at, NULL AS start_time,
       NULL AS end_time, NULL AS result, NULL AS error, NULL AS progress,
       NULL AS progress_message, 0 AS cancel_requested, NULL AS schedule_id,
       NULL AS parent_id, NULL AS unique_key
FROM task_intake;
