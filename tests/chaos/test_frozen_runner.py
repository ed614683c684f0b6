"""A runner frozen (SIGSTOP) in the middle of its tasks, past its lease: another
runner rescues and completes them; when the frozen one wakes up and finishes the
same tasks, nothing it reports is recorded (its lease tokens are stale), and it
goes back to work."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from tests.chaos.conftest import assert_back_at_work, fenced, runs, wait_for
from workhorse import App, TaskStatus
from workhorse.domain.task import python_payload
from workhorse.settings import Settings

pytestmark = [pytest.mark.chaos, pytest.mark.slow]
TASKS = 4  # one per thread of the runner that is frozen


def in_a_transaction(url: str) -> bool:
    """Whether another process is inside a write (SQLite) or a transaction
    (PostgreSQL) of this database now."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=0)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError:
            return True
        finally:
            conn.close()
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND state LIKE 'idle in transaction%%' AND pid <> pg_backend_pid()"
        ).fetchone()
        return bool(row and row[0])


def stopped(pid: int) -> bool:
    """Whether the process is stopped (by a signal) now."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "T"


def freeze(proc: subprocess.Popen[bytes], url: str) -> None:
    """SIGSTOP `proc` at a moment it holds no transaction open.

    Frozen inside one, a runner would stop the others longer than its lease: on
    SQLite its write lock stops every writer until it wakes (the lock belongs to
    the process; nothing can take it away), and on PostgreSQL the rows it locked
    wait until the server ends the idle session (15 s). Both are tested
    elsewhere; this test is about leases.
    """
    for _ in range(50):
        proc.send_signal(signal.SIGSTOP)
        wait_for(lambda: stopped(proc.pid), 10, "the runner to stop")
        if not in_a_transaction(url):
            return
        proc.send_signal(signal.SIGCONT)
        time.sleep(0.05)  # let it finish the transaction it is in
    raise AssertionError("the runner was always inside a transaction")


def test_a_frozen_runner_is_fenced_and_goes_back_to_work(
    settings: Settings,
    spawn_runner: Callable[..., subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    app = App(settings=settings)
    app.client.register_python("hold", {})
    ids = app.client.queue_many("hold", [python_payload([i], {}) for i in range(TASKS)])
    runs_file = tmp_path / "runs.txt"

    frozen = spawn_runner(verbose=True)
    wait_for(
        lambda: (
            {t for k, t, p in runs(runs_file) if k == "start" and p == frozen.pid}
            == set(ids)
        ),
        60,
        "the first runner to start every task",
    )
    freeze(frozen, settings.database_url)
    try:
        rescuer = spawn_runner()
        wait_for(
            lambda: all(app.get_task(t).status == TaskStatus.COMPLETE for t in ids),
            60,
            "the second runner to rescue and complete every task",
        )
    finally:
        frozen.send_signal(signal.SIGCONT)

    # Awake again, the first runner ends its copies of the tasks one way or the
    # other: its heartbeat finds the leases gone, or its outcomes are refused.
    log = tmp_path / "runner-0.log"
    wait_for(lambda: fenced(log) >= TASKS, 60, "the woken runner to be fenced")

    for i, task_id in enumerate(ids):
        task = app.get_task(task_id)
        assert task.status == TaskStatus.COMPLETE
        assert task.result == i * 2
        attempts = app.client.attempts(task_id)
        assert [a.status for a in attempts] == ["lost", "complete"], attempts
        assert attempts[1].runner_id != attempts[0].runner_id
    starts = Counter((t, p) for k, t, p in runs(runs_file) if k == "start")
    assert {p for _t, p in starts} == {frozen.pid, rescuer.pid}
    assert all(n == 1 for n in starts.values())
    # What the woken runner finished after the rescue changed nothing above.

    # And it goes back to work: with the other runner gone, it runs new tasks.
    assert_back_at_work(app, rescuer, frozen, runs_file)
    app.close()
