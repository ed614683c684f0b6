"""Writers waiting for another process's SQLite write lock."""

from __future__ import annotations

import sqlite3
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from workhorse.settings import Settings
from workhorse.storage import open_storage
from workhorse.storage.sqlite import database
from workhorse.storage.sqlite.database import SqliteDatabase, _begin
from workhorse.storage.sqlite.walwatch import COMMITTED, NOTHING, open_wal_watch

LOCKED = sqlite3.OperationalError("database is locked")


class LockedFor:
    """A connection stand-in whose statements find the database locked `tries` times."""

    def __init__(self, tries: int) -> None:
        self.left = tries
        self.statements: list[str] = []

    def execute(self, statement: str) -> None:
        self.statements.append(statement)
        if self.left:
            self.left -= 1
            raise LOCKED


class RecordingWatch:
    def __init__(self) -> None:
        self.calls: list[Any] = []

    def drain_commits(self) -> None:
        self.calls.append("drain")

    def wait(self, timeout: float, *, writes: bool = True) -> int:
        self.calls.append(("wait", timeout, writes))
        return COMMITTED


@pytest.fixture
def no_sleeping(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    pauses: list[float] = []
    monkeypatch.setattr(database.time, "sleep", pauses.append)
    return pauses


def test_a_waiting_writer_wakes_on_commit_signals_not_timers(
    no_sleeping: list[float],
) -> None:
    conn, watch = LockedFor(3), RecordingWatch()
    _begin(conn, "BEGIN IMMEDIATE", lambda: watch)  # type: ignore[arg-type]
    assert conn.statements == ["BEGIN IMMEDIATE"] * 4
    # Signals of commits before the second try are forgotten; each later wait ends
    # at the next signal (or the longest pause, for writers that do not signal).
    assert watch.calls == [
        "drain",
        ("wait", database.LOCK_MAX_PAUSE, False),
        ("wait", database.LOCK_MAX_PAUSE, False),
    ]
    assert no_sleeping == []


def test_without_a_watch_a_waiting_writer_backs_off(no_sleeping: list[float]) -> None:
    conn = LockedFor(3)
    _begin(conn, "BEGIN IMMEDIATE")  # type: ignore[arg-type]
    first = database.LOCK_FIRST_PAUSE
    assert no_sleeping == [first, first * 2, first * 4]


def test_other_errors_are_not_retried(no_sleeping: list[float]) -> None:
    class Broken:
        def execute(self, statement: str) -> None:
            raise sqlite3.OperationalError("disk I/O error")

    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        _begin(Broken(), "BEGIN IMMEDIATE")  # type: ignore[arg-type]
    assert no_sleeping == []


linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="inotify is Linux-only"
)


@pytest.fixture
def waiter(db_path: Path) -> Iterator[SqliteDatabase]:
    # A second adapter on the same file stands for another process: its own
    # connections and its own in-process lock, so it meets the holder in SQLite.
    db = SqliteDatabase(f"sqlite:///{db_path}")
    yield db
    db.close()


def insert_in_thread(db: SqliteDatabase, key: str) -> threading.Thread:
    def write() -> None:
        with db.transaction() as tx:
            tx.execute(
                "INSERT INTO leaders (name, holder, expires_at) VALUES (?, 'w', 0)",
                (key,),
            )

    thread = threading.Thread(target=write)
    thread.start()
    return thread


def wait_until_blocked(db: SqliteDatabase, thread: threading.Thread) -> None:
    """The waiter opens its watch when it first finds the database locked."""
    while db._writer_watch is None:
        assert thread.is_alive()
        thread.join(0.001)


@linux_only
def test_drained_signals_are_forgotten(db_path: Path) -> None:
    watch = open_wal_watch(db_path)
    assert watch is not None
    storage = open_storage(Settings(database_url=f"sqlite:///{db_path}"))
    storage.run(lambda tx: tx.runners.delete("nobody"))
    watch.drain_commits()
    assert watch.wait(0.05, writes=False) == NOTHING
    storage.run(lambda tx: tx.runners.delete("nobody"))
    assert watch.wait(2.0, writes=False) == COMMITTED
    storage.close()
    watch.close()


@linux_only
@pytest.mark.parametrize("holder", ["workhorse", "plain sqlite3"])
def test_a_blocked_writer_goes_on_once_the_holder_commits(
    db_path: Path, waiter: SqliteDatabase, holder: str
) -> None:
    if holder == "workhorse":
        holding = SqliteDatabase(f"sqlite:///{db_path}")
        with holding.transaction() as tx:
            tx.execute("INSERT INTO leaders VALUES ('first', 'h', 0)")
            thread = insert_in_thread(waiter, "second")
            wait_until_blocked(waiter, thread)
        holding.close()
    else:  # commits without a signal: found at the longest pause
        conn = sqlite3.connect(db_path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO leaders VALUES ('first', 'h', 0)")
        thread = insert_in_thread(waiter, "second")
        wait_until_blocked(waiter, thread)
        conn.execute("COMMIT")
        conn.close()
    thread.join(database.LOCK_WAIT_SECONDS)
    assert not thread.is_alive()
    check = sqlite3.connect(db_path)
    names = check.execute("SELECT name FROM leaders ORDER BY name").fetchall()
    check.close()
    assert names == [("first",), ("second",)]
