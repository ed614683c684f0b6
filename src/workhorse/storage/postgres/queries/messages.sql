-- Message queues: queues, messages (post, reserve, delete, touch, release), push status.
-- %(now)s is NULL in production (the database clock decides) and a fixed time in tests.
--
-- Statements that address a message by id test its project and queue with `(...) IS TRUE`:
-- that is not an index condition, so the message is found through the id index whatever
-- the statistics say. (Before mq_messages is analyzed the planner takes a queue to hold
-- one row and would rather walk the queue's index, a scan of every message in it.)

-- name: create_queue
-- Create a queue with its settings; returns nothing when it already exists.
INSERT INTO mq_queues (project_id, name, id, type, message_timeout, message_expiration,
                       push, dead_letter, alerts, total_messages, created_at, updated_at)
VALUES (%(project_id)s, %(name)s, %(id)s, %(type)s, %(message_timeout)s, %(message_expiration)s,
        %(push)s, %(dead_letter)s, %(alerts)s, 0,
        coalesce(%(now)s::float8, extract(epoch from now())),
        coalesce(%(now)s::float8, extract(epoch from now())))
ON CONFLICT (project_id, name) DO NOTHING
RETURNING *;

-- name: get_queue
-- One queue of a project.
SELECT * FROM mq_queues WHERE project_id = %(project_id)s AND name = %(name)s;

-- name: lock_queue
-- One queue of a project, locked until the transaction ends (read-modify-write of settings).
SELECT * FROM mq_queues WHERE project_id = %(project_id)s AND name = %(name)s
FOR UPDATE;

-- name: update_queue
-- Replace a queue's settings (the type never changes).
UPDATE mq_queues SET message_timeout = %(message_timeout)s, message_expiration = %(message_expiration)s,
    push = %(push)s, dead_letter = %(dead_letter)s, alerts = %(alerts)s,
    updated_at = coalesce(%(now)s::float8, extract(epoch from now()))
WHERE project_id = %(project_id)s AND name = %(name)s
RETURNING *;

-- name: delete_queue
-- Forget a queue (its messages are deleted separately).
DELETE FROM mq_queues WHERE project_id = %(project_id)s AND name = %(name)s;

-- name: list_queues
-- Queues of a project in name order, after the %(previous)s name, starting with %(prefix)s.
SELECT * FROM mq_queues
WHERE project_id = %(project_id)s
  AND (%(previous)s::text IS NULL OR name > %(previous)s)
  AND (%(prefix)s::text IS NULL OR left(name, length(%(prefix)s)) = %(prefix)s)
ORDER BY name
LIMIT %(limit)s;

-- name: upsert_for_post
-- Create the queue if missing and count %(count)s more posted messages; returns its settings.
INSERT INTO mq_queues (project_id, name, id, total_messages, created_at, updated_at)
VALUES (%(project_id)s, %(name)s, %(id)s, %(count)s,
        coalesce(%(now)s::float8, extract(epoch from now())),
        coalesce(%(now)s::float8, extract(epoch from now())))
ON CONFLICT (project_id, name) DO UPDATE SET total_messages = mq_queues.total_messages + excluded.total_messages
RETURNING type, message_expiration;

-- name: push_queues
-- Every push queue of every project.
SELECT * FROM mq_queues WHERE type <> 'pull' ORDER BY project_id, name;

-- name: alert_queues
-- Every queue with alerts, of every project.
SELECT project_id, name, alerts FROM mq_queues WHERE alerts IS NOT NULL ORDER BY project_id, name;

-- name: set_alerts_if
-- Store new alert state only if nobody changed the alerts since %(old)s was read.
UPDATE mq_queues SET alerts = %(new)s WHERE project_id = %(project_id)s AND name = %(name)s AND alerts = %(old)s;

-- name: queue_names
-- Every queue of every project (for expiry sweeps).
SELECT project_id, name FROM mq_queues ORDER BY project_id, name;

-- name: size
-- Messages of a queue not deleted and not expired, reserved and delayed ones included.
SELECT count(*) AS n FROM mq_messages
WHERE project_id = %(project_id)s AND queue_name = %(name)s
  AND expires_at > coalesce(%(now)s::float8, extract(epoch from now()));

-- name: post
-- Post a batch (%(rows)s, a JSON array of {id, body, push_headers, delay}) in one
-- statement: create the queue if missing and count %(count)s more posts, insert the
-- messages in order (ids already stored, a retried post, are skipped) and announce
-- them on commit, to consumers (%(key)s) and, for push queues, to the pushers. A
-- first try runs without the ON CONFLICT line (MessageStore.post says why).
WITH queue AS (
    INSERT INTO mq_queues (project_id, name, id, total_messages, created_at, updated_at)
    VALUES (%(project_id)s, %(queue_name)s, %(queue_id)s, %(count)s,
            coalesce(%(now)s::float8, extract(epoch from now())),
            coalesce(%(now)s::float8, extract(epoch from now())))
    ON CONFLICT (project_id, name) DO UPDATE SET total_messages = mq_queues.total_messages + excluded.total_messages
    RETURNING type, message_expiration
), inserted AS (
    INSERT INTO mq_messages (id, project_id, queue_name, body, push_headers, state, ord, visible_at,
                             reserved_count, expires_at, created_at)
    SELECT r.id, %(project_id)s, %(queue_name)s, r.body, r.push_headers,
           CASE WHEN r.delay > 0 THEN 'delayed' ELSE 'ready' END, 0,
           coalesce(%(now)s::float8, extract(epoch from now())) + r.delay, 0,
           coalesce(%(now)s::float8, extract(epoch from now())) + queue.message_expiration,
           coalesce(%(now)s::float8, extract(epoch from now()))
    FROM queue, ROWS FROM (json_to_recordset(%(rows)s::json)
                           AS (id text, body text, push_headers text, delay float8)) WITH ORDINALITY AS r(id, body, push_headers, delay, n)
    ORDER BY r.n
    ON CONFLICT (id) DO NOTHING
)
SELECT pg_notify('workhorse', %(key)s),
       CASE WHEN type <> 'pull' THEN pg_notify('workhorse', %(push_key)s) END
FROM queue;

-- name: promote
-- Make due delayed messages and stale reservations of a queue available; stale
-- reservations go to the front.
WITH due AS (
    SELECT seq FROM mq_messages
    WHERE project_id = %(project_id)s AND queue_name = %(queue_name)s AND state <> 'ready'
      AND visible_at <= coalesce(%(now)s::float8, extract(epoch from now()))
    ORDER BY visible_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), front AS (
    SELECT least(coalesce(min(ord), 0), 0) - 1 AS ord FROM mq_messages
    WHERE project_id = %(project_id)s AND queue_name = %(queue_name)s AND state = 'ready'
)
UPDATE mq_messages m SET
    ord = CASE WHEN m.state = 'reserved' THEN front.ord ELSE m.ord END,
    state = 'ready', reservation_id = NULL
FROM due, front
WHERE m.seq = due.seq;

-- name: reserve
-- Reserve up to %(n)s available messages from the front, each under a new reservation id;
-- rows other consumers are reserving are skipped, not waited for.
WITH picked AS (
    SELECT seq FROM mq_messages
    WHERE project_id = %(project_id)s AND queue_name = %(queue_name)s AND state = 'ready'
      AND expires_at > coalesce(%(now)s::float8, extract(epoch from now()))
    ORDER BY ord, seq
    LIMIT %(n)s
    FOR UPDATE SKIP LOCKED
)
UPDATE mq_messages m SET state = 'reserved', reserved_count = m.reserved_count + 1,
    reservation_id = replace(gen_random_uuid()::text, '-', ''),
    visible_at = coalesce(%(now)s::float8, extract(epoch from now())) + %(timeout)s
FROM picked
WHERE m.seq = picked.seq
RETURNING m.seq, m.ord, m.id, m.queue_name, m.body, m.push_headers, m.reserved_count,
          m.reservation_id, m.visible_at, m.created_at;

-- name: reserve_ready
-- The usual reserve in one statement: up to %(n)s ready messages from the front of a pull
-- queue, each under a new reservation id, for %(timeout)s seconds (null: the queue's own
-- timeout). It reserves nothing, and the caller takes the full path (promote, reserve,
-- dead-letter) instead, when the queue is missing or a push queue, when a delayed message
-- or a reservation of the queue has come due (it has to be put back in line first), or
-- when a message it would hand out is due for the queue's dead-letter queue.
-- (The next due time is read in visible_at order, which only the waiting index gives;
-- the dead-letter test does not refer to the updated row, so it runs once.) Like any
-- reservation it commits without waiting for the disk (ADR 0007): synchronous_commit
-- is off for its own transaction.
WITH relaxed AS (
    SELECT set_config('synchronous_commit', 'off', true) AS setting
), queue AS (
    SELECT message_timeout, (dead_letter::json ->> 'max_reservations')::int AS max_reservations
    FROM mq_queues
    WHERE project_id = %(project_id)s AND name = %(queue_name)s AND type = 'pull'
), picked AS (
    SELECT seq, reserved_count FROM mq_messages
    WHERE project_id = %(project_id)s AND queue_name = %(queue_name)s AND state = 'ready'
      AND expires_at > coalesce(%(now)s::float8, extract(epoch from now()))
      AND coalesce((SELECT w.visible_at FROM mq_messages w
                    WHERE w.project_id = %(project_id)s AND w.queue_name = %(queue_name)s
                      AND w.state <> 'ready'
                    ORDER BY w.visible_at LIMIT 1), 'infinity')
          > coalesce(%(now)s::float8, extract(epoch from now()))
    ORDER BY ord, seq
    LIMIT %(n)s
    FOR UPDATE SKIP LOCKED
)
UPDATE mq_messages m SET state = 'reserved', reserved_count = m.reserved_count + 1,
    reservation_id = replace(gen_random_uuid()::text, '-', ''),
    visible_at = coalesce(%(now)s::float8, extract(epoch from now()))
                 + coalesce(%(timeout)s::int, queue.message_timeout)
FROM picked, queue, relaxed
WHERE m.seq = picked.seq
  AND NOT EXISTS (SELECT 1 FROM picked p, queue q WHERE p.reserved_count >= q.max_reservations)
RETURNING m.seq, m.ord, m.id, m.queue_name, m.body, m.push_headers, m.reserved_count,
          m.reservation_id, m.visible_at, m.created_at;

-- name: dead_letter
-- Move just-reserved messages (%(seqs)s) to the dead-letter queue, undoing that reservation:
-- same id, body and reserved_count; expiration restarts under the new queue.
UPDATE mq_messages SET queue_name = %(target)s, state = 'ready', ord = 0, reservation_id = NULL,
    reserved_count = reserved_count - 1,
    visible_at = coalesce(%(now)s::float8, extract(epoch from now())),
    expires_at = coalesce(%(now)s::float8, extract(epoch from now())) + %(expiration)s
WHERE seq = ANY(%(seqs)s) AND state = 'reserved';

-- name: delete_seqs
-- Delete just-reserved messages (reserve with delete: pop).
DELETE FROM mq_messages WHERE seq = ANY(%(seqs)s);

-- name: get
-- One live message of a queue.
SELECT * FROM mq_messages
WHERE id = %(id)s AND (project_id = %(project_id)s AND queue_name = %(queue_name)s) IS TRUE
  AND expires_at > coalesce(%(now)s::float8, extract(epoch from now()));

-- name: peek
-- The next %(n)s messages a reserve would return, reserving nothing.
SELECT * FROM (
    SELECT * FROM (
        SELECT seq, 0::bigint AS ord, id, queue_name, body, push_headers, reserved_count, created_at, 0 AS grp
        FROM mq_messages
        WHERE project_id = %(project_id)s AND queue_name = %(queue_name)s AND state = 'reserved'
          AND visible_at <= coalesce(%(now)s::float8, extract(epoch from now()))
          AND expires_at > coalesce(%(now)s::float8, extract(epoch from now()))
        ORDER BY seq LIMIT %(n)s) AS a
    UNION ALL
    SELECT * FROM (
        SELECT seq, ord, id, queue_name, body, push_headers, reserved_count, created_at, 1 AS grp
        FROM mq_messages
        WHERE project_id = %(project_id)s AND queue_name = %(queue_name)s AND state = 'delayed'
          AND visible_at <= coalesce(%(now)s::float8, extract(epoch from now()))
          AND expires_at > coalesce(%(now)s::float8, extract(epoch from now()))
        ORDER BY ord, seq LIMIT %(n)s) AS b
    UNION ALL
    SELECT * FROM (
        SELECT seq, ord, id, queue_name, body, push_headers, reserved_count, created_at, 1 AS grp
        FROM mq_messages
        WHERE project_id = %(project_id)s AND queue_name = %(queue_name)s AND state = 'ready'
          AND expires_at > coalesce(%(now)s::float8, extract(epoch from now()))
        ORDER BY ord, seq LIMIT %(n)s) AS c
) AS p
ORDER BY grp, ord, seq
LIMIT %(n)s;

-- name: delete
-- Delete a message: with its live reservation id, or without one when it is not reserved.
DELETE FROM mq_messages
WHERE id = %(id)s AND (project_id = %(project_id)s AND queue_name = %(queue_name)s) IS TRUE
  AND ((%(reservation_id)s::text IS NULL
        AND (state <> 'reserved' OR visible_at <= coalesce(%(now)s::float8, extract(epoch from now()))))
       OR (state = 'reserved' AND reservation_id = %(reservation_id)s
           AND visible_at > coalesce(%(now)s::float8, extract(epoch from now()))));

-- name: delete_many
-- Delete several messages (ids %(ids)s, reservation ids %(rids)s, null when none); returns the deleted ids.
DELETE FROM mq_messages m
USING unnest(%(ids)s::text[], %(rids)s::text[]) AS d(id, rid)
WHERE m.id = d.id AND (m.project_id = %(project_id)s AND m.queue_name = %(queue_name)s) IS TRUE
  AND ((d.rid IS NULL
        AND (m.state <> 'reserved' OR m.visible_at <= coalesce(%(now)s::float8, extract(epoch from now()))))
       OR (m.state = 'reserved' AND m.reservation_id = d.rid
           AND m.visible_at > coalesce(%(now)s::float8, extract(epoch from now()))))
RETURNING m.id;

-- name: touch
-- Extend a live reservation under a new reservation id; counts as a reservation.
UPDATE mq_messages SET reservation_id = %(new_reservation_id)s, reserved_count = reserved_count + 1,
    visible_at = coalesce(%(now)s::float8, extract(epoch from now())) + %(timeout)s
WHERE id = %(id)s AND (project_id = %(project_id)s AND queue_name = %(queue_name)s) IS TRUE
  AND state = 'reserved' AND reservation_id = %(reservation_id)s
  AND visible_at > coalesce(%(now)s::float8, extract(epoch from now()))
RETURNING visible_at;

-- name: release
-- Give a live reservation back: the message goes to the front, available after %(delay)s.
UPDATE mq_messages SET
    state = CASE WHEN %(delay)s::float8 > 0 THEN 'delayed' ELSE 'ready' END,
    reservation_id = NULL,
    visible_at = coalesce(%(now)s::float8, extract(epoch from now())) + %(delay)s,
    ord = (SELECT least(coalesce(min(r.ord), 0), 0) - 1 FROM mq_messages r
           WHERE r.project_id = %(project_id)s AND r.queue_name = %(queue_name)s AND r.state = 'ready')
WHERE id = %(id)s AND (project_id = %(project_id)s AND queue_name = %(queue_name)s) IS TRUE
  AND state = 'reserved' AND reservation_id = %(reservation_id)s
  AND visible_at > coalesce(%(now)s::float8, extract(epoch from now()));

-- name: hold
-- Keep a live reservation (same id) until %(seconds)s from now (push rounds).
UPDATE mq_messages SET visible_at = coalesce(%(now)s::float8, extract(epoch from now())) + %(seconds)s
WHERE id = %(id)s AND (project_id = %(project_id)s AND queue_name = %(queue_name)s) IS TRUE
  AND state = 'reserved' AND reservation_id = %(reservation_id)s
  AND visible_at > coalesce(%(now)s::float8, extract(epoch from now()));

-- name: next_due
-- Seconds until the next delayed message or reservation of a queue comes due (null: none).
SELECT min(visible_at) - coalesce(%(now)s::float8, extract(epoch from now())) AS wait
FROM mq_messages
WHERE project_id = %(project_id)s AND queue_name = %(queue_name)s AND state <> 'ready';

-- name: clear
-- Delete every message of a queue, reserved or not.
DELETE FROM mq_messages WHERE project_id = %(project_id)s AND queue_name = %(queue_name)s;

-- name: clear_push_statuses
-- Delivery status of a queue's messages.
DELETE FROM mq_push_statuses WHERE project_id = %(project_id)s AND queue_name = %(queue_name)s;

-- name: expire
-- Delete up to %(limit)s expired messages of a queue.
DELETE FROM mq_messages
WHERE seq IN (
    SELECT seq FROM mq_messages
    WHERE project_id = %(project_id)s AND queue_name = %(queue_name)s
      AND expires_at <= coalesce(%(now)s::float8, extract(epoch from now()))
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
);

-- name: expire_push_statuses
-- Delivery status kept past its message's expiration.
DELETE FROM mq_push_statuses
WHERE expires_at <= coalesce(%(now)s::float8, extract(epoch from now()));

-- name: insert_push_status
-- A subscriber's delivery status for one message (kept when it exists).
INSERT INTO mq_push_statuses (message_id, subscriber_name, project_id, queue_name, position, url,
                              status, retries_remaining, expires_at)
VALUES (%(message_id)s, %(subscriber_name)s, %(project_id)s, %(queue_name)s, %(position)s, %(url)s,
        %(status)s, %(retries_remaining)s, %(expires_at)s)
ON CONFLICT (message_id, subscriber_name) DO NOTHING;

-- name: push_statuses
-- Delivery status of one message, in subscriber order.
SELECT * FROM mq_push_statuses
WHERE message_id = %(message_id)s AND project_id = %(project_id)s AND queue_name = %(queue_name)s
ORDER BY position;

-- name: update_push_status
-- Record a delivery attempt.
UPDATE mq_push_statuses SET status = %(status)s, status_code = %(status_code)s, tries = %(tries)s,
    retries_remaining = %(retries_remaining)s, last_try_at = %(last_try_at)s,
    reservation_id = %(reservation_id)s, error = %(error)s
WHERE message_id = %(message_id)s AND subscriber_name = %(subscriber_name)s;

-- name: ack_push
-- A subscriber that answered 202 acknowledges with the round's live reservation id.
UPDATE mq_push_statuses SET status = 'deleted', error = NULL
WHERE message_id = %(message_id)s AND subscriber_name = %(subscriber_name)s AND status = 'reserved'
  AND reservation_id = %(reservation_id)s
  AND EXISTS (SELECT 1 FROM mq_messages m
              WHERE m.id = %(message_id)s AND (m.project_id = %(project_id)s AND m.queue_name = %(queue_name)s) IS TRUE
                AND m.state = 'reserved' AND m.reservation_id = %(reservation_id)s
                AND m.visible_at > coalesce(%(now)s::float8, extract(epoch from now())));

-- name: depth
-- Messages per project and queue, counted as `size` counts them (reserved and delayed
-- ones included).
SELECT project_id, queue_name, count(*) AS n
FROM (SELECT project_id, queue_name FROM mq_messages
      WHERE expires_at > extract(epoch from now())) AS live
GROUP BY project_id, queue_name;
