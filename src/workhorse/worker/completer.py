"""Completer: holds finished attempts' outcomes until the fetcher's next cycle writes them.

Outcomes and claims share one transaction per cycle (see `fetcher`), so a busy
runner commits once per batch of finished tasks rather than once for its
outcomes and again for its next claim. A stale lease makes an outcome a no-op.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence

from workhorse.domain.task import Outcome

log = logging.getLogger(__name__)
MAX_BATCH = 1000


class Completer:
    """Collects outcomes from runner threads; `wake` tells the fetcher there is work."""

    def __init__(self, wake: Callable[[], None] = lambda: None) -> None:
        self.wake = wake
        self._outcomes: deque[Outcome] = deque()
        self.recorded = 0
        self.stale = 0

    def put(self, outcome: Outcome) -> None:
        """Queue an outcome for the next cycle."""
        self._outcomes.append(outcome)
        self.wake()

    def pending(self) -> int:
        """Outcomes not yet taken."""
        return len(self._outcomes)

    def take(self) -> list[Outcome]:
        """Up to MAX_BATCH queued outcomes, oldest first."""
        batch: list[Outcome] = []
        popleft = self._outcomes.popleft
        try:
            while len(batch) < MAX_BATCH:
                batch.append(popleft())
        except IndexError:
            pass
        return batch

    def give_back(self, batch: Sequence[Outcome]) -> None:
        """Return a taken batch that could not be written, in front of newer outcomes."""
        self._outcomes.extendleft(reversed(batch))

    def recorded_batch(self, batch: Sequence[Outcome], applied: int) -> None:
        """Count a written batch, of which `applied` outcomes still held their lease."""
        self.recorded += applied
        stale = len(batch) - applied
        if stale:
            self.stale += stale
            log.info(
                "%d outcomes dropped: their leases no longer held",
                stale,
                extra={"event": "stale_outcome"},
            )
