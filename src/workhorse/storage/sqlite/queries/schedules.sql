-- Schedules: definitions, the scheduler's claim and fenced advance, fire records.
-- :now is NULL in production (the database clock decides) and a fixed time in tests.

-- name: insert
-- Store a new schedule; a second one with the same (project, sync key) is not stored.
INSERT INTO schedules (id, project_id, code_name, name, payload, label, priority, timeout,
                       task_delay, cluster, max_concurrency, start_at, end_at, run_every, cron,
                       timezone, run_times, overlap, catch_up, status, next_start, sync_key,
                       fingerprint, created_at, updated_at)
VALUES (:id, :project_id, :code_name, :name, :payload, :label, :priority,
        :timeout, :task_delay, :cluster, :max_concurrency, :start_at, :end_at,
        :run_every, :cron, :timezone, :run_times, :overlap, :catch_up,
        :status, :next_start, :sync_key, :fingerprint,
        coalesce(:now, (julianday('now') - 2440587.5) * 86400.0),
        coalesce(:now, (julianday('now') - 2440587.5) * 86400.0))
ON CONFLICT (project_id, sync_key) DO NOTHING
RETURNING *;

-- name: get
-- One schedule of a project.
SELECT * FROM schedules WHERE id = :id AND project_id = :project_id;

-- name: get_by_key
-- The schedule of a project with this sync key (code-defined schedules).
SELECT * FROM schedules WHERE project_id = :project_id AND sync_key = :sync_key;

-- name: list
-- Newest first, optionally filtered by status and code.
SELECT * FROM schedules
WHERE project_id = :project_id
  AND (:status IS NULL OR status = :status)
  AND (:code_name IS NULL OR code_name = :code_name)
ORDER BY created_at DESC, id DESC
LIMIT :limit OFFSET :offset;

-- name: db_now
-- The time by which due times are judged.
SELECT coalesce(:now, (julianday('now') - 2440587.5) * 86400.0) AS now;

-- name: claim_due
-- Up to :limit live schedules now due, and the time (the write lock shuts out other schedulers).
SELECT s.*, coalesce(:now, (julianday('now') - 2440587.5) * 86400.0) AS db_now
FROM schedules s
WHERE s.status = 'scheduled'
  AND s.next_start <= coalesce(:now, (julianday('now') - 2440587.5) * 86400.0)
ORDER BY s.next_start
LIMIT :limit;

-- name: next_due
-- The earliest due time of any live schedule, and the time now.
SELECT min(next_start) AS next_start,
       coalesce(:now, (julianday('now') - 2440587.5) * 86400.0) AS db_now
FROM schedules WHERE status = 'scheduled';

-- name: count_active
-- Tasks of a schedule still queued or running (counted up to :limit).
SELECT count(*) AS n FROM (
    SELECT 1 FROM tasks
    WHERE schedule_id = :id AND status IN ('queued', 'running')
    LIMIT :limit
) active;

-- name: advance
-- Record the decision for the due time :pending, only if nobody decided it yet.
UPDATE schedules SET
    next_start = :next_start,
    status = :status,
    run_count = run_count + :ran,
    skip_count = skip_count + :skipped,
    error_count = error_count + :errors,
    last_run_time = CASE WHEN :ran > 0 THEN :now_db ELSE last_run_time END,
    msg = coalesce(:msg, msg),
    updated_at = :now_db,
    version = version + 1
WHERE id = :id AND status = 'scheduled' AND next_start = :pending;

-- name: insert_fire
-- The one record of a due time; a second attempt for the same due time inserts nothing.
INSERT INTO schedule_fires (schedule_id, due_at, task_id, outcome, fired_at)
VALUES (:schedule_id, :due_at, :task_id, :outcome, :now_db)
ON CONFLICT (schedule_id, due_at) DO NOTHING;

-- name: fires
-- The latest fire records of a schedule, newest due time first.
SELECT * FROM schedule_fires
WHERE schedule_id = :schedule_id
ORDER BY due_at DESC
LIMIT :limit;

-- name: pause
-- Stop a live schedule from queueing until it is resumed.
UPDATE schedules SET status = 'paused', next_start = NULL,
    updated_at = coalesce(:now, (julianday('now') - 2440587.5) * 86400.0), version = version + 1
WHERE id = :id AND project_id = :project_id AND status = 'scheduled';

-- name: resume
-- Make a paused schedule live again from :next_start, unless it changed meanwhile.
UPDATE schedules SET status = :status, next_start = :next_start,
    updated_at = coalesce(:now, (julianday('now') - 2440587.5) * 86400.0), version = version + 1
WHERE id = :id AND project_id = :project_id AND status = 'paused'
  AND version = :version;

-- name: cancel
-- End a schedule now; finished schedules are left as they are.
UPDATE schedules SET status = 'cancelled', next_start = NULL,
    updated_at = coalesce(:now, (julianday('now') - 2440587.5) * 86400.0), version = version + 1
WHERE id = :id AND project_id = :project_id AND status IN ('scheduled', 'paused');

-- name: redefine
-- Replace a schedule's definition, unless it changed since it was read (version).
UPDATE schedules SET
    code_name = :code_name, name = :name, payload = :payload, label = :label,
    priority = :priority, timeout = :timeout, task_delay = :task_delay,
    cluster = :cluster, max_concurrency = :max_concurrency, start_at = :start_at,
    end_at = :end_at, run_every = :run_every, cron = :cron, timezone = :timezone,
    run_times = :run_times, overlap = :overlap, catch_up = :catch_up,
    fingerprint = :fingerprint, status = :status, next_start = :next_start,
    updated_at = coalesce(:now, (julianday('now') - 2440587.5) * 86400.0), version = version + 1
WHERE id = :id AND project_id = :project_id AND version = :version
RETURNING *;

-- name: prune_fires
-- Forget up to :limit fire records older than :retention seconds.
DELETE FROM schedule_fires
WHERE (schedule_id, due_at) IN (
    SELECT schedule_id, due_at FROM schedule_fires
    WHERE fired_at < coalesce(:now, (julianday('now') - 2440587.5) * 86400.0) - :retention
    LIMIT :limit
);
