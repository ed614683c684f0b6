"""Rescuer: tasks whose runner stopped heartbeating go back to the queue (or are killed)."""

from __future__ import annotations

import logging

from workhorse.domain.task import MAX_LOST_ATTEMPTS
from workhorse.storage import Storage

log = logging.getLogger(__name__)
BATCH = 1000


class Rescuer:
    """Requeues tasks with expired leases; after MAX_LOST_ATTEMPTS losses, `killed`."""

    period = 1.0

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def run_once(self, now: float | None = None) -> int:
        """Rescue one batch; returns how many tasks were rescued."""
        rescued = self.storage.run(
            lambda tx: tx.tasks.rescue_expired(
                max_lost=MAX_LOST_ATTEMPTS, limit=BATCH, now=now
            ),
            retry_for=0,
        )
        if rescued:
            log.warning(
                "rescued %d tasks with expired leases",
                len(rescued),
                extra={"event": "rescued"},
            )
        return len(rescued)
