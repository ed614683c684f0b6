"""Forward-only migrations, numbered in lockstep across dialects."""

from __future__ import annotations

import logging

from workhorse.storage.base import Database
from workhorse.storage.queries import migrations

log = logging.getLogger(__name__)


def applied_versions(db: Database) -> set[int]:
    """Versions recorded as applied."""
    with db.transaction() as tx:
        tx.execute(db.queries["migrations.create_table"])
        return {
            int(r["version"]) for r in tx.fetch_all(db.queries["migrations.applied"])
        }


def apply_pending(db: Database) -> list[int]:
    """Apply each missing migration in its own transaction, under a lock.

    Safe to run from several processes at once: each re-checks under the lock.
    """
    done: list[int] = []
    known = applied_versions(db)
    for version, name, sql in migrations(db.dialect):
        if version in known:
            continue
        with db.transaction() as tx:
            tx.fetch_one(db.queries["migrations.lock"])
            rows = tx.fetch_all(db.queries["migrations.applied"])
            if version in {int(r["version"]) for r in rows}:
                continue
            tx.execute_script(sql)
            tx.execute(
                db.queries["migrations.record"], {"version": version, "name": name}
            )
        log.info(
            "applied migration %04d_%s", version, name, extra={"event": "migrated"}
        )
        done.append(version)
    return done
