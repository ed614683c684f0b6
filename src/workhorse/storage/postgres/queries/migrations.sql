-- Migrations bookkeeping.

-- name: create_table
-- The table of applied versions.
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL);

-- name: lock
-- One migrator at a time.
SELECT pg_advisory_xact_lock(7364513);

-- name: applied
-- Versions already applied.
SELECT version FROM schema_migrations ORDER BY version;

-- name: record
-- Mark a version applied.
INSERT INTO schema_migrations (version, name, applied_at)
VALUES (%(version)s, %(name)s, extract(epoch from now()));
