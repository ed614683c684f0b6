-- Schedules: named, bounded, cron-capable; one fire record per (schedule, due time).
CREATE TABLE schedules (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    code_name TEXT NOT NULL,
    name TEXT,
    payload TEXT NOT NULL,
    label TEXT,
    priority INTEGER,
    timeout INTEGER,
    task_delay REAL NOT NULL DEFAULT 0,
    cluster TEXT NOT NULL DEFAULT 'default',
    max_concurrency INTEGER CHECK (max_concurrency IS NULL OR max_concurrency > 0),
    start_at REAL NOT NULL,
    end_at REAL,
    run_every REAL CHECK (run_every IS NULL OR run_every > 0),
    cron TEXT,
    timezone TEXT NOT NULL DEFAULT 'UTC',
    run_times INTEGER CHECK (run_times IS NULL OR run_times > 0),
    overlap TEXT NOT NULL DEFAULT 'allow' CHECK (overlap IN ('allow', 'skip')),
    catch_up TEXT NOT NULL DEFAULT 'once' CHECK (catch_up IN ('once', 'skip')),
    status TEXT NOT NULL CHECK (status IN ('scheduled', 'paused', 'complete', 'cancelled')),
    next_start REAL,
    run_count INTEGER NOT NULL DEFAULT 0,
    skip_count INTEGER NOT NULL DEFAULT 0,
    error_count INTEGER NOT NULL DEFAULT 0,
    last_run_time REAL,
    msg TEXT,
    -- Schedules defined in code are found again by this key; others use their id.
    sync_key TEXT NOT NULL,
    fingerprint TEXT,
    version INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    UNIQUE (project_id, sync_key)
);
-- The scheduler reads only this index: live schedules by next due time.
CREATE INDEX schedules_due ON schedules (next_start) WHERE status = 'scheduled';
CREATE INDEX schedules_listing ON schedules (project_id, created_at DESC);

-- A due time is decided once: the task (or the skip) and this row commit together,
-- so two schedulers, even two leaders at once, cannot both fire it.
CREATE TABLE schedule_fires (
    schedule_id TEXT NOT NULL,
    due_at REAL NOT NULL,
    task_id TEXT,
    outcome TEXT NOT NULL CHECK (outcome IN ('queued', 'skipped', 'error')),
    fired_at REAL NOT NULL,
    PRIMARY KEY (schedule_id, due_at)
);
CREATE INDEX schedule_fires_age ON schedule_fires (fired_at);
