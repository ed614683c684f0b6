-- Tasks: queueing, claiming, fenced completion, heartbeats, cancel, rescue, listing.
-- %(now)s is NULL in production (the database clock decides) and a fixed time in tests.

-- name: insert
-- Queue the tasks in %(batch)s (a JSON array, in order) in one statement, and announce
-- them on commit. A task is not stored when its id is (a retried insert) or, for one
-- with a unique key, when a task of its code with that key is queued or running (the
-- partial index tasks_unique_active; an insert racing another's uncommitted one waits
-- for it). Returns the ids stored.
INSERT INTO tasks (id, project_id, code_name, kind, code_revision, payload, status, priority,
                   run_at, timeout, label, cluster, retries, retries_delay, backoff,
                   created_at, schedule_id, parent_id, unique_key)
SELECT b.id, b.project_id, b.code_name, b.kind, b.code_revision, b.payload, 'queued', b.priority,
       coalesce(%(now)s::float8, extract(epoch from now())) + b.delay, b.timeout, b.label, b.cluster,
       b.retries, b.retries_delay, b.backoff,
       coalesce(%(now)s::float8, extract(epoch from now())), b.schedule_id, b.parent_id,
       b.unique_key
FROM ROWS FROM (jsonb_to_recordset(%(batch)s::jsonb)
     AS (id text, project_id text, code_name text, kind text, code_revision int, payload text,
         priority int, delay float8, timeout int, label text, cluster text, retries int,
         retries_delay int, backoff boolean, schedule_id text, parent_id text,
         unique_key text)) WITH ORDINALITY AS b
ORDER BY b.ordinality
ON CONFLICT DO NOTHING
RETURNING id, pg_notify('workhorse', 'tasks:' || cluster);

-- name: insert_unique_one
-- One task with a unique key, in one statement (autocommitted: one round trip). Gives
-- its own id when stored, else the id of the task holding its place: itself when its
-- id is stored already (a retry), or the queued or running task of its code with its
-- key. No row when that one finished after this statement's snapshot was taken (the
-- caller then takes `insert` and the lookup of `unique_holders`).
WITH stored AS (
    INSERT INTO tasks (id, project_id, code_name, kind, code_revision, payload, status, priority,
                       run_at, timeout, label, cluster, retries, retries_delay, backoff,
                       created_at, schedule_id, parent_id, unique_key)
    VALUES (%(id)s, %(project_id)s, %(code_name)s, %(kind)s, %(code_revision)s, %(payload)s,
            'queued', %(priority)s,
            coalesce(%(now)s::float8, extract(epoch from now())) + %(delay)s::float8,
            %(timeout)s, %(label)s, %(cluster)s, %(retries)s, %(retries_delay)s, %(backoff)s,
            coalesce(%(now)s::float8, extract(epoch from now())), %(schedule_id)s, %(parent_id)s,
            %(unique_key)s)
    ON CONFLICT DO NOTHING
    RETURNING id, pg_notify('workhorse', 'tasks:' || cluster)
)
SELECT id AS holder FROM stored
UNION ALL
(SELECT t.id FROM tasks t
 WHERE NOT EXISTS (SELECT 1 FROM stored)
   AND (t.id = %(id)s
        OR (t.project_id = %(project_id)s AND t.code_name = %(code_name)s
            AND t.unique_key = %(unique_key)s AND t.unique_key IS NOT NULL
            AND t.status IN ('queued', 'running')))
 ORDER BY t.id = %(id)s DESC
 LIMIT 1);

-- name: unique_holders
-- For tasks whose unique insert stored nothing (%(batch)s, a JSON array of
-- {id, code_name, unique_key}): the task that holds each one's place. That is the
-- task itself when its id is stored (a retried insert), else the queued or running
-- task of its code with its key; NULL if neither (it finished meanwhile).
SELECT b.id,
       coalesce(
           (SELECT t.id FROM tasks t WHERE t.id = b.id),
           (SELECT t.id FROM tasks t
            WHERE t.project_id = %(project_id)s AND t.code_name = b.code_name
              AND t.unique_key = b.unique_key
              AND t.unique_key IS NOT NULL AND t.status IN ('queued', 'running'))) AS holder
FROM ROWS FROM (jsonb_to_recordset(%(batch)s::jsonb)
     AS (id text, code_name text, unique_key text)) WITH ORDINALITY AS b
ORDER BY b.ordinality;

-- name: insert_one
-- `insert` for a single task on its first try, with its values bound directly: a single
-- enqueue is the common call, and PostgreSQL plans plain VALUES faster than it unpacks a
-- JSON batch. No ON CONFLICT (a speculative insertion costs ~15 us more): the id is
-- new, and a retry, whose first try may have committed, goes through `insert`.
INSERT INTO tasks (id, project_id, code_name, kind, code_revision, payload, status, priority,
                   run_at, timeout, label, cluster, retries, retries_delay, backoff,
                   created_at, schedule_id, parent_id)
VALUES (%(id)s, %(project_id)s, %(code_name)s, %(kind)s, %(code_revision)s, %(payload)s,
        'queued', %(priority)s,
        coalesce(%(now)s::float8, extract(epoch from now())) + %(delay)s::float8,
        %(timeout)s, %(label)s, %(cluster)s, %(retries)s, %(retries_delay)s, %(backoff)s,
        coalesce(%(now)s::float8, extract(epoch from now())), %(schedule_id)s, %(parent_id)s)
RETURNING pg_notify('workhorse', 'tasks:' || cluster);

-- name: copy
-- `insert` for a batch on its first try: the rows stream in through COPY, which
-- PostgreSQL loads at about twice the rate it unpacks a JSON batch. COPY cannot skip
-- rows that already exist, so a retried batch (the first try's commit may have
-- landed) goes through `insert`. The caller computes run_at and created_at from the
-- transaction's database time and announces the clusters itself.
COPY tasks (id, project_id, code_name, kind, code_revision, payload, status, priority,
            run_at, timeout, label, cluster, retries, retries_delay, backoff,
            created_at, schedule_id, parent_id) FROM STDIN;

-- name: get
-- One task of a project.
SELECT * FROM tasks WHERE id = %(id)s AND project_id = %(project_id)s;

-- name: get_many
-- Several tasks of a project by id.
SELECT * FROM tasks WHERE id = ANY(%(ids)s) AND project_id = %(project_id)s;

-- name: list
-- Newest first, optionally filtered; %(before)s is a seq cursor.
SELECT * FROM tasks
WHERE project_id = %(project_id)s
  AND (%(code_name)s::text IS NULL OR code_name = %(code_name)s)
  AND (%(status)s::text IS NULL OR status = %(status)s)
  AND (%(schedule_id)s::text IS NULL OR schedule_id = %(schedule_id)s)
  AND (%(parent_id)s::text IS NULL OR parent_id = %(parent_id)s)
  AND (%(before)s::bigint IS NULL OR seq < %(before)s)
  AND (%(from_time)s::float8 IS NULL OR created_at >= %(from_time)s)
  AND (%(to_time)s::float8 IS NULL OR created_at <= %(to_time)s)
ORDER BY seq DESC
LIMIT %(limit)s;

-- name: claim
-- Lease up to %(limit)s due tasks this runner can run, highest priority first,
-- FIFO within a priority; codes with a concurrency cap or paused are left to claim_code.
WITH picked AS (
    SELECT t.seq FROM tasks t
    WHERE t.status = 'queued' AND t.cluster = %(cluster)s
      AND t.run_at <= coalesce(%(now)s::float8, extract(epoch from now()))
      AND ((t.kind = 'package' AND %(packages)s)
           OR (t.kind = 'python' AND t.project_id = %(project_id)s AND t.code_name = ANY(%(codes)s)))
      AND NOT EXISTS (SELECT 1 FROM codes c
                      WHERE c.project_id = t.project_id AND c.name = t.code_name
                        AND (c.paused OR c.max_concurrency IS NOT NULL
                             OR c.rate_limit IS NOT NULL))
    ORDER BY t.priority DESC, t.run_at, t.seq
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE tasks SET status = 'running', attempt = tasks.attempt + 1, lease_token = %(token)s,
    runner_id = %(runner_id)s,
    lease_expires_at = coalesce(%(now)s::float8, extract(epoch from now())) + %(lease_seconds)s,
    start_time = coalesce(%(now)s::float8, extract(epoch from now())), end_time = NULL
FROM picked WHERE tasks.seq = picked.seq
RETURNING tasks.*;

-- name: claim_now
-- `claim` as one autocommitted statement, for a runner with nothing else to write:
-- synchronous_commit is off for its own transaction (a claim lost to a crash just
-- leaves its tasks queued), the leased rows come back as one JSON array, and
-- `capped` says whether codes with a cap (left out here) have due work, so the
-- caller knows to claim those through the full path.
WITH relaxed AS (
    SELECT set_config('synchronous_commit', 'off', true) AS setting
), picked AS (
    SELECT t.seq FROM tasks t
    WHERE t.status = 'queued' AND t.cluster = %(cluster)s
      AND t.run_at <= coalesce(%(now)s::float8, extract(epoch from now()))
      AND ((t.kind = 'package' AND %(packages)s)
           OR (t.kind = 'python' AND t.project_id = %(project_id)s AND t.code_name = ANY(%(codes)s)))
      AND NOT EXISTS (SELECT 1 FROM codes c
                      WHERE c.project_id = t.project_id AND c.name = t.code_name
                        AND (c.paused OR c.max_concurrency IS NOT NULL
                             OR c.rate_limit IS NOT NULL))
    ORDER BY t.priority DESC, t.run_at, t.seq
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE tasks SET status = 'running', attempt = tasks.attempt + 1, lease_token = %(token)s,
        runner_id = %(runner_id)s,
        lease_expires_at = coalesce(%(now)s::float8, extract(epoch from now())) + %(lease_seconds)s,
        start_time = coalesce(%(now)s::float8, extract(epoch from now())), end_time = NULL
    FROM picked WHERE tasks.seq = picked.seq
    RETURNING tasks.*
)
SELECT (SELECT coalesce(json_agg(claimed), '[]') FROM claimed) AS tasks,
       EXISTS (SELECT 1 FROM codes c
               WHERE (c.max_concurrency IS NOT NULL OR c.rate_limit IS NOT NULL) AND NOT c.paused
                 AND ((c.kind = 'package' AND %(packages)s)
                      OR (c.kind = 'python' AND c.project_id = %(project_id)s
                          AND c.name = ANY(%(codes)s)))
                 AND EXISTS (SELECT 1 FROM tasks t
                             WHERE t.status = 'queued' AND t.project_id = c.project_id
                               AND t.code_name = c.name AND t.cluster = %(cluster)s
                               AND t.run_at <= coalesce(%(now)s::float8, extract(epoch from now()))))
           AS capped
FROM relaxed;

-- name: capped_codes
-- Codes with a concurrency cap or a rate limit, not paused, that have due work this
-- runner can run, in name order: every claim takes their locks in that one order, so
-- two claims never each hold a lock the other waits for.
SELECT c.project_id, c.name, c.max_concurrency, c.rate_limit FROM codes c
WHERE (c.max_concurrency IS NOT NULL OR c.rate_limit IS NOT NULL) AND NOT c.paused
  AND ((c.kind = 'package' AND %(packages)s)
       OR (c.kind = 'python' AND c.project_id = %(project_id)s AND c.name = ANY(%(codes)s)))
  AND EXISTS (SELECT 1 FROM tasks t
              WHERE t.status = 'queued' AND t.project_id = c.project_id AND t.code_name = c.name
                AND t.cluster = %(cluster)s
                AND t.run_at <= coalesce(%(now)s::float8, extract(epoch from now())))
ORDER BY c.project_id, c.name;

-- name: lock_code
-- Serialise claimers of one capped code until the transaction ends.
SELECT pg_advisory_xact_lock(hashtext(%(project_id)s || '/' || %(code_name)s));

-- name: rate_bucket
-- A rate-limited code's bucket as last left, and the time to judge it by (read under
-- the code's claim lock; domain/rate.py does the arithmetic). The clock is read now,
-- not at the transaction's start: claims that queued for the lock judge the bucket,
-- and stamp their starts, in the order they got it.
SELECT rate_limit, rate_tokens, rate_at,
       coalesce(%(now)s::float8, extract(epoch from clock_timestamp())) AS now
FROM codes WHERE project_id = %(project_id)s AND name = %(code_name)s;

-- name: rate_spend
-- Leave a rate-limited code's bucket holding %(tokens)s at %(at)s.
UPDATE codes SET rate_tokens = %(tokens)s, rate_at = %(at)s
WHERE project_id = %(project_id)s AND name = %(code_name)s;

-- name: count_running
-- Tasks of one code running anywhere.
SELECT count(*) AS n FROM tasks
WHERE status = 'running' AND project_id = %(project_id)s AND code_name = %(code_name)s;

-- name: claim_code
-- Lease up to %(limit)s due tasks of one code.
WITH picked AS (
    SELECT t.seq FROM tasks t
    WHERE t.status = 'queued' AND t.cluster = %(cluster)s
      AND t.project_id = %(project_id)s AND t.code_name = %(code_name)s
      AND t.run_at <= coalesce(%(now)s::float8, extract(epoch from now()))
    ORDER BY t.priority DESC, t.run_at, t.seq
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE tasks SET status = 'running', attempt = tasks.attempt + 1, lease_token = %(token)s,
    runner_id = %(runner_id)s,
    lease_expires_at = coalesce(%(now)s::float8, extract(epoch from now())) + %(lease_seconds)s,
    start_time = coalesce(%(now)s::float8, extract(epoch from now())), end_time = NULL
FROM picked WHERE tasks.seq = picked.seq
RETURNING tasks.*;

-- name: finish
-- End the attempts in %(batch)s (JSON [{id, token, status, retry_delay, result, error}])
-- whose lease still holds: a final status, or back to queued for a retry. The count of
-- rows changed says how many held.
UPDATE tasks t SET
    status = b.status,
    run_at = CASE WHEN b.status = 'queued'
                  THEN coalesce(%(now)s::float8, extract(epoch from now())) + b.retry_delay
                  ELSE t.run_at END,
    end_time = coalesce(%(now)s::float8, extract(epoch from now())),
    result = b.result, error = b.error,
    lease_token = NULL, lease_expires_at = NULL, cancel_requested = FALSE
FROM jsonb_to_recordset(%(batch)s::jsonb)
     AS b(id text, token text, status text, retry_delay float8, result text, error text)
WHERE t.id = b.id AND t.lease_token = b.token AND t.status = 'running';

-- name: finish_attempts
-- Before `finish`: copy the attempts in %(batch)s (JSON [{id, token, status, error}])
-- whose lease still holds to task_attempts (used for attempts followed by a retry).
INSERT INTO task_attempts (task_id, attempt, runner_id, start_time, end_time, status, error)
SELECT t.id, t.attempt, t.runner_id, t.start_time, coalesce(%(now)s::float8, extract(epoch from now())), b.status, b.error
FROM jsonb_to_recordset(%(batch)s::jsonb) AS b(id text, token text, status text, error text)
JOIN tasks t ON t.id = b.id
WHERE t.lease_token = b.token AND t.status = 'running'
ON CONFLICT (task_id, attempt) DO NOTHING;

-- name: finish_logs
-- Before `finish`: store the output in %(batch)s (JSON [{id, token, log}]) of attempts
-- whose lease still holds, after any streamed chunks.
INSERT INTO task_logs (task_id, attempt, chunk, data)
SELECT t.id, t.attempt, %(chunk)s, b.log
FROM jsonb_to_recordset(%(batch)s::jsonb) AS b(id text, token text, log text)
JOIN tasks t ON t.id = b.id
WHERE t.lease_token = b.token AND t.status = 'running'
ON CONFLICT (task_id, attempt, chunk) DO NOTHING;

-- name: insert_attempt
-- Record how one attempt ended.
INSERT INTO task_attempts (task_id, attempt, runner_id, start_time, end_time, status, error)
VALUES (%(task_id)s, %(attempt)s, %(runner_id)s, %(start_time)s, %(end_time)s, %(status)s, %(error)s)
ON CONFLICT (task_id, attempt) DO NOTHING;

-- name: attempts
-- Every attempt of a task, oldest first. An attempt that ended the task is not
-- copied to task_attempts (the task row already holds it) unless a rescue or a
-- shutdown wrote it there.
SELECT task_id, attempt, runner_id, start_time, end_time, status, error
FROM task_attempts WHERE task_id = %(task_id)s
UNION ALL
SELECT t.id, t.attempt, t.runner_id, t.start_time, t.end_time, t.status, t.error
FROM tasks t
WHERE t.id = %(task_id)s AND t.attempt > 0
  AND t.status IN ('complete', 'error', 'cancelled', 'timeout', 'killed')
  AND NOT EXISTS (SELECT 1 FROM task_attempts a WHERE a.task_id = t.id AND a.attempt = t.attempt)
ORDER BY attempt;

-- name: heartbeat
-- Extend the leases of :ids this runner holds; says which it holds and which are to be
-- cancelled.
UPDATE tasks SET
    lease_expires_at = coalesce(%(now)s::float8, extract(epoch from now())) + %(lease_seconds)s
WHERE id = ANY(%(ids)s) AND runner_id = %(runner_id)s AND status = 'running'
RETURNING id, lease_token, cancel_requested;

-- name: cancel_queued
-- Cancel a task that has not started.
UPDATE tasks SET status = 'cancelled', end_time = coalesce(%(now)s::float8, extract(epoch from now())),
    error = 'cancelled'
WHERE id = %(id)s AND project_id = %(project_id)s AND status = 'queued';

-- name: request_cancel
-- Ask the runner of a running task to stop it.
UPDATE tasks SET cancel_requested = TRUE
WHERE id = %(id)s AND project_id = %(project_id)s AND status = 'running';

-- name: rescue_expired
-- Tasks whose runner stopped heartbeating: queue again, or kill after too many losses,
-- or finish the cancel that was asked for.
UPDATE tasks SET
    status = CASE WHEN cancel_requested THEN 'cancelled'
                  WHEN lost_count + 1 >= %(max_lost)s THEN 'killed'
                  ELSE 'queued' END,
    lost_count = lost_count + 1,
    end_time = coalesce(%(now)s::float8, extract(epoch from now())),
    error = CASE WHEN cancel_requested THEN 'cancelled'
                 ELSE 'lease expired: runner ' || coalesce(runner_id, '?') || ' stopped heartbeating' END,
    lease_token = NULL, lease_expires_at = NULL, cancel_requested = FALSE
WHERE seq IN (SELECT seq FROM tasks
              WHERE status = 'running'
                AND lease_expires_at < coalesce(%(now)s::float8, extract(epoch from now()))
              ORDER BY lease_expires_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
RETURNING id, project_id, attempt, runner_id, start_time, end_time, status, error, parent_id;

-- name: set_progress
-- Progress of a running attempt (fenced).
UPDATE tasks SET progress = %(progress)s, progress_message = %(message)s
WHERE id = %(id)s AND lease_token = %(lease_token)s AND status = 'running';

-- name: set_progress_any
-- Progress reported over the API by the task itself (not fenced: it has no token).
UPDATE tasks SET progress = %(progress)s, progress_message = %(message)s
WHERE id = %(id)s AND project_id = %(project_id)s AND status = 'running';

-- name: append_log
-- One chunk of an attempt's output.
INSERT INTO task_logs (task_id, attempt, chunk, data)
VALUES (%(task_id)s, %(attempt)s, %(chunk)s, %(data)s)
ON CONFLICT (task_id, attempt, chunk) DO NOTHING;

-- name: log_chunks
-- Output of the newest attempt that has any, in order.
SELECT attempt, chunk, data FROM task_logs
WHERE task_id = %(task_id)s
  AND attempt = (SELECT max(attempt) FROM task_logs WHERE task_id = %(task_id)s)
  AND chunk >= %(from_chunk)s
ORDER BY chunk;

-- name: count_by_status
-- Tasks per code and status in a project.
SELECT code_name, status, count(*) AS n FROM tasks
WHERE project_id = %(project_id)s
GROUP BY code_name, status;

-- name: prune_candidates
-- Finished tasks older than a cut-off, a batch at a time.
SELECT id FROM tasks
WHERE status IN ('complete', 'error', 'cancelled', 'timeout', 'killed') AND end_time < %(before)s
LIMIT %(limit)s;

-- name: delete_attempts
-- Attempts of the given tasks.
DELETE FROM task_attempts WHERE task_id = ANY(%(ids)s);

-- name: delete_logs
-- Logs of the given tasks.
DELETE FROM task_logs WHERE task_id = ANY(%(ids)s);

-- name: delete_many
-- The given tasks.
DELETE FROM tasks WHERE id = ANY(%(ids)s);

-- name: children_summary
-- Status counts of a task's children (fan-in).
SELECT status, count(*) AS n FROM tasks WHERE parent_id = %(parent_id)s GROUP BY status;

-- name: release
-- Hand a claimed task back (runner shutting down): one that never started is as if
-- never claimed; one that started keeps its attempt number and counts as interrupted.
UPDATE tasks SET status = 'queued', lease_token = NULL, lease_expires_at = NULL, runner_id = NULL,
    attempt = CASE WHEN %(started)s THEN attempt ELSE attempt - 1 END,
    lost_count = CASE WHEN %(started)s THEN lost_count + 1 ELSE lost_count END,
    end_time = CASE WHEN %(started)s THEN coalesce(%(now)s::float8, extract(epoch from now())) ELSE NULL END,
    start_time = CASE WHEN %(started)s THEN start_time ELSE NULL END
WHERE id = %(id)s AND lease_token = %(lease_token)s AND status = 'running'
RETURNING id, attempt, runner_id, start_time, end_time;

-- name: depth
-- Queued and running tasks per project and code
-- (each state read through its own partial index, never the finished tasks).
SELECT project_id, code_name, status, count(*) AS n
FROM (SELECT project_id, code_name, 'queued' AS status FROM tasks WHERE status = 'queued'
      UNION ALL
      SELECT project_id, code_name, 'running' FROM tasks WHERE status = 'running') AS states
GROUP BY project_id, code_name, status;
