"""PostgreSQL adapter: a psycopg 3 connection pool and a LISTEN thread."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, LiteralString

import psycopg
import psycopg.conninfo
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from workhorse.storage.base import Params, Row
from workhorse.storage.notify import Hub, HubListener
from workhorse.storage.queries import load

log = logging.getLogger(__name__)

CHANNEL = "workhorse"
POOL_MAX = 10
CONNECT_TIMEOUT_S = 5
# A host cut off from the database without a word (a partition, a server that lost
# power) must not wait for the kernel's own limits, ~15 min: a statement whose
# packets go unanswered for 10 s fails, as does an idle connection (the LISTEN
# one) after 5 s of silence and three unanswered probes 2 s apart. The statement
# is retried on a new connection, which gets through once the network heals.
# Long statements are not affected: the limits apply to unanswered packets.
# Any of these set in the database URL wins.
TCP_SETTINGS = {
    "keepalives": "1",
    "keepalives_idle": "5",
    "keepalives_interval": "2",
    "keepalives_count": "3",
    "tcp_user_timeout": "10000",  # milliseconds
}


# The server's side of the same, for each session (PostgreSQL's own default is the
# kernel's: two hours before it notices a client gone), and a limit of 15 s on a
# session left idle inside a transaction (a frozen or cut-off client holding row
# locks others wait for). Workhorse's transactions last milliseconds; one ended
# this way is rolled back, and its work retried on a new connection.
# Set only where neither the server's configuration nor the URL's `options` set
# them; ignored on Unix-domain sockets.
SESSION_SETTINGS = {
    "tcp_keepalives_idle": "5",
    "tcp_keepalives_interval": "2",
    "tcp_keepalives_count": "3",
    "tcp_user_timeout": "10000",
    "idle_in_transaction_session_timeout": "15000",
}
_SESSION_SQL = b"""
SELECT set_config(s.name, s.setting, false)
FROM json_each_text(%s::json) AS s(name, setting)
JOIN pg_settings p ON p.name = s.name
WHERE p.source = 'default'
"""


def configure_session(conn: psycopg.Connection[Any]) -> None:
    """Apply SESSION_SETTINGS to a new connection."""
    conn.execute(_SESSION_SQL, (json.dumps(SESSION_SETTINGS),))


def with_tcp_settings(url: str) -> str:
    """`url` with TCP_SETTINGS for each one it does not set itself."""
    given = psycopg.conninfo.conninfo_to_dict(url)
    missing = {k: v for k, v in TCP_SETTINGS.items() if k not in given}
    return psycopg.conninfo.make_conninfo(url, **missing) if missing else url


_BEGIN = b"BEGIN"
_BEGIN_RELAXED = b"BEGIN; SET LOCAL synchronous_commit TO off"


def _rollback(conn: psycopg.Connection[Any]) -> None:
    """End a failed transaction; a broken connection is left to the pool to discard."""
    if conn.closed or conn.pgconn.transaction_status == TransactionStatus.IDLE:
        return
    try:
        conn.execute(b"ROLLBACK")
    except psycopg.Error:
        log.debug("rollback failed", exc_info=True)


class PostgresConnection:
    """Statement executor over one pooled connection inside a transaction."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn
        self._notified: set[str] = set()

    def execute(self, sql: LiteralString, params: Params | None = None) -> int:
        """Run a statement; rows changed."""
        return self._conn.execute(sql, params).rowcount

    def execute_many(self, sql: LiteralString, params: Sequence[Params]) -> None:
        """Run a statement per parameter set (pipelined by psycopg)."""
        with self._conn.cursor() as cur:
            cur.executemany(sql, params)

    def fetch_one(self, sql: LiteralString, params: Params | None = None) -> Row | None:
        """First row or None."""
        row: Row | None = self._conn.execute(sql, params).fetchone()
        return row

    def fetch_all(self, sql: LiteralString, params: Params | None = None) -> list[Row]:
        """All rows."""
        return list(self._conn.execute(sql, params).fetchall())

    def copy_in(self, sql: LiteralString, rows: Iterable[Sequence[Any]]) -> None:
        """COPY ... FROM STDIN, one row at a time (psycopg formats and buffers them)."""
        with self._conn.cursor() as cur, cur.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)

    def notify(self, key: str) -> None:
        """NOTIFY, delivered by PostgreSQL when the transaction commits."""
        if key not in self._notified:
            self._notified.add(key)
            self._conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, key))

    def execute_script(self, sql: str) -> None:
        """Several statements in one call (no parameters)."""
        self._conn.execute(sql.encode())


class PostgresDatabase:
    """Many hosts, one database."""

    dialect = "postgres"

    def __init__(self, url: str) -> None:
        self.url = url
        self._conninfo = with_tcp_settings(url)
        self.queries = load("postgres")
        self.pool = ConnectionPool(
            self._conninfo,
            min_size=1,
            max_size=POOL_MAX,
            timeout=CONNECT_TIMEOUT_S,
            kwargs={"autocommit": True, "row_factory": dict_row},
            configure=configure_session,
            open=False,
            name="workhorse",
        )
        self.pool.open(wait=False)
        self._hub = Hub()
        self._listener_thread: threading.Thread | None = None
        self._closed = threading.Event()

    @contextmanager
    def transaction(
        self, *, write: bool = True, single: bool = False, durable: bool = True
    ) -> Iterator[PostgresConnection]:
        """A pooled connection in BEGIN ... COMMIT (or autocommit for one statement).

        `durable=False` turns synchronous_commit off for this transaction: COMMIT
        returns before its WAL record is flushed (the WAL writer flushes it within
        a fraction of a second; a later synchronous commit flushes it first).
        """
        with self.pool.connection() as conn:
            if single:
                yield PostgresConnection(conn)
                return
            # BEGIN and the SET LOCAL go in one message: one round trip, not two.
            conn.execute(_BEGIN if durable else _BEGIN_RELAXED)
            try:
                yield PostgresConnection(conn)
            except BaseException:
                _rollback(conn)
                raise
            conn.execute(b"COMMIT")

    def listen(self, keys: Sequence[str], *, urgent: bool = False) -> HubListener:
        """Follow keys; the LISTEN thread starts on first use (urgency makes no difference)."""
        listener = self._hub.add(keys, urgent=urgent)
        if self._listener_thread is None:
            self._listener_thread = threading.Thread(
                target=self._listen_loop, name="pg-listen", daemon=True
            )
            self._listener_thread.start()
        return listener

    def _listen_loop(self) -> None:
        backoff = 0.05
        while not self._closed.is_set():
            try:
                with psycopg.connect(
                    self._conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
                ) as conn:
                    configure_session(conn)
                    conn.execute(f"LISTEN {CHANNEL}")
                    backoff = 0.05
                    # Anything may have happened while we were not listening.
                    self._hub.publish_all()
                    while not self._closed.is_set():
                        for note in conn.notifies(timeout=0.5):
                            self._hub.publish(note.payload)
            except psycopg.Error as exc:
                log.warning(
                    "listen connection lost: %s", exc, extra={"event": "listen_lost"}
                )
                self._closed.wait(backoff)
                backoff = min(backoff * 2, 2.0)

    def array(self, values: Sequence[Any]) -> list[Any]:
        """psycopg adapts Python lists to arrays."""
        return list(values)

    def is_transient(self, exc: BaseException) -> bool:
        """Lost connections, pool timeouts, serialization failures, shutdowns."""
        return isinstance(exc, psycopg.OperationalError | PoolTimeout)

    def is_corrupt(self, exc: BaseException) -> bool:
        """data_corrupted and index_corrupted (SQLSTATE XX001, XX002)."""
        return isinstance(
            exc, psycopg.errors.DataCorrupted | psycopg.errors.IndexCorrupted
        )

    def apply_script(self, sql: str) -> None:
        """Run a migration script in one transaction."""
        with self.transaction() as tx:
            tx.execute_script(sql)

    def close(self) -> None:
        """Close the pool and stop listening."""
        self._closed.set()
        if self._listener_thread is not None:
            self._listener_thread.join(timeout=2)
        self.pool.close()
