"""Shared fixtures: storages on both backends, apps, and runner factories that always stop."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from workhorse.app import App
from workhorse.settings import Settings
from workhorse.storage import Storage, open_storage
from workhorse.worker.worker import Worker, WorkerConfig

PG_ADMIN_URL = os.environ.get(
    "WORKHORSE_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = ["sqlite", "postgres"]
KEEP_TABLES = ("schema_migrations",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that touches PostgreSQL."""
    for item in items:
        names = getattr(item, "fixturenames", ())
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("backend") if callspec else None
        if "pg_url" in names or backend == "postgres":
            item.add_marker(pytest.mark.postgres)


def _pg_available() -> str | None:
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return str(exc)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh database for this test session; fails (not skips) in CI when PG is down."""
    problem = _pg_available()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI but unreachable: {problem}")
        pytest.skip(f"PostgreSQL unreachable: {problem}")
    name = f"workhorse_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    storage = open_storage(Settings(database_url=url), migrate=True)
    storage.close()
    yield url
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _truncate_pg(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
        tables = [r[0] for r in rows if r[0] not in KEEP_TABLES]
        if tables:
            conn.execute(
                "TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY"
            )


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The backend under test: each test using it runs on SQLite and on PostgreSQL."""
    return str(request.param)


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A clean, migrated database of the parametrised backend."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'workhorse.db'}"
        open_storage(Settings(database_url=url), migrate=True).close()
        return url
    url = str(request.getfixturevalue("pg_url"))
    _truncate_pg(url)
    return url


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Settings with short leases so failure tests finish quickly."""
    return Settings(
        database_url=database_url, lease_seconds=3.0, producer_retry_seconds=5.0
    )


@pytest.fixture
def storage(settings: Settings) -> Iterator[Storage]:
    """An open storage on the parametrised backend."""
    s = open_storage(settings)
    yield s
    s.close()


@pytest.fixture
def pg_storage(pg_url: str) -> Iterator[Storage]:
    """An open storage on an emptied PostgreSQL database, for PostgreSQL-only tests."""
    _truncate_pg(pg_url)
    s = open_storage(Settings(database_url=pg_url))
    yield s
    s.close()


@pytest.fixture
def app(settings: Settings) -> Iterator[App]:
    """An App on the parametrised backend."""
    a = App(settings=settings)
    yield a
    a.close()


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """Start in-process workers; every one started is stopped at the end."""
    started: list[Worker] = []

    def start(app: App, **config: object) -> Worker:
        app.register_all()
        defaults: dict[str, object] = {
            "concurrency": 4,
            "shutdown_grace": 5.0,
            "kill_grace": 1.0,
            "cache_dir": tmp_path / "cache",
        }
        defaults.update(config)
        worker = Worker(
            app.storage, registry=app.registry, config=WorkerConfig(**defaults)
        )  # type: ignore[arg-type]
        worker.start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop(grace=2.0)
