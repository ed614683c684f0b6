-- Message queues: queues, messages (post, reserve, delete, touch, release), push status.
-- :now is NULL in production (the database clock decides) and a fixed time in tests.

-- name: create_queue
-- Create a queue with its settings; returns nothing when it already exists.
INSERT INTO mq_queues (project_id, name, id, type, message_timeout, message_expiration,
                       push, dead_letter, alerts, total_messages, created_at, updated_at)
VALUES (:project_id, :name, :id, :type, :message_timeout, :message_expiration,
        :push, :dead_letter, :alerts, 0,
        coalesce(:now, (julianday('now') - 2440587.5) * 86400.0),
        coalesce(:now, (julianday('now') - 2440587.5) * 86400.0))
ON CONFLICT (project_id, name) DO NOTHING
RETURNING *;

-- name: get_queue
-- One queue of a project.
SELECT * FROM mq_queues WHERE project_id = :project_id AND name = :name;

-- name: lock_queue
-- One queue of a project, locked until the transaction ends (read-modify-write of settings).
SELECT * FROM mq_queues WHERE project_id = :project_id AND name = :name;

-- name: update_queue
-- Replace a queue's settings (the type never changes).
UPDATE mq_queues SET message_timeout = :message_timeout, message_expiration = :message_expiration,
    push = :push, dead_letter = :dead_letter, alerts = :alerts,
    updated_at = coalesce(:now, (julianday('now') - 2440587.5) * 86400.0)
WHERE project_id = :project_id AND name = :name
RETURNING *;

-- name: delete_queue
-- Forget a queue (its messages are deleted separately).
DELETE FROM mq_queues WHERE project_id = :project_id AND name = :name;

-- name: list_queues
-- Queues of a project in name order, after the :previous name, starting with :prefix.
SELECT * FROM mq_queues
WHERE project_id = :project_id
  AND (:previous IS NULL OR name > :previous)
  AND (:prefix IS NULL OR substr(name, 1, length(:prefix)) = :prefix)
ORDER BY name
LIMIT :limit;

-- name: upsert_for_post
-- Create the queue if missing and count :count more posted messages; returns its settings.
INSERT INTO mq_queues (project_id, name, id, total_messages, created_at, updated_at)
VALUES (:project_id, :name, :id, :count,
        coalesce(:now, (julianday('now') - 2440587.5) * 86400.0),
        coalesce(:now, (julianday('now') - 2440587.5) * 86400.0))
ON CONFLICT (project_id, name) DO UPDATE SET total_messages = total_messages + excluded.total_messages
RETURNING type, message_expiration;

-- name: push_queues
-- Every push queue of every project.
SELECT * FROM mq_queues WHERE type <> 'pull' ORDER BY project_id, name;

-- name: alert_queues
-- Every queue with alerts, of every project.
SELECT project_id, name, alerts FROM mq_queues WHERE alerts IS NOT NULL ORDER BY project_id, name;

-- name: set_alerts_if
-- Store new alert state only if nobody changed the alerts since :old was read.
UPDATE mq_queues SET alerts = :new WHERE project_id = :project_id AND name = :name AND alerts = :old;

-- name: queue_names
-- Every queue of every project (for expiry sweeps).
SELECT project_id, name FROM mq_queues ORDER BY project_id, name;

-- name: size
-- Messages of a queue not deleted and not expired, reserved and delayed ones included.
SELECT count(*) AS n FROM mq_messages
WHERE project_id = :project_id AND queue_name = :name
  AND expires_at > coalesce(:now, (julianday('now') - 2440587.5) * 86400.0);

-- name: post
-- Post one message (run once per message, in order, by executemany) to a queue whose
-- row upsert_for_post has just created or counted in this transaction, which also gave
-- its expiration (SQLite has no data-modifying CTEs, so PostgreSQL's one-statement post
-- is two steps here); an id already stored (a retried post) is skipped. The store
-- announces the messages on commit. Parameters are positional: ?1 id, ?2 body,
-- ?3 push_headers, ?4 delay, ?5 project_id, ?6 queue_name, ?7 expiration, ?8 now.
INSERT INTO mq_messages (id, project_id, queue_name, body, push_headers, state, ord, visible_at,
                         reserved_count, expires_at, created_at)
VALUES (?1, ?5, ?6, ?2, ?3,
        CASE WHEN ?4 > 0 THEN 'delayed' ELSE 'ready' END, 0,
        coalesce(?8, (julianday('now') - 2440587.5) * 86400.0) + ?4, 0,
        coalesce(?8, (julianday('now') - 2440587.5) * 86400.0) + ?7,
        coalesce(?8, (julianday('now') - 2440587.5) * 86400.0))
ON CONFLICT (id) DO NOTHING;

-- name: intake_post
-- Post one message through the intake (migration 0010) if its queue exists and is a
-- pull queue; changes nothing otherwise (the caller then takes the full path, which
-- creates the queue). Parameters are positional: ?1 id, ?2 body,
-- ?3 push_headers, ?4 delay, ?5 project_id, ?6 queue_name, ?7 now.
INSERT INTO mq_intake (id, project_id, queue_name, body, push_headers, delay, created_at)
SELECT ?1, ?5, ?6, ?2, ?3, ?4, coalesce(?7, (julianday('now') - 2440587.5) * 86400.0)
WHERE EXISTS (SELECT 1 FROM mq_queues
              WHERE project_id = ?5 AND name = ?6 AND type = 'pull');

-- name: intake_stored
-- Whether a message id is stored, in the intake or admitted (a retried intake post).
SELECT 1 AS stored FROM mq_intake WHERE id = :id
UNION ALL
SELECT 1 FROM mq_messages WHERE id = :id
LIMIT 1;

-- name: intake_span
-- The first and last seq waiting in the intake (NULLs when it is empty).
SELECT min(seq) AS first, max(seq) AS last FROM mq_intake;

-- name: admit_count
-- Admission, first step: count the intake's messages up to :upto in their queues.
UPDATE mq_queues SET total_messages = total_messages + (
    SELECT count(*) FROM mq_intake i
    WHERE i.seq <= :upto AND i.project_id = mq_queues.project_id AND i.queue_name = mq_queues.name)
WHERE (project_id, name) IN (SELECT project_id, queue_name FROM mq_intake WHERE seq <= :upto);

-- name: admit
-- Admission: move the intake's messages up to :upto into their queues, in the order
-- they were posted; expiration counts from the post, under the queue's setting now.
INSERT INTO mq_messages (id, project_id, queue_name, body, push_headers, state, ord, visible_at,
                         reserved_count, expires_at, created_at)
SELECT i.id, i.project_id, i.queue_name, i.body, i.push_headers,
       CASE WHEN i.delay > 0 THEN 'delayed' ELSE 'ready' END, 0, i.created_at + i.delay, 0,
       i.created_at + q.message_expiration, i.created_at
FROM mq_intake AS i JOIN mq_queues AS q ON q.project_id = i.project_id AND q.name = i.queue_name
WHERE i.seq <= :upto
ORDER BY i.seq
ON CONFLICT (id) DO NOTHING;

-- name: admitted
-- After `admit`: drop the rows it moved.
DELETE FROM mq_intake WHERE seq <= :upto;

-- name: promote
-- Make due delayed messages and stale reservations of a queue available; stale
-- reservations go to the front (the scalar subquery is evaluated once).
UPDATE mq_messages SET
    ord = CASE WHEN state = 'reserved'
               THEN (SELECT min(coalesce(min(r.ord), 0), 0) - 1 FROM mq_messages r
                     WHERE r.project_id = :project_id AND r.queue_name = :queue_name AND r.state = 'ready')
               ELSE ord END,
    state = 'ready', reservation_id = NULL
WHERE seq IN (
    SELECT seq FROM mq_messages
    WHERE project_id = :project_id AND queue_name = :queue_name AND state <> 'ready'
      AND visible_at <= coalesce(:now, (julianday('now') - 2440587.5) * 86400.0)
    ORDER BY visible_at
    LIMIT :limit
);

-- name: reserve
-- Reserve up to :n available messages from the front, each under a new reservation id.
UPDATE mq_messages SET state = 'reserved', reserved_count = reserved_count + 1,
    reservation_id = lower(hex(randomblob(12))),
    visible_at = coalesce(:now, (julianday('now') - 2440587.5) * 86400.0) + :timeout
WHERE seq IN (
    -- Walk the ready index in queue order (not the queue index plus a sort).
    SELECT seq FROM mq_messages INDEXED BY mq_messages_ready
    WHERE project_id = :project_id AND queue_name = :queue_name AND state = 'ready'
      AND expires_at > coalesce(:now, (julianday('now') - 2440587.5) * 86400.0)
    ORDER BY ord, seq
    LIMIT :n
)
RETURNING seq, ord, id, queue_name, body, push_headers, reserved_count, reservation_id,
          visible_at, created_at;

-- name: reserve_ready
-- The usual reserve in one statement: up to :n ready messages from the front of a pull
-- queue, each under a new reservation id, for :timeout seconds (null: the queue's own
-- timeout). It reserves nothing, and the caller takes the full path (promote, reserve,
-- dead-letter) instead, when the queue is missing or a push queue, when a delayed message
-- or a reservation of the queue has come due (it has to be put back in line first), or
-- when a message it would hand out is due for the queue's dead-letter queue.
WITH queue AS (
    SELECT message_timeout, json_extract(dead_letter, '$.max_reservations') AS max_reservations
    FROM mq_queues
    WHERE project_id = :project_id AND name = :queue_name AND type = 'pull'
), picked AS MATERIALIZED (
    SELECT seq, reserved_count FROM mq_messages INDEXED BY mq_messages_ready
    WHERE project_id = :project_id AND queue_name = :queue_name AND state = 'ready'
      AND expires_at > coalesce(:now, (julianday('now') - 2440587.5) * 86400.0)
      AND NOT EXISTS (
          SELECT 1 FROM mq_messages
          WHERE project_id = :project_id AND queue_name = :queue_name AND state <> 'ready'
            AND visible_at <= coalesce(:now, (julianday('now') - 2440587.5) * 86400.0))
    ORDER BY ord, seq
    LIMIT :n
)
UPDATE mq_messages SET state = 'reserved', reserved_count = reserved_count + 1,
    reservation_id = lower(hex(randomblob(12))),
    visible_at = coalesce(:now, (julianday('now') - 2440587.5) * 86400.0) + coalesce(:timeout, (SELECT message_timeout FROM queue))
WHERE seq IN (SELECT seq FROM picked)
  AND EXISTS (SELECT 1 FROM queue)
  AND NOT EXISTS (SELECT 1 FROM picked, queue WHERE picked.reserved_count >= queue.max_reservations)
RETURNING seq, ord, id, queue_name, body, push_headers, reserved_count, reservation_id,
          visible_at, created_at;

-- name: dead_letter
-- Move just-reserved messages (:seqs) to the dead-letter queue, undoing that reservation:
-- same id, body and reserved_count; expiration restarts under the new queue.
UPDATE mq_messages SET queue_name = :target, state = 'ready', ord = 0, reservation_id = NULL,
    reserved_count = reserved_count - 1,
    visible_at = coalesce(:now, (julianday('now') - 2440587.5) * 86400.0),
    expires_at = coalesce(:now, (julianday('now') - 2440587.5) * 86400.0) + :expiration
WHERE seq IN (SELECT value FROM json_each(:seqs)) AND state = 'reserved';

-- name: delete_seqs
-- Delete just-reserved messages (reserve with delete: pop).
DELETE FROM mq_messages WHERE seq IN (SELECT value FROM json_each(:seqs));

-- name: get
-- One live message of a queue.
SELECT * FROM mq_messages
WHERE id = :id AND project_id = :project_id AND queue_name = :queue_name
  AND expires_at > coalesce(:now, (julianday('now') - 2440587.5) * 86400.0);

-- name: peek
-- The next :n messages a reserve would return, reserving nothing.
SELECT * FROM (
    SELECT * FROM (
        SELECT seq, 0 AS ord, id, queue_name, body, push_headers, reserved_count, created_at, 0 AS grp
        FROM mq_messages
        WHERE project_id = :project_id AND queue_name = :queue_name AND state = 'reserved'
          AND visible_at <= coalesce(:now, (julianday('now') - 2440587.5) * 86400.0)
          AND expires_at > coalesce(:now, (julianday('now') - 2440587.5) * 86400.0)
        ORDER BY seq LIMIT :n) AS a
    UNION ALL
    SELECT * FROM (
        SELECT seq, ord, id, queue_name, body, push_headers, reserved_count, created_at, 1 AS grp
        FROM mq_messages
        WHERE project_id = :project_id AND queue_name = :queue_name AND state = 'delayed'
          AND visible_at <= coalesce(:now, (julianday('now') - 2440587.5) * 86400.0)
          AND expires_at > coalesce(:now, (julianday('now') - 2440587.5) * 86400.0)
        ORDER BY ord, seq LIMIT :n) AS b
    UNION ALL
    SELECT * FROM (
        SELECT seq, ord, id, queue_name, body, push_headers, reserved_count, created_at, 1 AS grp
        FROM mq_messages INDEXED BY mq_messages_ready
        WHERE project_id = :project_id AND queue_name = :queue_name AND state = 'ready'
          AND expires_at > coalesce(:now, (julianday('now') - 2440587.5) * 86400.0)
        ORDER BY ord, seq LIMIT :n) AS c
) AS p
ORDER BY grp, ord, seq
LIMIT :n;

-- name: delete
-- Delete a message: with its live reservation id, or without one when it is not reserved.
DELETE FROM mq_messages
WHERE id = :id AND project_id = :project_id AND queue_name = :queue_name
  AND ((:reservation_id IS NULL
        AND (state <> 'reserved' OR visible_at <= coalesce(:now, (julianday('now') - 2440587.5) * 86400.0)))
       OR (state = 'reserved' AND reservation_id = :reservation_id
           AND visible_at > coalesce(:now, (julianday('now') - 2440587.5) * 86400.0)));

-- name: delete_many
-- Delete several messages (ids :ids, reservation ids :rids, null when none); returns the deleted ids.
DELETE FROM mq_messages
WHERE seq IN (
    -- CROSS JOIN fixes the order: look each id up, never walk the queue. The reservation id
    -- is read by position (the parsed :rids is cached), not joined: a join of two json_each
    -- would read :rids once per id.
    SELECT m.seq
    FROM json_each(:ids) AS i CROSS JOIN mq_messages AS m
    WHERE m.id = i.value AND m.project_id = :project_id AND m.queue_name = :queue_name
      AND ((json_extract(:rids, '$[' || i.key || ']') IS NULL
            AND (m.state <> 'reserved' OR m.visible_at <= coalesce(:now, (julianday('now') - 2440587.5) * 86400.0)))
           OR (m.state = 'reserved' AND m.reservation_id = json_extract(:rids, '$[' || i.key || ']')
               AND m.visible_at > coalesce(:now, (julianday('now') - 2440587.5) * 86400.0)))
)
RETURNING id;

-- name: touch
-- Extend a live reservation under a new reservation id; counts as a reservation.
UPDATE mq_messages SET reservation_id = :new_reservation_id, reserved_count = reserved_count + 1,
    visible_at = coalesce(:now, (julianday('now') - 2440587.5) * 86400.0) + :timeout
WHERE id = :id AND project_id = :project_id AND queue_name = :queue_name
  AND state = 'reserved' AND reservation_id = :reservation_id
  AND visible_at > coalesce(:now, (julianday('now') - 2440587.5) * 86400.0)
RETURNING visible_at;

-- name: release
-- Give a live reservation back: the message goes to the front, available after :delay.
UPDATE mq_messages SET
    state = CASE WHEN :delay > 0 THEN 'delayed' ELSE 'ready' END,
    reservation_id = NULL,
    visible_at = coalesce(:now, (julianday('now') - 2440587.5) * 86400.0) + :delay,
    ord = (SELECT min(coalesce(min(r.ord), 0), 0) - 1 FROM mq_messages r
           WHERE r.project_id = :project_id AND r.queue_name = :queue_name AND r.state = 'ready')
WHERE id = :id AND project_id = :project_id AND queue_name = :queue_name
  AND state = 'reserved' AND reservation_id = :reservation_id
  AND visible_at > coalesce(:now, (julianday('now') - 2440587.5) * 86400.0);

-- name: hold
-- Keep a live reservation (same id) until :seconds from now (push rounds).
UPDATE mq_messages SET visible_at = coalesce(:now, (julianday('now') - 2440587.5) * 86400.0) + :seconds
WHERE id = :id AND project_id = :project_id AND queue_name = :queue_name
  AND state = 'reserved' AND reservation_id = :reservation_id
  AND visible_at > coalesce(:now, (julianday('now') - 2440587.5) * 86400.0);

-- name: next_due
-- Seconds until the next delayed message or reservation of a queue comes due (null: none).
SELECT min(visible_at) - coalesce(:now, (julianday('now') - 2440587.5) * 86400.0) AS wait
FROM mq_messages
WHERE project_id = :project_id AND queue_name = :queue_name AND state <> 'ready';

-- name: clear
-- Delete every message of a queue, reserved or not.
DELETE FROM mq_messages WHERE project_id = :project_id AND queue_name = :queue_name;

-- name: clear_push_statuses
-- Delivery status of a queue's messages.
DELETE FROM mq_push_statuses WHERE project_id = :project_id AND queue_name = :queue_name;

-- name: expire
-- Delete up to :limit expired messages of a queue.
DELETE FROM mq_messages
WHERE seq IN (
    SELECT seq FROM mq_messages
    WHERE project_id = :project_id AND queue_name = :queue_name
      AND expires_at <= coalesce(:now, (julianday('now') - 2440587.5) * 86400.0)
    LIMIT :limit
);

-- name: expire_push_statuses
-- Delivery status kept past its message's expiration.
DELETE FROM mq_push_statuses
WHERE expires_at <= coalesce(:now, (julianday('now') - 2440587.5) * 86400.0);

-- name: insert_push_status
-- A subscriber's delivery status for one message (kept when it exists).
INSERT INTO mq_push_statuses (message_id, subscriber_name, project_id, queue_name, position, url,
                              status, retries_remaining, expires_at)
VALUES (:message_id, :subscriber_name, :project_id, :queue_name, :position, :url,
        :status, :retries_remaining, :expires_at)
ON CONFLICT (message_id, subscriber_name) DO NOTHING;

-- name: push_statuses
-- Delivery status of one message, in subscriber order.
SELECT * FROM mq_push_statuses
WHERE message_id = :message_id AND project_id = :project_id AND queue_name = :queue_name
ORDER BY position;

-- name: update_push_status
-- Record a delivery attempt.
UPDATE mq_push_statuses SET status = :status, status_code = :status_code, tries = :tries,
    retries_remaining = :retries_remaining, last_try_at = :last_try_at,
    reservation_id = :reservation_id, error = :error
WHERE message_id = :message_id AND subscriber_name = :subscriber_name;

-- name: ack_push
-- A subscriber that answered 202 acknowledges with the round's live reservation id.
UPDATE mq_push_statuses SET status = 'deleted', error = NULL
WHERE message_id = :message_id AND subscriber_name = :subscriber_name AND status = 'reserved'
  AND reservation_id = :reservation_id
  AND EXISTS (SELECT 1 FROM mq_messages m
              WHERE m.id = :message_id AND m.project_id = :project_id AND m.queue_name = :queue_name
                AND m.state = 'reserved' AND m.reservation_id = :reservation_id
                AND m.visible_at > coalesce(:now, (julianday('now') - 2440587.5) * 86400.0));

-- name: depth
-- Messages per project and queue, counted as `size` counts them (reserved and delayed
-- ones included, the intake's too).
SELECT project_id, queue_name, count(*) AS n
FROM (SELECT project_id, queue_name FROM mq_messages WHERE expires_at > (julianday('now') - 2440587.5) * 86400.0
      UNION ALL
      SELECT project_id, queue_name FROM mq_intake) AS live
GROUP BY project_id, queue_name;
