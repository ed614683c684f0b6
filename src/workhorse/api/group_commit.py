"""Group commit: concurrent hot-path writes share one transaction (one fsync).

Posting a message or queueing a task is one small insert, and a durable commit
costs far more than the insert. While a batch is being written, the writes that
arrive wait; the next batch takes them all. At low load a write goes alone,
with no added delay; under load many share a commit.

Each unit of work is `fn(tx) -> result` and must raise, if at all, before it
writes anything (validation and reads first, then inserts). A `WorkhorseError`
from one unit is reported to its request only; the others still commit. Any
other failure (the database) fails the whole batch, and `Storage.run` retries it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from workhorse.api.executor import Executor
from workhorse.errors import WorkhorseError
from workhorse.storage import Storage
from workhorse.storage.stores import Transaction

T = TypeVar("T")
Work = Callable[[Transaction], Any]
MAX_BATCH = 256


class GroupCommit:
    """Coalesces writes into shared transactions.

    Args:
        in_flight: batches written at once (1 suits SQLite's single writer;
            PostgreSQL gains from a few).
    """

    def __init__(
        self, storage: Storage, executor: Executor, *, in_flight: int = 1
    ) -> None:
        self.storage = storage
        self.executor = executor
        self.in_flight = in_flight
        self._pending: list[tuple[Work, asyncio.Future[Any]]] = []
        self._writers = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self, work: Callable[[Transaction], T]) -> T:
        """`work(tx)` in a transaction shared with concurrent writes; its result."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append((work, future))
        if self._writers < self.in_flight:
            self._writers += 1
            task = asyncio.create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = (
                    self._pending[:MAX_BATCH],
                    self._pending[MAX_BATCH:],
                )
                try:
                    outcomes = await self.executor.run(
                        self._write, [w for w, _ in batch]
                    )
                except Exception as exc:  # the database failed: every request hears it
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
                    if future.done():  # the request went away; its write stands
                        continue
                    if ok:
                        future.set_result(value)
                    else:
                        future.set_exception(value)
        finally:
            self._writers -= 1

    def _write(self, units: list[Work]) -> list[tuple[bool, Any]]:
        def work(tx: Transaction) -> list[tuple[bool, Any]]:
            outcomes: list[tuple[bool, Any]] = []
            for unit in units:
                try:
                    outcomes.append((True, unit(tx)))
                except WorkhorseError as exc:  # raised before this unit wrote anything
                    outcomes.append((False, exc))
            return outcomes

        return self.storage.run(work)
