"""Migrations apply once, concurrently safe, on both backends."""

from __future__ import annotations

import threading

from workhorse.settings import Settings
from workhorse.storage import open_storage
from workhorse.storage.queries import migrations


def test_migrating_twice_applies_nothing_the_second_time(settings: Settings) -> None:
    storage = open_storage(settings)
    try:
        assert storage.migrate() == []
    finally:
        storage.close()


def test_every_migration_is_recorded(settings: Settings, backend: str) -> None:
    storage = open_storage(settings)
    try:
        from workhorse.storage.migrate import applied_versions

        assert applied_versions(storage.db) == {v for v, _, _ in migrations(backend)}
    finally:
        storage.close()


def test_concurrent_migrators_apply_each_version_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    results: list[list[int]] = []

    def run() -> None:
        storage = open_storage(Settings(database_url=url))
        try:
            results.append(storage.migrate())
        finally:
            storage.close()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    applied = sorted(v for r in results for v in r)
    assert applied == [v for v, _, _ in migrations("sqlite")]
