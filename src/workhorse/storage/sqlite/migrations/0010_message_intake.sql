-- Single messages posted to a pull queue land in an append-only intake table, as
-- single tasks do (0009): a durable commit writes each page it changed to the WAL,
-- and a posted message row changes six (the table's leaf, four index leaves and the
-- queue's row, which counts it); an intake row changes one. Every other operation
-- on messages moves the intake into `mq_messages` first ("admission", in the order
-- the messages came), so nothing reads around it. Push queues never take this path
-- (their posts are for the pushers to deliver at once).
CREATE TABLE mq_intake (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    project_id TEXT NOT NULL,
    queue_name TEXT NOT NULL,
    body TEXT NOT NULL,
    push_headers TEXT,
    delay REAL NOT NULL,
    created_at REAL NOT NULL
);
