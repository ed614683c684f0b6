-- Schedules: definitions, the scheduler's claim and fenced advance, fire records.
-- %(now)s is NULL in production (the database clock decides) and a fixed time in tests.

-- name: insert
-- Store a new schedule; a second one with the same (project, sync key) is not stored.
INSERT INTO schedules (id, project_id, code_name, name, payload, label, priority, timeout,
                       task_delay, cluster, max_concurrency, start_at, end_at, run_every, cron,
                       timezone, run_times, overlap, catch_up, status, next_start, sync_key,
                       fingerprint, created_at, updated_at)
VALUES (%(id)s, %(project_id)s, %(code_name)s, %(name)s, %(payload)s, %(label)s, %(priority)s,
        %(timeout)s, %(task_delay)s, %(cluster)s, %(max_concurrency)s, %(start_at)s, %(end_at)s,
        %(run_every)s, %(cron)s, %(timezone)s, %(run_times)s, %(overlap)s, %(catch_up)s,
        %(status)s, %(next_start)s, %(sync_key)s, %(fingerprint)s,
        coalesce(%(now)s::float8, extract(epoch from now())),
        coalesce(%(now)s::float8, extract(epoch from now())))
ON CONFLICT (project_id, sync_key) DO NOTHING
RETURNING *;

-- name: get
-- One schedule of a project.
SELECT * FROM schedules WHERE id = %(id)s AND project_id = %(project_id)s;

-- name: get_by_key
-- The schedule of a project with this sync key (code-defined schedules).
SELECT * FROM schedules WHERE project_id = %(project_id)s AND sync_key = %(sync_key)s;

-- name: list
-- Newest first, optionally filtered by status and code.
SELECT * FROM schedules
WHERE project_id = %(project_id)s
  AND (%(status)s::text IS NULL OR status = %(status)s)
  AND (%(code_name)s::text IS NULL OR code_name = %(code_name)s)
ORDER BY created_at DESC, id DESC
LIMIT %(limit)s OFFSET %(offset)s;

-- name: db_now
-- The time by which due times are judged.
SELECT coalesce(%(now)s::float8, extract(epoch from now())) AS now;

-- name: claim_due
-- Lock up to %(limit)s live schedules now due, and the time; other schedulers skip them.
SELECT s.*, coalesce(%(now)s::float8, extract(epoch from now())) AS db_now
FROM schedules s
WHERE s.status = 'scheduled'
  AND s.next_start <= coalesce(%(now)s::float8, extract(epoch from now()))
ORDER BY s.next_start
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED;

-- name: next_due
-- The earliest due time of any live schedule, and the time now.
SELECT min(next_start) AS next_start,
       coalesce(%(now)s::float8, extract(epoch from now())) AS db_now
FROM schedules WHERE status = 'scheduled';

-- name: count_active
-- Tasks of a schedule still queued or running (counted up to %(limit)s).
SELECT count(*) AS n FROM (
    SELECT 1 FROM tasks
    WHERE schedule_id = %(id)s AND status IN ('queued', 'running')
    LIMIT %(limit)s
) active;

-- name: advance
-- Record the decision for the due time %(pending)s, only if nobody decided it yet.
UPDATE schedules SET
    next_start = %(next_start)s::float8,
    status = %(status)s,
    run_count = run_count + %(ran)s::int,
    skip_count = skip_count + %(skipped)s::int,
    error_count = error_count + %(errors)s::int,
    last_run_time = CASE WHEN %(ran)s::int > 0 THEN %(now_db)s::float8 ELSE last_run_time END,
    msg = coalesce(%(msg)s::text, msg),
    updated_at = %(now_db)s::float8,
    version = version + 1
WHERE id = %(id)s AND status = 'scheduled' AND next_start = %(pending)s::float8;

-- name: insert_fire
-- The one record of a due time; a second attempt for the same due time inserts nothing.
INSERT INTO schedule_fires (schedule_id, due_at, task_id, outcome, fired_at)
VALUES (%(schedule_id)s, %(due_at)s, %(task_id)s, %(outcome)s, %(now_db)s)
ON CONFLICT (schedule_id, due_at) DO NOTHING;

-- name: fires
-- The latest fire records of a schedule, newest due time first.
SELECT * FROM schedule_fires
WHERE schedule_id = %(schedule_id)s
ORDER BY due_at DESC
LIMIT %(limit)s;

-- name: pause
-- Stop a live schedule from queueing until it is resumed.
UPDATE schedules SET status = 'paused', next_start = NULL,
    updated_at = coalesce(%(now)s::float8, extract(epoch from now())), version = version + 1
WHERE id = %(id)s AND project_id = %(project_id)s AND status = 'scheduled';

-- name: resume
-- Make a paused schedule live again from %(next_start)s, unless it changed meanwhile.
UPDATE schedules SET status = %(status)s, next_start = %(next_start)s::float8,
    updated_at = coalesce(%(now)s::float8, extract(epoch from now())), version = version + 1
WHERE id = %(id)s AND project_id = %(project_id)s AND status = 'paused'
  AND version = %(version)s;

-- name: cancel
-- End a schedule now; finished schedules are left as they are.
UPDATE schedules SET status = 'cancelled', next_start = NULL,
    updated_at = coalesce(%(now)s::float8, extract(epoch from now())), version = version + 1
WHERE id = %(id)s AND project_id = %(project_id)s AND status IN ('scheduled', 'paused');

-- name: redefine
-- Replace a schedule's definition, unless it changed since it was read (version).
UPDATE schedules SET
    code_name = %(code_name)s, name = %(name)s, payload = %(payload)s, label = %(label)s,
    priority = %(priority)s, timeout = %(timeout)s, task_delay = %(task_delay)s,
    cluster = %(cluster)s, max_concurrency = %(max_concurrency)s, start_at = %(start_at)s,
    end_at = %(end_at)s, run_every = %(run_every)s, cron = %(cron)s, timezone = %(timezone)s,
    run_times = %(run_times)s, overlap = %(overlap)s, catch_up = %(catch_up)s,
    fingerprint = %(fingerprint)s, status = %(status)s, next_start = %(next_start)s::float8,
    updated_at = coalesce(%(now)s::float8, extract(epoch from now())), version = version + 1
WHERE id = %(id)s AND project_id = %(project_id)s AND version = %(version)s
RETURNING *;

-- name: prune_fires
-- Forget up to %(limit)s fire records older than %(retention)s seconds.
DELETE FROM schedule_fires
WHERE (schedule_id, due_at) IN (
    SELECT schedule_id, due_at FROM schedule_fires
    WHERE fired_at < coalesce(%(now)s::float8, extract(epoch from now())) - %(retention)s::float8
    LIMIT %(limit)s
);
