-- Message queues (IronMQ v3): queues with their settings, messages, push delivery status.
CREATE TABLE mq_queues (
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL DEFAULT 'pull' CHECK (type IN ('pull', 'multicast', 'unicast')),
    message_timeout INTEGER NOT NULL DEFAULT 60,
    message_expiration INTEGER NOT NULL DEFAULT 604800,
    push TEXT,
    dead_letter TEXT,
    alerts TEXT,
    total_messages INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (project_id, name)
);
CREATE INDEX mq_queues_push ON mq_queues (project_id, name) WHERE type <> 'pull';
CREATE INDEX mq_queues_alerts ON mq_queues (project_id, name) WHERE alerts IS NOT NULL;

-- state: ready (available now), delayed (available at visible_at), reserved (held
-- until visible_at; once past it the reservation is stale and the message available).
-- Order: ord, then seq. Posted messages have ord 0; a released or timed-out message
-- gets an ord below every ready one, which puts it at the front.
CREATE TABLE mq_messages (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    project_id TEXT NOT NULL,
    queue_name TEXT NOT NULL,
    body TEXT NOT NULL,
    push_headers TEXT,
    state TEXT NOT NULL CHECK (state IN ('ready', 'delayed', 'reserved')),
    ord INTEGER NOT NULL DEFAULT 0,
    visible_at REAL NOT NULL,
    reservation_id TEXT,
    reserved_count INTEGER NOT NULL DEFAULT 0,
    expires_at REAL NOT NULL,
    created_at REAL NOT NULL
);
-- Reserve walks this index in queue order and never passes over reserved or
-- delayed rows: they are not in it (ordering a full index would make every
-- reserve scan the reserved head of the queue).
CREATE INDEX mq_messages_ready ON mq_messages (project_id, queue_name, ord, seq) WHERE state = 'ready';
-- Delayed messages and reservations, by when they become available again.
CREATE INDEX mq_messages_waiting ON mq_messages (project_id, queue_name, visible_at) WHERE state <> 'ready';
-- Size, clear and expiry of one queue.
CREATE INDEX mq_messages_queue ON mq_messages (project_id, queue_name, expires_at);

CREATE TABLE mq_push_statuses (
    message_id TEXT NOT NULL,
    subscriber_name TEXT NOT NULL,
    project_id TEXT NOT NULL,
    queue_name TEXT NOT NULL,
    position INTEGER NOT NULL,
    url TEXT NOT NULL,
    status TEXT NOT NULL,
    status_code INTEGER,
    tries INTEGER NOT NULL DEFAULT 0,
    retries_remaining INTEGER NOT NULL,
    last_try_at REAL,
    reservation_id TEXT,
    error TEXT,
    expires_at REAL NOT NULL,
    PRIMARY KEY (message_id, subscriber_name)
);
CREATE INDEX mq_push_statuses_queue ON mq_push_statuses (project_id, queue_name);
CREATE INDEX mq_push_statuses_expiry ON mq_push_statuses (expires_at);
