-- Migrations bookkeeping.

-- name: create_table
-- The table of applied versions.
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL);

-- name: lock
-- One migrator at a time.
SELECT 1;

-- name: applied
-- Versions already applied.
SELECT version FROM schema_migrations ORDER BY version;

-- name: record
-- Mark a version applied.
INSERT INTO schema_migrations (version, name, applied_at)
VALUES (:version, :name, (julianday('now') - 2440587.5) * 86400.0);
