-- Core tables: projects, codes and their revisions, tasks, attempts, logs, runners, leaders.
CREATE TABLE projects (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE codes (
    id TEXT NOT NULL UNIQUE,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('python', 'package')),
    revision INTEGER,
    command TEXT,
    runtime TEXT,
    max_concurrency INTEGER CHECK (max_concurrency IS NULL OR max_concurrency > 0),
    retries INTEGER NOT NULL DEFAULT 0,
    retries_delay INTEGER NOT NULL DEFAULT 0,
    backoff BOOLEAN NOT NULL DEFAULT FALSE,
    priority INTEGER NOT NULL DEFAULT 0,
    timeout INTEGER NOT NULL DEFAULT 3600,
    options TEXT NOT NULL DEFAULT '{}',
    paused BOOLEAN NOT NULL DEFAULT FALSE,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (project_id, name)
);

CREATE TABLE code_revisions (
    project_id TEXT NOT NULL,
    code_name TEXT NOT NULL,
    revision INTEGER NOT NULL,
    checksum TEXT NOT NULL,
    size BIGINT NOT NULL,
    archive BYTEA,
    blob_path TEXT,
    command TEXT NOT NULL,
    runtime TEXT NOT NULL,
    options TEXT NOT NULL DEFAULT '{}',
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (project_id, code_name, revision)
);

CREATE TABLE tasks (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    project_id TEXT NOT NULL,
    code_name TEXT NOT NULL,
    kind TEXT NOT NULL,
    code_revision INTEGER,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    priority SMALLINT NOT NULL,
    run_at DOUBLE PRECISION NOT NULL,
    timeout INTEGER NOT NULL,
    label TEXT,
    cluster TEXT NOT NULL,
    retries INTEGER NOT NULL,
    retries_delay INTEGER NOT NULL,
    backoff BOOLEAN NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    lost_count INTEGER NOT NULL DEFAULT 0,
    lease_token TEXT,
    lease_expires_at DOUBLE PRECISION,
    runner_id TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    start_time DOUBLE PRECISION,
    end_time DOUBLE PRECISION,
    result TEXT,
    error TEXT,
    progress INTEGER,
    progress_message TEXT,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    schedule_id TEXT,
    parent_id TEXT
);
-- Claims walk this index in claim order; ordering by seq alone would make the
-- planner scan every claimed row.
CREATE INDEX tasks_claim ON tasks (cluster, priority DESC, run_at, seq) WHERE status = 'queued';
CREATE INDEX tasks_lease ON tasks (lease_expires_at) WHERE status = 'running';
CREATE INDEX tasks_runner ON tasks (runner_id) WHERE status = 'running';
CREATE INDEX tasks_listing ON tasks (project_id, seq DESC);
CREATE INDEX tasks_code ON tasks (project_id, code_name, status);
CREATE INDEX tasks_parent ON tasks (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX tasks_schedule ON tasks (schedule_id) WHERE schedule_id IS NOT NULL;
CREATE INDEX tasks_finished ON tasks (end_time) WHERE status IN ('complete', 'error', 'cancelled', 'timeout', 'killed');

CREATE TABLE task_attempts (
    task_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    runner_id TEXT,
    start_time DOUBLE PRECISION,
    end_time DOUBLE PRECISION NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    PRIMARY KEY (task_id, attempt)
);

CREATE TABLE task_logs (
    task_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    chunk INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (task_id, attempt, chunk)
);

CREATE TABLE runners (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    cluster TEXT NOT NULL,
    concurrency INTEGER NOT NULL,
    running INTEGER NOT NULL DEFAULT 0,
    codes TEXT NOT NULL DEFAULT '[]',
    sandbox TEXT NOT NULL DEFAULT 'process',
    status TEXT NOT NULL DEFAULT 'running',
    started_at DOUBLE PRECISION NOT NULL,
    heartbeat_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE leaders (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);
