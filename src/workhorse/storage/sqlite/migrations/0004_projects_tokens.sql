-- API tokens: each belongs to one project; only a SHA-256 hash of the token is kept.
CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    token_hash TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    revoked_at REAL
);
CREATE INDEX tokens_project ON tokens (project_id);
