-- Leaders: one holder per name at a time, for leader-only maintenance.

-- name: acquire
-- Take or renew leadership; returns the holder after the attempt.
INSERT INTO leaders (name, holder, expires_at)
VALUES (:name, :holder, coalesce(:now, (julianday('now') - 2440587.5) * 86400.0) + :ttl)
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
WHERE leaders.holder = excluded.holder
   OR leaders.expires_at < coalesce(:now, (julianday('now') - 2440587.5) * 86400.0)
RETURNING holder;

-- name: resign
-- Give leadership up.
DELETE FROM leaders WHERE name = :name AND holder = :holder;

-- name: get
-- The current holder, if any.
SELECT holder, expires_at FROM leaders WHERE name = :name;
