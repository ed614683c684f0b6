-- Leaders: one holder per name at a time, for leader-only maintenance.

-- name: acquire
-- Take or renew leadership; returns the holder after the attempt.
INSERT INTO leaders (name, holder, expires_at)
VALUES (%(name)s, %(holder)s, coalesce(%(now)s::float8, extract(epoch from now())) + %(ttl)s)
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
WHERE leaders.holder = excluded.holder
   OR leaders.expires_at < coalesce(%(now)s::float8, extract(epoch from now()))
RETURNING holder;

-- name: resign
-- Give leadership up.
DELETE FROM leaders WHERE name = %(name)s AND holder = %(holder)s;

-- name: get
-- The current holder, if any.
SELECT holder, expires_at FROM leaders WHERE name = %(name)s;
