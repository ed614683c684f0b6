"""The API while the database is unavailable, and long polls that hold no threads."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import psycopg
import pytest

from tests.conftest import PG_ADMIN_URL
from tests.integration.test_api_http import Api, running_api
from workhorse.storage import Storage
from workhorse.storage.sqlite.database import path_from_url

pytestmark = pytest.mark.slow
RECOVERY_SECONDS = 60.0


@contextmanager
def database_blocked(storage: Storage) -> Iterator[None]:
    """SQLite: another connection holds the write lock. PostgreSQL: connections
    are refused and the existing ones terminated (pg_terminate_backend)."""
    url = storage.settings.database_url
    if storage.dialect == "sqlite":
        conn = sqlite3.connect(path_from_url(url), isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            yield
        finally:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


def _post(http: httpx.Client, api: Api, body: str) -> httpx.Response:
    return http.post(
        f"/3/projects/{api.project}/queues/outage/messages",
        json={"messages": [{"body": body}]},
    )


def test_outage_answers_503_with_retry_after_then_recovers(storage: Storage) -> None:
    with (
        running_api(storage, storage_retry_seconds=0.5, token_cache_seconds=0.1) as api,
        api.client() as http,
    ):
        assert _post(http, api, "before").status_code == 201
        with database_blocked(storage):
            down = _post(http, api, "during")
            assert down.status_code == 503
            assert down.headers["content-type"] == "application/json"
            assert int(down.headers["retry-after"]) >= 1
            assert "msg" in down.json()
            # while the breaker is open, requests are refused at once
            assert _post(http, api, "during").status_code == 503
        deadline = time.monotonic() + RECOVERY_SECONDS
        while (resp := _post(http, api, "after")).status_code == 503:
            assert time.monotonic() < deadline, "the API did not recover"
            time.sleep(0.2)
        assert resp.status_code == 201
        peeked = http.get(
            f"/3/projects/{api.project}/queues/outage/messages?n=10"
        ).json()
        assert next(m["body"] for m in peeked["messages"]) == "before"
        assert "after" in [m["body"] for m in peeked["messages"]]


def test_long_polls_do_not_hold_pool_threads(storage: Storage) -> None:
    with running_api(storage, threads=2) as api, api.client() as http:
        base = f"/3/projects/{api.project}/queues"
        names = [f"lp{i}" for i in range(6)]
        for name in names:
            assert http.put(f"{base}/{name}", json={}).status_code == 200
        results: dict[str, list[str]] = {}

        def poll(name: str) -> None:
            with api.client() as mine:
                got = mine.post(f"{base}/{name}/reservations", json={"wait": 20}).json()
                results[name] = [m["body"] for m in got["messages"]]

        threads = [threading.Thread(target=poll, args=(n,)) for n in names]
        for t in threads:
            t.start()
        # six waiting polls and only two pool threads: other requests still get through
        assert http.get(f"/2/projects/{api.project}/codes").status_code == 200
        assert not results
        for name in names:
            assert (
                http.post(
                    f"{base}/{name}/messages", json={"messages": [{"body": name}]}
                ).status_code
                == 201
            )
        for t in threads:
            t.join(30)
        assert results == {n: [n] for n in names}
