"""The inotify watch that wakes SQLite listeners when another process commits."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from workhorse.settings import Settings
from workhorse.storage import open_storage
from workhorse.storage.sqlite.walwatch import (
    COMMITTED,
    NOTHING,
    WRITING,
    CommitSignal,
    WalWatch,
    open_wal_watch,
    signal_path,
)

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="inotify is Linux-only"
)


@pytest.fixture
def watch(db_path: Path) -> Iterator[WalWatch]:
    opened = open_wal_watch(db_path)
    assert opened is not None
    yield opened
    opened.close()


def commit_through_workhorse(db_path: Path) -> None:
    storage = open_storage(Settings(database_url=f"sqlite:///{db_path}"))
    storage.run(lambda tx: tx.runners.delete("nobody"))
    storage.close()


def write_without_signal(db_path: Path) -> sqlite3.Connection:
    """Commit through plain sqlite3 (as another tool would): frames, no signal."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("CREATE TABLE other (x INTEGER)")
    conn.execute("INSERT INTO other VALUES (1)")
    return conn


def test_a_workhorse_commit_is_signalled(db_path: Path, watch: WalWatch) -> None:
    commit_through_workhorse(db_path)
    assert signal_path(db_path).exists()
    seen = []
    while COMMITTED not in seen and NOTHING not in seen:
        seen.append(watch.wait(2.0))  # WAL frames come first, then the signal
    assert seen[-1] == COMMITTED


def test_frames_from_another_writer_say_a_commit_is_coming(
    db_path: Path, watch: WalWatch
) -> None:
    conn = write_without_signal(db_path)
    assert watch.wait(1.0) == WRITING
    conn.close()


def test_nothing_is_seen_when_nobody_writes(db_path: Path, watch: WalWatch) -> None:
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("SELECT 1 FROM tasks LIMIT 1").fetchall()
    while watch.wait(0.05) != NOTHING:  # the first reader creates the WAL file
        pass
    assert conn.execute("SELECT count(*) FROM tasks").fetchone() == (0,)
    assert watch.wait(0.05) == NOTHING  # reads write nothing
    conn.close()  # (the last connection to close checkpoints the WAL)


def test_waiting_on_signals_only_leaves_frames_for_writes(
    db_path: Path, watch: WalWatch
) -> None:
    conn = write_without_signal(db_path)
    assert watch.wait(0.05, writes=False) == NOTHING  # frames do not wake it
    assert watch.writes() is True
    assert watch.writes() is False  # collected once
    conn.close()
    commit_through_workhorse(db_path)
    assert watch.wait(2.0, writes=False) == COMMITTED


def test_a_touch_from_an_older_writer_is_still_a_signal(
    db_path: Path, watch: WalWatch
) -> None:
    signal_path(db_path).touch()
    assert watch.wait(1.0, writes=False) == COMMITTED
    assert watch.wait(0.05, writes=False) == NOTHING


def test_an_empty_signal_file_gets_its_byte_and_signals(
    db_path: Path, watch: WalWatch
) -> None:
    signal_path(db_path).write_bytes(b"")  # as left by older versions
    watch.drain_commits()
    sender = CommitSignal(signal_path(db_path))
    sender.send()
    assert signal_path(db_path).stat().st_size == 1
    assert watch.wait(1.0, writes=False) == COMMITTED
    sender.close()


def test_the_watch_follows_a_signal_file_created_again(
    db_path: Path, watch: WalWatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender = CommitSignal(signal_path(db_path))
    sender.send()
    assert watch.wait(1.0, writes=False) == COMMITTED
    signal_path(db_path).unlink()
    assert watch.wait(0.05, writes=False) == NOTHING  # a deletion is no commit
    monkeypatch.setattr(CommitSignal, "RECHECK_SECONDS", 0.0)
    sender.send()  # finds its file gone: creates it again (IN_CREATE), then reads
    assert watch.wait(1.0, writes=False) == COMMITTED
    watch.drain_commits()
    sender.send()  # a plain read of the new file
    assert watch.wait(1.0, writes=False) == COMMITTED
    sender.close()
