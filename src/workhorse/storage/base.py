"""The database adapter seam: the little each dialect must provide.

Stores (`stores.py`) are written once over this; each dialect supplies its
connection handling, named queries and a few encoders.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, LiteralString, Protocol

Row = Mapping[str, Any]
# Named parameters everywhere, but for hot bulk statements that bind by position.
Params = Mapping[str, Any] | Sequence[Any]


class Connection(Protocol):
    """One open transaction's statement executor."""

    def execute(self, sql: LiteralString, params: Params | None = None) -> int:
        """Run a statement; returns the number of rows it changed."""
        ...

    def execute_many(self, sql: LiteralString, params: Sequence[Params]) -> None:
        """Run a statement once per parameter set."""
        ...

    def fetch_one(self, sql: LiteralString, params: Params | None = None) -> Row | None:
        """The first row, or None."""
        ...

    def fetch_all(self, sql: LiteralString, params: Params | None = None) -> list[Row]:
        """Every row."""
        ...

    def copy_in(self, sql: LiteralString, rows: Iterable[Sequence[Any]]) -> None:
        """Load many rows through `sql`: PostgreSQL streams them to a COPY ... FROM
        STDIN; SQLite, which has no COPY, runs `sql` (an INSERT) once per row."""
        ...

    def notify(self, key: str) -> None:
        """Announce `key` to listeners once this transaction commits."""
        ...

    def execute_script(self, sql: str) -> None:
        """Run several statements (migrations only)."""
        ...


class Listener(Protocol):
    """Wakes a waiting thread when a key it follows is announced."""

    def wait(self, timeout: float, *, quiet: bool = False) -> bool:
        """Block until an announcement, a `wake()` or `timeout` seconds; True if woken.

        `quiet` waits for `wake()` (or an announcement that comes anyway) without
        asking a polling adapter to look for announcements meanwhile.
        """
        ...

    def wake(self) -> None:
        """Wake the waiting thread, as an announcement would."""
        ...

    def close(self) -> None:
        """Stop following."""
        ...


class Database(Protocol):
    """A dialect adapter: transactions, named queries, notifications."""

    dialect: str

    @property
    def queries(self) -> Mapping[str, LiteralString]:
        """Named queries of this dialect, keyed `entity.name`."""
        ...

    def transaction(
        self, *, write: bool = True, single: bool = False, durable: bool = True
    ) -> AbstractContextManager[Connection]:
        """A transaction; writes take the write lock up front (SQLite IMMEDIATE).

        `single`: the caller runs one statement, atomic by itself; an adapter may
        skip BEGIN/COMMIT for it.
        `durable=False`: the commit need not reach the disk before it returns (no
        fsync); a crash of the machine (SQLite) or of the database server
        (PostgreSQL) may undo it, but never while keeping a later durable commit.
        Only for writes whose loss leaves nothing acknowledged behind (claims).
        """
        ...

    def listen(self, keys: Sequence[str], *, urgent: bool = False) -> Listener:
        """Follow announcements of any of `keys` (prefix match on `key:`).

        `urgent` listeners (fetchers, long polls) want wake-ups as soon as possible;
        a polling adapter looks more often while one of them waits.
        """
        ...

    def array(self, values: Sequence[Any]) -> Any:
        """Encode a list parameter the way this dialect's queries expect."""
        ...

    def is_transient(self, exc: BaseException) -> bool:
        """Whether `exc` means 'try again later' (locked, connection lost)."""
        ...

    def is_corrupt(self, exc: BaseException) -> bool:
        """Whether `exc` reports damaged data (a page or index the database cannot
        trust), which no retry will mend."""
        ...

    def apply_script(self, sql: str) -> None:
        """Run a multi-statement migration script in one transaction."""
        ...

    def close(self) -> None:
        """Close every connection and background thread."""
        ...
