-- Runners: live worker processes and their heartbeats.

-- name: upsert
-- Announce a runner (or refresh it after a restart with the same id).
INSERT INTO runners (id, host, pid, cluster, concurrency, running, codes, sandbox, status,
                     started_at, heartbeat_at)
VALUES (:id, :host, :pid, :cluster, :concurrency, 0, :codes, :sandbox,
        'running', coalesce(:now, (julianday('now') - 2440587.5) * 86400.0),
        coalesce(:now, (julianday('now') - 2440587.5) * 86400.0))
ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, status = 'running';

-- name: heartbeat
-- A runner is alive and running this many tasks.
UPDATE runners SET heartbeat_at = coalesce(:now, (julianday('now') - 2440587.5) * 86400.0),
    running = :running, status = :status
WHERE id = :id;

-- name: delete
-- A runner stopped cleanly.
DELETE FROM runners WHERE id = :id;

-- name: list
-- Every known runner with its heartbeat age in seconds.
SELECT *, coalesce(:now, (julianday('now') - 2440587.5) * 86400.0) - heartbeat_at AS age
FROM runners ORDER BY started_at;

-- name: prune
-- Forget runners silent since before a cut-off.
DELETE FROM runners WHERE heartbeat_at < :before;
