"""Pruner: forgets finished tasks past retention and runners long silent."""

from __future__ import annotations

from workhorse.storage import Storage
from workhorse.storage.stores import Transaction

BATCH = 1000
RUNNER_SILENCE_SECONDS = 3600.0


class Pruner:
    """Deletes finished tasks older than `retention_seconds`."""

    period = 60.0

    def __init__(self, storage: Storage, *, retention_seconds: float) -> None:
        self.storage = storage
        self.retention_seconds = retention_seconds

    def run_once(self, now: float | None = None) -> int:
        """One pass; returns how many tasks were deleted.

        Ages are judged by the database clock (`now` in tests): a leader whose own
        clock runs ahead must not forget live runners or recent tasks.
        """

        def prune(tx: Transaction) -> int:
            current = tx.tasks.db_now(now=now)
            deleted = tx.tasks.prune(
                before=current - self.retention_seconds, limit=BATCH
            )
            tx.runners.prune(before=current - RUNNER_SILENCE_SECONDS)
            return deleted

        return self.storage.run(prune, retry_for=0)
