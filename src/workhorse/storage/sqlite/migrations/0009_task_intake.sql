-- Single tasks queued one per transaction land in an append-only intake table and
-- are moved into `tasks` in batches ("admitted") by the next claim, cancel or batch
-- insert, or by a listing. A durable commit on SQLite writes every page the
-- transaction changed to the WAL as a frame of its own: a task row changes six
-- pages (the table, sqlite_sequence and four indexes), an intake row one (the
-- table's last leaf). The indexes are then written once per batch of admitted
-- tasks, in the claimer's transaction, where their pages are shared.
-- Tasks with a parent or a schedule never go through here (their counts feed
-- fan-ins and overlap checks), only plain enqueues. Reads by id see the intake
-- through `intake_tasks`, which shows its rows as the queued tasks they are.
CREATE TABLE task_intake (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    project_id TEXT NOT NULL,
    code_name TEXT NOT NULL,
    kind TEXT NOT NULL,
    code_revision INTEGER,
    payload TEXT NOT NULL,
    priority INTEGER NOT NULL,
    delay REAL NOT NULL,
    timeout INTEGER NOT NULL,
    label TEXT,
    cluster TEXT NOT NULL,
    retries INTEGER NOT NULL,
    retries_delay INTEGER NOT NULL,
    backoff INTEGER NOT NULL,
    created_at REAL NOT NULL
);

CREATE VIEW intake_tasks AS
SELECT NULL AS seq, id, project_id, code_name, kind, code_revision, payload,
       'queued' AS status, priority, created_at + delay AS run_at, timeout, label, cluster, retries,
       retries_delay, backoff, 0 AS attempt, 0 AS lost_count, NULL AS lease_token,
       NULL AS lease_expires_at, NULL AS runner_id, created_at, NULL AS start_time,
       NULL AS end_time, NULL AS result, NULL AS error, NULL AS progress,
       NULL AS progress_message, 0 AS cancel_requested, NULL AS schedule_id,
       NULL AS parent_id
FROM task_intake;
