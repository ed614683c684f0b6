-- Fan-in: a task to queue once every child of a parent task has finished.
CREATE TABLE fanins (
    parent_id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    code_name TEXT NOT NULL,
    cluster TEXT NOT NULL,
    fired_task_id TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX fanins_pending ON fanins (created_at) WHERE fired_task_id IS NULL;
