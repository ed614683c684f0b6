"""SQLite adapter: per-thread connections, BEGIN IMMEDIATE writes, data_version wake-ups."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, LiteralString

from workhorse.errors import InvalidInput
from workhorse.storage.base import Params, Row
from workhorse.storage.notify import Hub, HubListener
from workhorse.storage.queries import load

# How often an idle listener checks whether another process committed. 1 ms keeps
# the enqueue -> start latency near a millisecond for about 1% of one core.
POLL_SECONDS = 0.001
BUSY_TIMEOUT_MS = 5000
SYNCHRONOUS_MODES = ("FULL", "NORMAL", "EXTRA")


def path_from_url(url: str) -> Path:
    """`sqlite:///rel/path.db` or `sqlite:////abs/path.db` to a Path."""
    rest = url.removeprefix("sqlite:")
    if not rest.startswith("//"):
        raise InvalidInput(f"bad SQLite URL {url!r}: use sqlite:///relative.db or sqlite:////abs.db")
    return Path(rest[3:] if rest.startswith("///") else rest[2:])


class SqliteConnection:
    """Statement executor over one sqlite3 connection inside a transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
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
        self.queries = load("sqlite")
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        # In-process writers queue here rather than in SQLite's sleeping busy handler.
        self._write_lock = threading.Lock()
        self._hub = Hub()
        self._poller: threading.Thread | None = None
        self._closed = threading.Event()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
        )
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        with self._all_lock:
            self._all.append(conn)
        return conn

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[SqliteConnection]:
        """BEGIN IMMEDIATE for writes (one writer), deferred BEGIN for reads."""
        conn = self._conn()
        tx = SqliteConnection(conn)
        if write:
            self._write_lock.acquire()
        try:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield tx
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        finally:
            if write:
                self._write_lock.release()
        for key in tx.pending:
            self._hub.publish(key)

    def listen(self, keys: Sequence[str]) -> HubListener:
        """Follow keys; starts the data_version poller on first use."""
        listener = self._hub.add(keys)
        if self._poller is None:
            self._poller = threading.Thread(target=self._poll, name="sqlite-poller", daemon=True)
            self._poller.start()
        return listener

    def _poll(self) -> None:
        conn = self._connect()
        last = None
        while not self._closed.is_set():
            if self._hub.active:
                try:
                    version = conn.execute("PRAGMA data_version").fetchone()[0]
                except sqlite3.Error:
                    version = None
                if version != last:
                    last = version
                    self._hub.publish_all()
            time.sleep(POLL_SECONDS)

    def array(self, values: Sequence[Any]) -> str:
        """Lists travel to SQLite as JSON text, read back with json_each()."""
        return json.dumps(list(values))

    def is_transient(self, exc: BaseException) -> bool:
        """Locked or busy databases and I/O hiccups are worth retrying."""
        if not isinstance(exc, sqlite3.OperationalError):
            return False
        text = str(exc).lower()
        return any(s in text for s in ("locked", "busy", "disk i/o", "unable to open"))

    def apply_script(self, sql: str) -> None:
        """Run a migration script in one write transaction."""
        with self.transaction() as tx:
            tx.execute_script(sql)

    def close(self) -> None:
        """Close every connection this adapter opened."""
        self._closed.set()
        if self._poller is not None:
            self._poller.join(timeout=1)
        with self._all_lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()
