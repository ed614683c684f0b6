"""SQLite adapter: per-thread connections, BEGIN IMMEDIATE writes, data_version wake-ups."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, LiteralString, TypeVar

from workhorse.errors import InvalidInput
from workhorse.storage.base import Params, Row
from workhorse.storage.notify import Hub, HubListener
from workhorse.storage.queries import load
from workhorse.storage.sqlite.walwatch import (
    WRITING,
    CommitSignal,
    WalWatch,
    open_wal_watch,
    signal_path,
)

# How an urgent listener (a fetcher, a long poll) learns that another process
# committed: on Linux an inotify watch wakes the poller when a writer signals its
# commit (see walwatch); frames from a writer that does not signal make it look at
# data_version every millisecond for 20 ms. Without inotify it looks every
# millisecond. Other waiters get 50 ms; with nobody waiting, no polling.
POLL_SECONDS = 0.001
HOT_SECONDS = 0.02
SLOW_POLL_SECONDS = 0.05
# Waiting for another process's write lock: SQLite's own busy handler sleeps in
# steps of 1, 2, 5, 10... ms, which wastes most of the time under contention, so
# writers retry BEGIN IMMEDIATE themselves for 5 s at most: on Linux as soon as
# another Workhorse writer signals its commit (at the latest every 2 ms), elsewhere
# after pauses from 50 us up to 2 ms.
LOCK_WAIT_SECONDS = 5.0
LOCK_FIRST_PAUSE = 0.00005
LOCK_MAX_PAUSE = 0.002
SYNCHRONOUS_MODES = ("FULL", "NORMAL", "EXTRA")
T = TypeVar("T")


def path_from_url(url: str) -> Path:
    """`sqlite:///rel/path.db` or `sqlite:////abs/path.db` to a Path."""
    rest = url.removeprefix("sqlite:")
    if not rest.startswith("//"):
        raise InvalidInput(
            f"bad SQLite URL {url!r}: use sqlite:///relative.db or sqlite:////abs.db"
        )
    return Path(rest[3:] if rest.startswith("///") else rest[2:])


def _no_watch() -> WalWatch | None:
    return None


def _begin(
    conn: sqlite3.Connection,
    statement: str,
    commits: Callable[[], WalWatch | None] = _no_watch,
) -> None:
    """BEGIN (or another statement that takes a lock), retrying while another process
    holds the lock (see `_retry_locked`)."""
    _retry_locked(lambda: conn.execute(statement), commits)


def _retry_locked(
    run: Callable[[], T], commits: Callable[[], WalWatch | None] = _no_watch
) -> T:
    """`run()`, a statement that changes nothing when it finds the database locked,
    retried while another process holds the lock: at the holder's commit signal
    where `commits()` gives a watch on them, else after short pauses."""
    pause = LOCK_FIRST_PAUSE
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    watch: WalWatch | None = None
    while True:
        try:
            return run()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() > deadline:
                raise
        if watch is None and (watch := commits()) is not None:
            # Forget the signals of commits made before this try, and try again at
            # once: a signal from now on means the lock may be free.
            watch.drain_commits()
            continue
        if watch is not None:
            # A writer that does not signal (the sqlite3 shell) is retried at the
            # longest pause.
            watch.wait(LOCK_MAX_PAUSE, writes=False)
        else:
            time.sleep(pause)
            pause = min(pause * 2, LOCK_MAX_PAUSE)


class _Autocommit:
    """A connection's `execute` for one statement outside BEGIN/COMMIT: the
    statement takes the write lock itself, and is retried while another process
    holds it (a statement refused for the lock has changed nothing)."""

    def __init__(
        self, conn: sqlite3.Connection, commits: Callable[[], WalWatch | None]
    ) -> None:
        self._conn = conn
        self._commits = commits

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        return _retry_locked(lambda: self._conn.execute(sql, params), self._commits)

    def executemany(self, sql: str, params: Any) -> sqlite3.Cursor:
        return _retry_locked(lambda: self._conn.executemany(sql, params), self._commits)


class SqliteConnection:
    """Statement executor over one sqlite3 connection inside a transaction."""

    def __init__(self, conn: sqlite3.Connection | _Autocommit) -> None:
        self._conn = conn
        self.pending: list[str] = []

    def execute(self, sql: LiteralString, params: Params | None = None) -> int:
        """Run a statement; rows changed."""
        return self._conn.execute(sql, params or {}).rowcount

    def execute_many(self, sql: LiteralString, params: Sequence[Params]) -> None:
        """Run a statement for each parameter set."""
        self._conn.executemany(sql, params)

    def fetch_one(self, sql: LiteralString, params: Params | None = None) -> Row | None:
        """First row or None."""
        row: Row | None = self._conn.execute(sql, params or {}).fetchone()
        return row

    def fetch_all(self, sql: LiteralString, params: Params | None = None) -> list[Row]:
        """All rows."""
        return list(self._conn.execute(sql, params or {}).fetchall())

    def copy_in(self, sql: LiteralString, rows: Iterable[Sequence[Any]]) -> None:
        """SQLite has no COPY: run `sql` (an INSERT) once per row."""
        self._conn.executemany(sql, rows)

    def notify(self, key: str) -> None:
        """Announce after commit (in this process; others see data_version move)."""
        if key not in self.pending:
            self.pending.append(key)

    def execute_script(self, sql: str) -> None:
        """Run several statements, split on statement boundaries."""
        buf = ""
        for line in sql.splitlines(keepends=True):
            buf += line
            if sqlite3.complete_statement(buf):
                self._conn.execute(buf)
                buf = ""
        if buf.strip():
            self._conn.execute(buf)


class SqliteDatabase:
    """The embedded database: one file, WAL journal, durable commits."""

    dialect = "sqlite"

    def __init__(self, url: str, *, synchronous: str = "FULL") -> None:
        if synchronous not in SYNCHRONOUS_MODES:
            raise InvalidInput(f"sqlite synchronous must be one of {SYNCHRONOUS_MODES}")
        self.path = path_from_url(url)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._synchronous = synchronous
        self._signal = CommitSignal(signal_path(self.path))
        self.queries = load("sqlite")
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        # In-process writers queue here rather than in SQLite's sleeping busy handler.
        self._write_lock = threading.Lock()
        self._writer_watch: WalWatch | None = None
        self._writer_watch_pid = -1
        self._hub = Hub()
        self._poller: threading.Thread | None = None
        self._closed = threading.Event()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            isolation_level=None,
            check_same_thread=False,
            timeout=LOCK_WAIT_SECONDS,
        )
        conn.row_factory = sqlite3.Row
        # pg_notify(channel, key) means the same as in PostgreSQL: announce `key`
        # when the transaction commits (to this process now, to others by polling).
        conn.create_function("pg_notify", 2, self._notify_from_sql)
        # Switching a new file to WAL needs an exclusive lock, and SQLite answers
        # "locked" at once (no busy handler) when processes open it together.
        _begin(conn, "PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        # Set-up above may wait in SQLite's busy handler; from here on writers use
        # _begin's finer retry and readers Storage.run's.
        conn.execute("PRAGMA busy_timeout=0")
        with self._all_lock:
            self._all.append(conn)
        return conn

    def _commit_watch(self) -> WalWatch | None:
        """Writers' watch on other processes' commit signals (under the write lock),
        opened when a writer first finds the database locked; None without inotify."""
        if self._writer_watch_pid != os.getpid():  # not one inherited across fork
            self._writer_watch = open_wal_watch(self.path)
            self._writer_watch_pid = os.getpid()
        return self._writer_watch

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    def _notify_from_sql(self, _channel: str, key: str) -> None:
        tx: SqliteConnection | None = getattr(self._local, "tx", None)
        if tx is not None:
            tx.notify(key)

    @contextmanager
    def transaction(
        self, *, write: bool = True, single: bool = False, durable: bool = True
    ) -> Iterator[SqliteConnection]:
        """BEGIN IMMEDIATE for writes (one writer), deferred BEGIN for reads.

        A `single` write (its one statement atomic by itself) runs without BEGIN
        and COMMIT, each a statement of SQLite's to prepare and step.
        `durable=False` commits without syncing the WAL (synchronous=NORMAL for this
        transaction): the frames are written, so a process crash keeps them; the
        next durable commit syncs them along with its own.
        """
        conn = self._conn()
        autocommit = write and single
        tx = SqliteConnection(
            _Autocommit(conn, self._commit_watch) if autocommit else conn
        )
        self._local.tx = tx
        relaxed = write and not durable and self._synchronous != "NORMAL"
        if write:
            self._write_lock.acquire()
        try:
            if relaxed:
                conn.execute("PRAGMA synchronous=NORMAL")
            if not autocommit:
                begin = "BEGIN IMMEDIATE" if write else "BEGIN"
                _begin(conn, begin, self._commit_watch if write else _no_watch)
            try:
                yield tx
                if not autocommit:
                    conn.execute("COMMIT")
                if write:
                    self._signal.send()
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        finally:
            if relaxed:
                conn.execute(f"PRAGMA synchronous={self._synchronous}")
            self._local.tx = None
            if write:
                self._write_lock.release()
        for key in tx.pending:
            self._hub.publish(key)

    def listen(self, keys: Sequence[str], *, urgent: bool = False) -> HubListener:
        """Follow keys; starts the data_version poller on first use."""
        listener = self._hub.add(keys, urgent=urgent)
        if self._poller is None:
            self._poller = threading.Thread(
                target=self._poll, name="sqlite-poller", daemon=True
            )
            self._poller.start()
        return listener

    def _poll(self) -> None:
        conn = self._connect()
        watch = open_wal_watch(self.path)
        last = None
        hot_until = 0.0
        hub = self._hub
        try:
            while not self._closed.is_set():
                with hub.cond:
                    while hub.waiters == 0 and not self._closed.is_set():
                        hub.cond.wait(0.5)
                try:
                    version = conn.execute("PRAGMA data_version").fetchone()[0]
                except sqlite3.Error:
                    version = None
                if version != last:
                    last = version
                    hot_until = 0.0
                    hub.publish_all()
                with hub.cond:
                    if not hub.urgent_waiters:
                        # A slow pause, cut short when an urgent waiter arrives.
                        hub.cond.wait_for(
                            lambda: hub.urgent_waiters > 0 or self._closed.is_set(),
                            SLOW_POLL_SECONDS,
                        )
                        continue
                if watch is None:
                    time.sleep(POLL_SECONDS)
                    continue
                if time.monotonic() < hot_until:
                    # Hot: look every millisecond, or at once on a commit signal;
                    # frames appended meanwhile keep it hot without waking us.
                    watch.wait(POLL_SECONDS, writes=False)
                    if watch.writes():
                        hot_until = time.monotonic() + HOT_SECONDS
                elif watch.wait(SLOW_POLL_SECONDS) == WRITING:
                    # Frames from a writer that may not signal its commit: look
                    # every millisecond for a while (a signal still cuts it short).
                    hot_until = time.monotonic() + HOT_SECONDS
        finally:
            if watch is not None:
                watch.close()

    def array(self, values: Sequence[Any]) -> str:
        """Lists travel to SQLite as JSON text, read back with json_each()."""
        return json.dumps(list(values))

    def is_transient(self, exc: BaseException) -> bool:
        """Locked or busy databases and I/O hiccups are worth retrying."""
        if not isinstance(exc, sqlite3.OperationalError):
            return False
        text = str(exc).lower()
        return any(s in text for s in ("locked", "busy", "disk i/o", "unable to open"))

    def is_corrupt(self, exc: BaseException) -> bool:
        """SQLITE_CORRUPT (a malformed page or index) and SQLITE_NOTADB."""
        code = getattr(exc, "sqlite_errorcode", None)
        return (
            isinstance(exc, sqlite3.DatabaseError)
            and code is not None
            and (code & 0xFF in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB))
        )

    def apply_script(self, sql: str) -> None:
        """Run a migration script in one write transaction."""
        with self.transaction() as tx:
            tx.execute_script(sql)

    def close(self) -> None:
        """Close every connection this adapter opened."""
        self._closed.set()
        with self._hub.cond:
            self._hub.cond.notify_all()
        if self._poller is not None:
            self._poller.join(timeout=1)
        watch, self._writer_watch, self._writer_watch_pid = self._writer_watch, None, -1
        if watch is not None:
            watch.close()
        self._signal.close()
        with self._all_lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()
