"""Shared commits: single writes from many threads of one process share transactions.

On SQLite a durable commit costs far more than the one-row insert it carries,
and a process's writers take turns for the one write lock anyway. So while one
thread writes, the writes that other threads bring wait, and the next writer
takes them all in one transaction. A thread alone writes at once, as before.
PostgreSQL commits transactions from many connections at once and groups
their WAL flushes itself: there, writes go straight through (serialising task
enqueues measured slower: 8 threads, ~4 500 → ~3 500/s), unless they all change
one row (a queue's message count), whose lock makes each wait for the commit of
the one before: those share commits there too.

Each write is `fn(tx) -> result`, raising (if at all) before it changes
anything; one marked `single_statement` commits alone without BEGIN/COMMIT.
When a shared transaction fails for any reason but the database being
unavailable, each of its writes is tried again alone, so that a failure reaches
only the caller it belongs to.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from workhorse.errors import StorageUnavailable, WorkhorseError

if TYPE_CHECKING:
    from workhorse.storage.stores import Storage, Transaction

T = TypeVar("T")
# Writes in one shared transaction at most: enough to spread a commit thin, few
# enough that the lock it holds is short.
MAX_SHARED = 256


class _Write(Generic[T]):
    """One caller's write and, once written, its result or error."""

    __slots__ = ("error", "fn", "result", "single_statement", "written")

    def __init__(self, fn: Callable[[Transaction], T], single_statement: bool) -> None:
        self.fn = fn
        self.single_statement = single_statement
        self.written = False
        self.result: T | None = None
        self.error: BaseException | None = None

    def succeed(self, result: T) -> None:
        self.result, self.written = result, True

    def fail(self, error: BaseException) -> None:
        self.error, self.written = error, True


class SharedCommits:
    """Writes from concurrent threads, committed together (see the module notes)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._straight = storage.dialect != "sqlite"
        self._waiting: list[_Write[Any]] = []
        self._waiting_lock = threading.Lock()
        # Held by the thread writing; the others queue on it and, when their turn
        # comes, find their write done or write everything still waiting.
        self._writer = threading.Lock()

    def run(
        self,
        fn: Callable[[Transaction], T],
        *,
        single_statement: bool = False,
        one_row: bool = False,
    ) -> T:
        """`fn(tx)` committed durably, alone or with other threads' writes; its result.

        `one_row`: concurrent writes of this kind all change one row, so they share
        commits on PostgreSQL too. Raises what `fn` raised, or StorageUnavailable as
        `Storage.run` does.
        """
        if self._straight and not one_row:
            return self.storage.run(fn, single_statement=single_statement)
        if not self._waiting and self._writer.acquire(blocking=False):
            # Alone: nobody writing, nothing waiting. A thread arriving meanwhile
            # waits for the lock and then commits what is waiting, as below.
            try:
                return self.storage.run(fn, single_statement=single_statement)
            finally:
                self._writer.release()
        write = _Write(fn, single_statement)
        with self._waiting_lock:
            self._waiting.append(write)
        while not write.written:
            with self._writer:
                # The writer before may have taken this write along.
                if not write.written:
                    self._commit(self._take())
        if write.error is not None:
            raise write.error
        return write.result  # type: ignore[return-value]

    def _take(self) -> list[_Write[Any]]:
        with self._waiting_lock:
            batch = self._waiting[:MAX_SHARED]
            del self._waiting[:MAX_SHARED]
        return batch

    def waiting(self) -> int:
        """Writes waiting for a commit now."""
        with self._waiting_lock:
            return len(self._waiting)

    def _commit(self, batch: list[_Write[Any]]) -> None:
        try:
            if len(batch) == 1:
                self._commit_alone(batch[0])
                return
            try:
                results = self.storage.run(lambda tx: [w.fn(tx) for w in batch])
            except StorageUnavailable as exc:
                for write in batch:
                    write.fail(exc)
                return
            except Exception:  # one write's failure: find whose
                for write in batch:
                    self._commit_alone(write)
                return
            for write, result in zip(batch, results, strict=True):
                write.succeed(result)
        finally:
            # Interrupted (KeyboardInterrupt in the writing thread): the others'
            # writes may or may not have landed; they must not wait for ever.
            for write in batch:
                if not write.written:
                    write.fail(
                        WorkhorseError(
                            "interrupted while committing: this write may not be stored"
                        )
                    )

    def _commit_alone(self, write: _Write[Any]) -> None:
        try:
            write.succeed(
                self.storage.run(write.fn, single_statement=write.single_statement)
            )
        except Exception as exc:  # handed to the caller it belongs to
            write.fail(exc)
