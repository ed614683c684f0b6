"""Fetcher: claims due tasks in batches as slots free up, waking on notifications."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from workhorse.domain.ids import new_token
from workhorse.domain.task import Task
from workhorse.storage import Storage

log = logging.getLogger(__name__)

MAX_CLAIM = 100
# With nothing announced, look again this often (delayed tasks becoming due,
# missed notifications).
IDLE_POLL_SECONDS = 1.0


class Slots:
    """How many claimed tasks this runner holds, against its capacity."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.held = 0
        self.waiting = 0  # claimed, not started
        self.cond = threading.Condition()

    def free(self) -> int:
        """Slots free now (call with `cond` held)."""
        return self.capacity - self.held

    def release(self, n: int = 1) -> None:
        """Give slots back and wake the fetcher."""
        with self.cond:
            self.held -= n
            self.cond.notify_all()


class Fetcher:
    """Claims up to the free slots and hands each task to `dispatch`.

    Fetching no more than the free slots keeps work on the runners that can start
    it now; the prefetch part of the capacity only smooths the gap between a batch
    finishing and the next claim. While claimed tasks are still waiting for a
    thread, the fetcher waits until half the capacity is free so that claims stay
    batched under load.
    """

    def __init__(
        self,
        storage: Storage,
        slots: Slots,
        dispatch: Callable[[Task, str], None],
        claim_args: dict[str, object],
        stopping: threading.Event,
    ) -> None:
        self.storage = storage
        self.slots = slots
        self.dispatch = dispatch
        self.claim_args = claim_args
        self.stopping = stopping
        self._thread: threading.Thread | None = None

    def _room(self) -> int:
        with self.slots.cond:
            while not self.stopping.is_set():
                free = self.slots.free()
                threshold = max(1, self.slots.capacity // 2) if self.slots.waiting else 1
                if free >= threshold:
                    return min(free, MAX_CLAIM)
                self.slots.cond.wait(0.5)
            return 0

    def run_once(self, limit: int) -> int:
        """One claim of up to `limit` tasks; returns how many were claimed."""
        token = new_token()
        tasks = self.storage.run(
            lambda tx: tx.tasks.claim(token=token, limit=limit, **self.claim_args),  # type: ignore[arg-type]
            retry_for=float("inf"),
        )
        if tasks:
            with self.slots.cond:
                self.slots.held += len(tasks)
                self.slots.waiting += len(tasks)
            for task in tasks:
                self.dispatch(task, token)
        return len(tasks)

    def _loop(self) -> None:
        listener = self.storage.listen(["tasks"])
        try:
            while not self.stopping.is_set():
                limit = self._room()
                if limit == 0:
                    break
                if self.run_once(limit) < limit:
                    listener.wait(IDLE_POLL_SECONDS)
        finally:
            listener.close()

    def start(self) -> None:
        """Run in a thread."""
        self._thread = threading.Thread(target=self._loop, name="fetcher", daemon=True)
        self._thread.start()

    def join(self) -> None:
        """Wait for the thread after `stopping` is set."""
        if self._thread is not None:
            with self.slots.cond:
                self.slots.cond.notify_all()
            self._thread.join()
