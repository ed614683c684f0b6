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


class Prefetch:
    """How many tasks a runner holds: its threads plus some claimed ahead.

    Claiming ahead lets one transaction carry a batch when tasks are short; it
    also keeps work from other runners that could start it. So, unless fixed, the
    prefetch follows the tasks' average run time: enough for about TARGET_SECONDS
    of work per thread, between 1 and MAX (tasks of a second or more: 1).
    """

    TARGET_SECONDS = 0.02
    MAX = 200
    _WEIGHT = 0.05  # of each new observation in the moving average

    def __init__(self, concurrency: int, *, fixed: int | None = None) -> None:
        self.concurrency = concurrency
        self.fixed = fixed
        self.average_seconds = self.TARGET_SECONDS  # until measured: one per thread

    def observe(self, seconds: float) -> None:
        """Fold one task's run time into the average (racy updates are harmless)."""
        self.average_seconds += (seconds - self.average_seconds) * self._WEIGHT

    def capacity(self) -> int:
        """Threads plus tasks to claim ahead, now."""
        if self.fixed is not None:
            return self.concurrency + self.fixed
        per_thread = self.TARGET_SECONDS / max(self.average_seconds, 1e-6)
        ahead = min(self.MAX, max(1, int(self.concurrency * per_thread)))
        return self.concurrency + ahead


class Fetcher:
    """Claims up to the free slots and hands each task to `dispatch`.

    Fetching no more than the free slots keeps work on the runners that can start
    it now; the prefetch part of the capacity only smooths the gap between a batch
    finishing and the next claim. While claimed tasks are still waiting for a
    thread, the fetcher waits until half the capacity is free so that claims stay
    batched under load.

    Args:
        held: how many claimed tasks this runner holds now.
        waiting: how many of them have not started yet.
    """

    def __init__(
        self,
        storage: Storage,
        *,
        capacity: Callable[[], int],
        held: Callable[[], int],
        waiting: Callable[[], int],
        dispatch: Callable[[Task, str], None],
        claim_args: dict[str, object],
        stopping: threading.Event,
    ) -> None:
        self.storage = storage
        self.capacity = capacity
        self.held = held
        self.waiting = waiting
        self.dispatch = dispatch
        self.claim_args = claim_args
        self.stopping = stopping
        self._room_wanted = False
        self._room = threading.Event()
        self._thread: threading.Thread | None = None

    def slot_freed(self) -> None:
        """Called after a task leaves; cheap unless the fetcher is waiting for room."""
        if self._room_wanted:
            self._room.set()

    def _free(self) -> int:
        capacity = self.capacity()
        free = capacity - self.held()
        threshold = max(1, capacity // 2) if self.waiting() else 1
        return free if free >= threshold else 0

    def wait_for_room(self) -> int:
        """Block until enough slots are free; 0 when stopping."""
        while not self.stopping.is_set():
            free = self._free()
            if free:
                return min(free, MAX_CLAIM)
            self._room.clear()
            self._room_wanted = True
            # Re-check after announcing the wait, so a release in between is not missed.
            if not self._free():
                self._room.wait(0.5)
            self._room_wanted = False
        return 0

    def run_once(self, limit: int) -> int:
        """One claim of up to `limit` tasks; returns how many were claimed."""
        token = new_token()
        tasks = self.storage.run(
            lambda tx: tx.tasks.claim(token=token, limit=limit, **self.claim_args),  # type: ignore[arg-type]
            retry_for=float("inf"),
        )
        for task in tasks:
            self.dispatch(task, token)
        return len(tasks)

    def _loop(self) -> None:
        listener = self.storage.listen(["tasks"], urgent=True)
        try:
            while not self.stopping.is_set():
                limit = self.wait_for_room()
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
        self._room.set()
        if self._thread is not None:
            self._thread.join()
