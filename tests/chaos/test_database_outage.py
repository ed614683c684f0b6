"""The database goes away for a while: producers and runners wait, retry, and lose nothing."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from tests.chaos.conftest import wait_for
from workhorse import App, TaskStatus
from workhorse.domain.task import python_payload
from workhorse.settings import Settings
from workhorse.storage.sqlite.database import path_from_url

pytestmark = [pytest.mark.chaos, pytest.mark.slow]


def _hold_sqlite_lock(
    url: str, release: threading.Event, held: threading.Event
) -> None:
    conn = sqlite3.connect(path_from_url(url), isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    held.set()
    release.wait(10)
    conn.execute("COMMIT")
    conn.close()


def test_producer_waits_out_a_locked_sqlite_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'locked.db'}"
    app = App(settings=Settings(database_url=url, producer_retry_seconds=10))
    app.client.register_python("work", {})
    release, held = threading.Event(), threading.Event()
    locker = threading.Thread(target=_hold_sqlite_lock, args=(url, release, held))
    locker.start()
    assert held.wait(5)
    timer = threading.Timer(1.5, release.set)
    timer.start()
    task_id = app.client.queue(
        "work", python_payload([1], {})
    )  # blocks until the lock is gone
    locker.join()
    assert app.client.get(task_id).status == TaskStatus.QUEUED
    app.close()


def _terminate_connections(url: str) -> int:
    dbname = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (dbname,),
        ).fetchall()
    return len(rows)


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_runners_and_producers_survive_lost_postgres_connections(
    database_url: str, spawn_runner: Callable[..., subprocess.Popen[bytes]]
) -> None:
    """Every connection is cut repeatedly while tasks run: all tasks still complete once."""
    pg_url = database_url
    app = App(
        settings=Settings(
            database_url=pg_url, lease_seconds=2, producer_retry_seconds=15
        )
    )
    app.client.register_python("work", {})
    ids = app.client.queue_many("work", [python_payload([i], {}) for i in range(200)])
    runners = [spawn_runner(), spawn_runner()]

    def finished() -> int:
        return sum(
            n for _, st, n in app.client.counts() if st not in ("queued", "running")
        )

    for target in (40, 100, 160):
        wait_for(lambda t=target: finished() >= t, 60, f"{target} finished")
        assert _terminate_connections(pg_url) > 0
        # a producer queueing through the outage gets its task stored
        ids += app.client.queue_many("work", [python_payload([target], {})])
    wait_for(lambda: finished() == len(ids), 90, "all finished")
    rows = [t for _, t in app.client.list(limit=1000)]
    assert {t.status for t in rows} == {TaskStatus.COMPLETE}
    for task in rows:
        statuses = [a.status for a in app.client.attempts(task.id)]
        assert statuses.count("complete") == 1
    assert all(r.poll() is None for r in runners), (
        "a runner died instead of reconnecting"
    )
    app.close()


def test_sigterm_lets_running_tasks_finish_and_hands_back_the_rest(
    settings: Settings,
    spawn_runner: Callable[..., subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    app = App(settings=settings)
    app.client.register_python("work", {})
    ids = app.client.queue_many("work", [python_payload([i], {}) for i in range(60)])
    runner = spawn_runner(
        "--concurrency", "1", "--prefetch", "20", "--shutdown-grace", "10"
    )
    runs = tmp_path / "runs.txt"
    wait_for(
        lambda: runs.exists() and len(runs.read_text().split()) >= 3,
        30,
        "tasks running",
    )
    runner.send_signal(signal.SIGTERM)
    assert runner.wait(30) == 0
    rows = [t for _, t in app.client.list(limit=100)]
    assert {t.status for t in rows} <= {TaskStatus.COMPLETE, TaskStatus.QUEUED}
    assert not [t for t in rows if t.status == TaskStatus.QUEUED and t.lease_token]
    queued = [t for t in rows if t.status == TaskStatus.QUEUED]
    assert queued, "the runner should have handed unstarted tasks back"
    assert all(t.attempt == 0 for t in queued)
    spawn_runner()
    wait_for(
        lambda: (
            sum(n for _, st, n in app.client.counts() if st == "complete") == len(ids)
        ),
        60,
        "the rest completed by a new runner",
    )
    app.close()
