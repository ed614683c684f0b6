-- Tasks: queueing, claiming, fenced completion, heartbeats, cancel, rescue, listing.
-- :now is NULL in production (the database clock decides) and a fixed time in tests.

-- name: insert
-- Queue one task; the caller runs it once per task (executemany, in order) and
-- announces the tasks' clusters on commit. Nothing is stored when the id is (a retried
-- insert) or, for a task with a unique key, when a task of its code with that key is
-- queued or running (the partial index tasks_unique_active): run alone, its row count
-- says which. Parameters are positional, in NewTask's field order, then now: ?1 id,
-- ?2 project_id, ?3 code_name, ?4 kind, ?5 code_revision, ?6 payload, ?7 priority,
-- ?8 delay, ?9 timeout, ?10 label, ?11 cluster, ?12 retries, ?13 retries_delay,
-- ?14 backoff, ?15 schedule_id, ?16 parent_id, ?17 unique_key, ?18 now. (Plain VALUES
-- bound per row cost SQLite about half of what reading the same rows out of one JSON
-- batch does, and binding by position about 15 % less than by name.)
INSERT INTO tasks (id, project_id, code_name, kind, code_revision, payload, status, priority,
                   run_at, timeout, label, cluster, retries, retries_delay, backoff,
                   created_at, schedule_id, parent_id, unique_key)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', ?7,
        coalesce(?18, (julianday('now') - 2440587.5) * 86400.0) + ?8,
        ?9, ?10, ?11, ?12, ?13, ?14,
        coalesce(?18, (julianday('now') - 2440587.5) * 86400.0),
        ?15, ?16, ?17)
ON CONFLICT DO NOTHING;

-- name: unique_holders
-- For tasks whose unique insert stored nothing (:batch, a JSON array of
-- {id, code_name, unique_key}): the task that holds each one's place. That is the
-- task itself when its id is stored (a retried insert), else the queued or running
-- task of its code with its key; NULL if neither (it finished meanwhile).
SELECT json_extract(b.value, '$.id') AS id,
       coalesce(
           (SELECT t.id FROM tasks t WHERE t.id = json_extract(b.value, '$.id')),
           (SELECT t.id FROM tasks t
            WHERE t.project_id = :project_id
              AND t.code_name = json_extract(b.value, '$.code_name')
              AND t.unique_key = json_extract(b.value, '$.unique_key')
              AND t.unique_key IS NOT NULL AND t.status IN ('queued', 'running'))) AS holder
FROM json_each(:batch) AS b
ORDER BY b.key;

-- name: intake
-- Queue one task through the intake (see migration 0009): ?1 to ?14 as for `insert`,
-- then ?15 now. Its due time is created_at + delay (one clock reading, not two).
INSERT INTO task_intake (id, project_id, code_name, kind, code_revision, payload, priority,
                         delay, timeout, label, cluster, retries, retries_delay, backoff,
                         created_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,
        coalesce(?15, (julianday('now') - 2440587.5) * 86400.0));

-- name: intake_span
-- The first and last seq waiting in the intake (NULLs when it is empty).
SELECT min(seq) AS first, max(seq) AS last FROM task_intake;

-- name: admit
-- Move intake rows up to :upto into tasks, in the order they were queued.
INSERT INTO tasks (id, project_id, code_name, kind, code_revision, payload, status, priority,
                   run_at, timeout, label, cluster, retries, retries_delay, backoff,
                   created_at)
SELECT id, project_id, code_name, kind, code_revision, payload, 'queued', priority,
       created_at + delay, timeout, label, cluster, retries, retries_delay, backoff, created_at
FROM task_intake WHERE seq <= :upto ORDER BY seq
ON CONFLICT (id) DO NOTHING;

-- name: admitted
-- After `admit`: drop the rows it moved.
DELETE FROM task_intake WHERE seq <= :upto;

-- name: get
-- One task of a project, admitted or still in the intake.
SELECT * FROM tasks WHERE id = :id AND project_id = :project_id
UNION ALL
SELECT * FROM intake_tasks WHERE id = :id AND project_id = :project_id;

-- name: get_many
-- Several tasks of a project by id, admitted or still in the intake.
SELECT * FROM tasks WHERE id IN (SELECT value FROM json_each(:ids)) AND project_id = :project_id
UNION ALL
SELECT * FROM intake_tasks WHERE id IN (SELECT value FROM json_each(:ids)) AND project_id = :project_id;

-- name: list
-- Newest first, optionally filtered; :before is a seq cursor.
SELECT * FROM tasks
WHERE project_id = :project_id
  AND (:code_name IS NULL OR code_name = :code_name)
  AND (:status IS NULL OR status = :status)
  AND (:schedule_id IS NULL OR schedule_id = :schedule_id)
  AND (:parent_id IS NULL OR parent_id = :parent_id)
  AND (:before IS NULL OR seq < :before)
  AND (:from_time IS NULL OR created_at >= :from_time)
  AND (:to_time IS NULL OR created_at <= :to_time)
ORDER BY seq DESC
LIMIT :limit;

-- name: claim
-- Pick up to :limit due tasks this runner can run, highest priority first, FIFO within
-- a priority; codes with a concurrency cap or paused are left to claim_code. Returns
-- one row: the picked seqs as JSON, which claim_mark leases and claim_read returns.
-- (Three one-row statements rather than UPDATE ... RETURNING: SQLite hands every
-- returned row to Python in a step of its own, and each step lets the runner's other
-- threads in while this transaction holds the database's only write lock.)
SELECT json_group_array(seq) AS seqs FROM (
    SELECT t.seq FROM tasks t
    WHERE t.status = 'queued' AND t.cluster = :cluster
      AND t.run_at <= coalesce(:now, (julianday('now') - 2440587.5) * 86400.0)
      AND ((t.kind = 'package' AND :packages)
           OR (t.kind = 'python' AND t.project_id = :project_id AND t.code_name IN (SELECT value FROM json_each(:codes))))
      AND NOT EXISTS (SELECT 1 FROM codes c
                      WHERE c.project_id = t.project_id AND c.name = t.code_name
                        AND (c.paused OR c.max_concurrency IS NOT NULL
                             OR c.rate_limit IS NOT NULL))
    ORDER BY t.priority DESC, t.run_at, t.seq
    LIMIT :limit
);

-- name: claim_mark
-- Lease the tasks picked by claim or claim_code (:seqs, a JSON array).
UPDATE tasks SET status = 'running', attempt = attempt + 1, lease_token = :token,
    runner_id = :runner_id,
    lease_expires_at = coalesce(:now, (julianday('now') - 2440587.5) * 86400.0) + :lease_seconds,
    start_time = coalesce(:now, (julianday('now') - 2440587.5) * 86400.0), end_time = NULL
WHERE seq IN (SELECT value FROM json_each(:seqs)) AND status = 'queued';

-- name: claim_read
-- The tasks just leased, as one JSON array of rows (seq, then Task's fields in order);
-- times come back to 15 significant digits (10 us).
SELECT json_group_array(json_array(
    seq, id, project_id, code_name, kind, code_revision, payload, status, priority, run_at,
    timeout, label, cluster, retries, retries_delay, backoff, attempt, lost_count,
    lease_token, lease_expires_at, runner_id, created_at, start_time, end_time, result,
    error, progress, progress_message, cancel_requested, schedule_id, parent_id,
    unique_key)) AS tasks
FROM tasks WHERE seq IN (SELECT value FROM json_each(:seqs)) AND lease_token = :token;

-- name: capped_codes
-- Codes with a concurrency cap or a rate limit, not paused, that have due work this
-- runner can run, in name order: every claim takes their locks in that one order, so
-- two claims never each hold a lock the other waits for.
SELECT c.project_id, c.name, c.max_concurrency, c.rate_limit FROM codes c
WHERE (c.max_concurrency IS NOT NULL OR c.rate_limit IS NOT NULL) AND NOT c.paused
  AND ((c.kind = 'package' AND :packages)
       OR (c.kind = 'python' AND c.project_id = :project_id AND c.name IN (SELECT value FROM json_each(:codes))))
  AND EXISTS (SELECT 1 FROM tasks t
              WHERE t.status = 'queued' AND t.project_id = c.project_id AND t.code_name = c.name
                AND t.cluster = :cluster
                AND t.run_at <= coalesce(:now, (julianday('now') - 2440587.5) * 86400.0))
ORDER BY c.project_id, c.name;

-- name: lock_code
-- Serialise claimers of one capped code until the transaction ends.
SELECT 1;

-- name: rate_bucket
-- A rate-limited code's bucket as last left, and the time to judge it by (read under
-- the code's claim lock; domain/rate.py does the arithmetic).
SELECT rate_limit, rate_tokens, rate_at, coalesce(:now, (julianday('now') - 2440587.5) * 86400.0) AS now
FROM codes WHERE project_id = :project_id AND name = :code_name;

-- name: rate_spend
-- Leave a rate-limited code's bucket holding :tokens at :at.
UPDATE codes SET rate_tokens = :tokens, rate_at = :at
WHERE project_id = :project_id AND name = :code_name;

-- name: count_running
-- Tasks of one code running anywhere.
SELECT count(*) AS n FROM tasks
WHERE status = 'running' AND project_id = :project_id AND code_name = :code_name;

-- name: claim_code
-- Pick up to :limit due tasks of one code (then claim_mark and claim_read, as for claim).
SELECT json_group_array(seq) AS seqs FROM (
    SELECT t.seq FROM tasks t
    WHERE t.status = 'queued' AND t.cluster = :cluster
      AND t.project_id = :project_id AND t.code_name = :code_name
      AND t.run_at <= coalesce(:now, (julianday('now') - 2440587.5) * 86400.0)
    ORDER BY t.priority DESC, t.run_at, t.seq
    LIMIT :limit
);

-- name: finish
-- End the attempts in :batch (JSON [{id, token, status, retry_delay, result, error}])
-- whose lease still holds: a final status, or back to queued for a retry. No rows are
-- returned (the count of rows changed says how many held): SQLite hands each returned
-- row to Python in a step of its own, and each step lets other threads in while this
-- transaction holds the write lock.
UPDATE tasks SET
    status = b.b_status,
    run_at = CASE WHEN b.b_status = 'queued'
                  THEN coalesce(:now, (julianday('now') - 2440587.5) * 86400.0) + b.b_retry_delay
                  ELSE run_at END,
    end_time = coalesce(:now, (julianday('now') - 2440587.5) * 86400.0),
    result = b.b_result, error = b.b_error,
    lease_token = NULL, lease_expires_at = NULL, cancel_requested = 0
FROM (SELECT value ->> 'id' AS b_id, value ->> 'token' AS b_token, value ->> 'status' AS b_status,
             value ->> 'retry_delay' AS b_retry_delay, value ->> 'result' AS b_result,
             value ->> 'error' AS b_error
      FROM json_each(:batch)) AS b
WHERE id = b.b_id AND lease_token = b.b_token AND status = 'running';

-- name: finish_attempts
-- Before `finish`: copy the attempts in :batch (JSON [{id, token, status, error}]) whose
-- lease still holds to task_attempts (used for attempts followed by a retry).
INSERT INTO task_attempts (task_id, attempt, runner_id, start_time, end_time, status, error)
SELECT t.id, t.attempt, t.runner_id, t.start_time, coalesce(:now, (julianday('now') - 2440587.5) * 86400.0), b.value ->> 'status', b.value ->> 'error'
FROM json_each(:batch) AS b JOIN tasks t ON t.id = b.value ->> 'id'
WHERE t.lease_token = b.value ->> 'token' AND t.status = 'running'
ON CONFLICT (task_id, attempt) DO NOTHING;

-- name: finish_logs
-- Before `finish`: store the output in :batch (JSON [{id, token, log}]) of attempts whose
-- lease still holds, after any streamed chunks.
INSERT INTO task_logs (task_id, attempt, chunk, data)
SELECT t.id, t.attempt, :chunk, b.value ->> 'log'
FROM json_each(:batch) AS b JOIN tasks t ON t.id = b.value ->> 'id'
WHERE t.lease_token = b.value ->> 'token' AND t.status = 'running'
ON CONFLICT (task_id, attempt, chunk) DO NOTHING;

-- name: insert_attempt
-- Record how one attempt ended.
INSERT INTO task_attempts (task_id, attempt, runner_id, start_time, end_time, status, error)
VALUES (:task_id, :attempt, :runner_id, :start_time, :end_time, :status, :error)
ON CONFLICT (task_id, attempt) DO NOTHING;

-- name: attempts
-- Every attempt of a task, oldest first. An attempt that ended the task is not
-- copied to task_attempts (the task row already holds it) unless a rescue or a
-- shutdown wrote it there.
SELECT task_id, attempt, runner_id, start_time, end_time, status, error
FROM task_attempts WHERE task_id = :task_id
UNION ALL
SELECT t.id, t.attempt, t.runner_id, t.start_time, t.end_time, t.status, t.error
FROM tasks t
WHERE t.id = :task_id AND t.attempt > 0
  AND t.status IN ('complete', 'error', 'cancelled', 'timeout', 'killed')
  AND NOT EXISTS (SELECT 1 FROM task_attempts a WHERE a.task_id = t.id AND a.attempt = t.attempt)
ORDER BY attempt;

-- name: heartbeat
-- Extend the leases of :ids this runner holds; says which it holds and which are to be
-- cancelled.
UPDATE tasks SET
    lease_expires_at = coalesce(:now, (julianday('now') - 2440587.5) * 86400.0) + :lease_seconds
WHERE id IN (SELECT value FROM json_each(:ids)) AND runner_id = :runner_id AND status = 'running'
RETURNING id, lease_token, cancel_requested;

-- name: cancel_queued
-- Cancel a task that has not started.
UPDATE tasks SET status = 'cancelled', end_time = coalesce(:now, (julianday('now') - 2440587.5) * 86400.0),
    error = 'cancelled'
WHERE id = :id AND project_id = :project_id AND status = 'queued';

-- name: request_cancel
-- Ask the runner of a running task to stop it.
UPDATE tasks SET cancel_requested = TRUE
WHERE id = :id AND project_id = :project_id AND status = 'running';

-- name: rescue_expired
-- Tasks whose runner stopped heartbeating: queue again, or kill after too many losses,
-- or finish the cancel that was asked for.
UPDATE tasks SET
    status = CASE WHEN cancel_requested THEN 'cancelled'
                  WHEN lost_count + 1 >= :max_lost THEN 'killed'
                  ELSE 'queued' END,
    lost_count = lost_count + 1,
    end_time = coalesce(:now, (julianday('now') - 2440587.5) * 86400.0),
    error = CASE WHEN cancel_requested THEN 'cancelled'
                 ELSE 'lease expired: runner ' || coalesce(runner_id, '?') || ' stopped heartbeating' END,
    lease_token = NULL, lease_expires_at = NULL, cancel_requested = FALSE
WHERE seq IN (SELECT seq FROM tasks
              WHERE status = 'running'
                AND lease_expires_at < coalesce(:now, (julianday('now') - 2440587.5) * 86400.0)
              ORDER BY lease_expires_at LIMIT :limit)
RETURNING id, project_id, attempt, runner_id, start_time, end_time, status, error, parent_id;

-- name: set_progress
-- Progress of a running attempt (fenced).
UPDATE tasks SET progress = :progress, progress_message = :message
WHERE id = :id AND lease_token = :lease_token AND status = 'running';

-- name: set_progress_any
-- Progress reported over the API by the task itself (not fenced: it has no token).
UPDATE tasks SET progress = :progress, progress_message = :message
WHERE id = :id AND project_id = :project_id AND status = 'running';

-- name: append_log
-- One chunk of an attempt's output.
INSERT INTO task_logs (task_id, attempt, chunk, data)
VALUES (:task_id, :attempt, :chunk, :data)
ON CONFLICT (task_id, attempt, chunk) DO NOTHING;

-- name: log_chunks
-- Output of the newest attempt that has any, in order.
SELECT attempt, chunk, data FROM task_logs
WHERE task_id = :task_id
  AND attempt = (SELECT max(attempt) FROM task_logs WHERE task_id = :task_id)
  AND chunk >= :from_chunk
ORDER BY chunk;

-- name: count_by_status
-- Tasks per code and status in a project, the intake's among the queued.
SELECT code_name, status, count(*) AS n
FROM (SELECT code_name, status FROM tasks WHERE project_id = :project_id
      UNION ALL
      SELECT code_name, 'queued' FROM task_intake WHERE project_id = :project_id)
GROUP BY code_name, status;

-- name: prune_candidates
-- Finished tasks older than a cut-off, a batch at a time.
SELECT id FROM tasks
WHERE status IN ('complete', 'error', 'cancelled', 'timeout', 'killed') AND end_time < :before
LIMIT :limit;

-- name: delete_attempts
-- Attempts of the given tasks.
DELETE FROM task_attempts WHERE task_id IN (SELECT value FROM json_each(:ids));

-- name: delete_logs
-- Logs of the given tasks.
DELETE FROM task_logs WHERE task_id IN (SELECT value FROM json_each(:ids));

-- name: delete_many
-- The given tasks.
DELETE FROM tasks WHERE id IN (SELECT value FROM json_each(:ids));

-- name: children_summary
-- Status counts of a task's children (fan-in).
SELECT status, count(*) AS n FROM tasks WHERE parent_id = :parent_id GROUP BY status;

-- name: release
-- Hand a claimed task back (runner shutting down): one that never started is as if
-- never claimed; one that started keeps its attempt number and counts as interrupted.
UPDATE tasks SET status = 'queued', lease_token = NULL, lease_expires_at = NULL, runner_id = NULL,
    attempt = CASE WHEN :started THEN attempt ELSE attempt - 1 END,
    lost_count = CASE WHEN :started THEN lost_count + 1 ELSE lost_count END,
    end_time = CASE WHEN :started THEN coalesce(:now, (julianday('now') - 2440587.5) * 86400.0) ELSE NULL END,
    start_time = CASE WHEN :started THEN start_time ELSE NULL END
WHERE id = :id AND lease_token = :lease_token AND status = 'running'
RETURNING id, attempt, runner_id, start_time, end_time;

-- name: depth
-- Queued and running tasks per project and code, the intake's among the queued
-- (each state read through its own partial index, never the finished tasks).
SELECT project_id, code_name, status, count(*) AS n
FROM (SELECT project_id, code_name, 'queued' AS status FROM tasks WHERE status = 'queued'
      UNION ALL
      SELECT project_id, code_name, 'running' FROM tasks WHERE status = 'running'
      UNION ALL
      SELECT project_id, code_name, 'queued' FROM task_intake) AS states
GROUP BY project_id, code_name, status;
