"""The single seam to databases: SQLite (embedded) and PostgreSQL (many hosts)."""

from __future__ import annotations

from workhorse.settings import Settings
from workhorse.storage.base import Database
from workhorse.storage.stores import Storage

__all__ = ["Storage", "open_storage"]


def open_storage(settings: Settings, *, migrate: bool = False) -> Storage:
    """Open the database named by `settings.database_url`, choosing the adapter by scheme."""
    url = settings.database_url
    db: Database
    if url.startswith(("postgresql://", "postgres://")):
        from workhorse.storage.postgres.database import PostgresDatabase

        db = PostgresDatabase(url)
    elif url.startswith("sqlite:"):
        from workhorse.storage.sqlite.database import SqliteDatabase

        db = SqliteDatabase(url, synchronous=settings.sqlite_synchronous)
    else:
        from workhorse.errors import InvalidInput

        raise InvalidInput(
            f"unsupported database URL {url!r}: use sqlite:///path or postgresql://..."
        )
    storage = Storage(db, settings)
    if migrate:
        storage.migrate()
    return storage
