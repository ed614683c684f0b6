"""Pruner: forgets finished tasks past retention and runners long silent."""

from __future__ import annotations

import time

from workhorse.storage import Storage

BATCH = 1000
RUNNER_SILENCE_SECONDS = 3600.0


class Pruner:
    """Deletes finished tasks older than `retention_seconds`."""

    period = 60.0

    def __init__(self, storage: Storage, *, retention_seconds: float) -> None:
        self.storage = storage
        self.retention_seconds = retention_seconds

    def run_once(self, now: float | None = None) -> int:
        """One pass; returns how many tasks were deleted."""
        current = time.time() if now is None else now
        deleted = self.storage.run(
            lambda tx: tx.tasks.prune(
                before=current - self.retention_seconds, limit=BATCH
            ),
            retry_for=0,
        )
        self.storage.run(
            lambda tx: tx.runners.prune(before=current - RUNNER_SILENCE_SECONDS),
            retry_for=0,
        )
        return deleted
