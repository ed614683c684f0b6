-- Runners: live worker processes and their heartbeats.

-- name: upsert
-- Announce a runner (or refresh it after a restart with the same id).
INSERT INTO runners (id, host, pid, cluster, concurrency, running, codes, sandbox, status,
                     started_at, heartbeat_at)
VALUES (%(id)s, %(host)s, %(pid)s, %(cluster)s, %(concurrency)s, 0, %(codes)s, %(sandbox)s,
        'running', coalesce(%(now)s::float8, extract(epoch from now())),
        coalesce(%(now)s::float8, extract(epoch from now())))
ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, status = 'running';

-- name: heartbeat
-- A runner is alive and running this many tasks.
UPDATE runners SET heartbeat_at = coalesce(%(now)s::float8, extract(epoch from now())),
    running = %(running)s, status = %(status)s
WHERE id = %(id)s;

-- name: delete
-- A runner stopped cleanly.
DELETE FROM runners WHERE id = %(id)s;

-- name: list
-- Every known runner with its heartbeat age in seconds.
SELECT *, coalesce(%(now)s::float8, extract(epoch from now())) - heartbeat_at AS age
FROM runners ORDER BY started_at;

-- name: prune
-- Forget runners silent since before a cut-off.
DELETE FROM runners WHERE heartbeat_at < %(before)s;
