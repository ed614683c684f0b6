"""Completer: records outcomes in batches; a stale lease makes an outcome a no-op."""

from __future__ import annotations

import logging
import queue
import threading

from workhorse.domain.task import Outcome
from workhorse.storage import Storage

log = logging.getLogger(__name__)
MAX_BATCH = 1000


class Completer:
    """Collects outcomes from runner threads and writes them a batch per transaction."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._queue: queue.SimpleQueue[Outcome | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.recorded = 0
        self.stale = 0

    def put(self, outcome: Outcome) -> None:
        """Queue an outcome for the next batch."""
        self._queue.put(outcome)

    def run_once(self, batch: list[Outcome]) -> None:
        """Write one batch (retrying while the database is away)."""
        done = self.storage.run(
            lambda tx: tx.tasks.finish_many(batch), retry_for=float("inf")
        )
        self.recorded += len(done)
        stale = len(batch) - len(done)
        if stale:
            self.stale += stale
            log.info(
                "%d outcomes dropped: their leases no longer held",
                stale,
                extra={"event": "stale_outcome"},
            )

    def _loop(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            batch: list[Outcome] = []
            item: Outcome | None = first
            while True:
                if item is None:
                    stopping = True
                else:
                    batch.append(item)
                if len(batch) >= MAX_BATCH:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self.run_once(batch)

    def start(self) -> None:
        """Run in a thread."""
        self._thread = threading.Thread(
            target=self._loop, name="completer", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Flush what is queued, then stop."""
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join()
