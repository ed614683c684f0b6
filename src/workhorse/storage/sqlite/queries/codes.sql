-- Codes: Python task definitions and uploaded code packages with their revisions.

-- name: upsert_python
-- Register or refresh a Python task definition; never turns a package into Python.
INSERT INTO codes (id, project_id, name, kind, max_concurrency, retries, retries_delay, backoff,
                   priority, timeout, options, rate_limit, created_at, updated_at)
VALUES (:id, :project_id, :name, 'python', :max_concurrency, :retries,
        :retries_delay, :backoff, :priority, :timeout, :options, :rate_limit,
        coalesce(:now, (julianday('now') - 2440587.5) * 86400.0),
        coalesce(:now, (julianday('now') - 2440587.5) * 86400.0))
ON CONFLICT (project_id, name) DO UPDATE SET
    max_concurrency = excluded.max_concurrency, retries = excluded.retries,
    retries_delay = excluded.retries_delay, backoff = excluded.backoff,
    priority = excluded.priority, timeout = excluded.timeout, options = excluded.options,
    rate_limit = excluded.rate_limit,
    updated_at = excluded.updated_at
WHERE codes.kind = 'python'
RETURNING kind;

-- name: get
-- One code by name.
SELECT * FROM codes WHERE project_id = :project_id AND name = :name;

-- name: get_by_id
-- One code by id.
SELECT * FROM codes WHERE project_id = :project_id AND id = :id;

-- name: list
-- Codes of a project by name.
SELECT * FROM codes WHERE project_id = :project_id ORDER BY name LIMIT :limit OFFSET :offset;

-- name: upsert_package
-- Create a package code or point it at a new revision with new settings.
INSERT INTO codes (id, project_id, name, kind, revision, command, runtime, max_concurrency,
                   retries, retries_delay, backoff, priority, timeout, options, rate_limit,
                   created_at, updated_at)
VALUES (:id, :project_id, :name, 'package', 1, :command, :runtime,
        :max_concurrency, :retries, :retries_delay, :backoff, :priority,
        :timeout, :options, :rate_limit,
        coalesce(:now, (julianday('now') - 2440587.5) * 86400.0),
        coalesce(:now, (julianday('now') - 2440587.5) * 86400.0))
ON CONFLICT (project_id, name) DO UPDATE SET
    revision = codes.revision + 1, command = excluded.command, runtime = excluded.runtime,
    max_concurrency = excluded.max_concurrency, retries = excluded.retries,
    retries_delay = excluded.retries_delay, backoff = excluded.backoff,
    priority = excluded.priority, timeout = excluded.timeout, options = excluded.options,
    rate_limit = excluded.rate_limit,
    updated_at = excluded.updated_at
WHERE codes.kind = 'package'
RETURNING *;

-- name: insert_revision
-- Store one revision's archive.
INSERT INTO code_revisions (project_id, code_name, revision, checksum, size, archive, blob_path,
                            command, runtime, options, created_at)
VALUES (:project_id, :code_name, :revision, :checksum, :size, :archive,
        :blob_path, :command, :runtime, :options,
        coalesce(:now, (julianday('now') - 2440587.5) * 86400.0));

-- name: get_revision
-- One revision's metadata and archive.
SELECT * FROM code_revisions
WHERE project_id = :project_id AND code_name = :code_name AND revision = :revision;

-- name: list_revisions
-- Revisions of a code, newest first, without archives.
SELECT project_id, code_name, revision, checksum, size, blob_path, command, runtime, options,
       created_at
FROM code_revisions
WHERE project_id = :project_id AND code_name = :code_name
ORDER BY revision DESC LIMIT :limit OFFSET :offset;

-- name: set_paused
-- Pause or resume a code's task queue.
UPDATE codes SET paused = :paused WHERE project_id = :project_id AND name = :name;

-- name: delete_revisions
-- Remove a code's revisions.
DELETE FROM code_revisions WHERE project_id = :project_id AND code_name = :name;

-- name: delete
-- Remove a code.
DELETE FROM codes WHERE project_id = :project_id AND name = :name;
