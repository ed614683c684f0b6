-- Projects and their API tokens (tokens are stored as SHA-256 hashes only).

-- name: insert
-- Create a project; a second insert of the same id changes nothing.
INSERT INTO projects (id, name, created_at)
VALUES (:id, :name, coalesce(:now, (julianday('now') - 2440587.5) * 86400.0))
ON CONFLICT (id) DO NOTHING;

-- name: get
-- One project.
SELECT id, name, created_at FROM projects WHERE id = :id;

-- name: list
-- Every project with its number of active tokens.
SELECT p.id, p.name, p.created_at,
       (SELECT count(*) FROM tokens t WHERE t.project_id = p.id AND t.revoked_at IS NULL) AS tokens
FROM projects p ORDER BY p.created_at, p.id;

-- name: insert_token
-- Store a new token's hash.
INSERT INTO tokens (id, project_id, name, token_hash, created_at)
VALUES (:id, :project_id, :name, :token_hash,
        coalesce(:now, (julianday('now') - 2440587.5) * 86400.0));

-- name: token_project
-- The project of an active token, found by its hash.
SELECT project_id, token_hash FROM tokens WHERE token_hash = :token_hash AND revoked_at IS NULL;

-- name: list_tokens
-- Tokens (never their hashes) of one project, or of every project when :project_id is NULL.
SELECT id, project_id, name, created_at, revoked_at FROM tokens
WHERE (:project_id IS NULL OR project_id = :project_id)
ORDER BY created_at, id;

-- name: revoke_token
-- Revoke an active token by id.
UPDATE tokens SET revoked_at = coalesce(:now, (julianday('now') - 2440587.5) * 86400.0)
WHERE id = :id AND revoked_at IS NULL;

-- name: count_active_tokens
-- How many tokens are active, in every project.
SELECT count(*) AS n FROM tokens WHERE revoked_at IS NULL;
