"""Fetcher: records outcomes and claims due tasks in batches, one transaction a cycle."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from workhorse.domain.ids import new_token
from workhorse.domain.task import Outcome, Task
from workhorse.metrics import RunnerStats
from workhorse.storage import Storage
from workhorse.storage.base import Listener
from workhorse.storage.stores import ClaimedRows, OutcomeBatch, Transaction
from workhorse.worker.completer import Completer

log = logging.getLogger(__name__)

# Tasks claimed in one cycle at most. Under load a cycle's cost is mostly its
# commit (one fsync on SQLite, held under the write lock other runners wait for),
# so larger batches of short tasks spread it thinner: 100 → 200 gave a higher
# two-runner drain in five of six alternating runs.
MAX_CLAIM = 200
# With nothing announced, look again this often (delayed tasks becoming due,
# missed notifications).
IDLE_POLL_SECONDS = 1.0
# After a cycle fails on an unexpected error: pauses from 0.1 s doubling to 5 s; a
# runner shutting down gives up after 3 failures in a row.
FAILURE_FIRST_PAUSE = 0.1
FAILURE_MAX_PAUSE = 5.0
FAILURES_AT_CLOSE = 3


class Prefetch:
    """How many tasks a runner holds: its threads plus some claimed ahead.

    Claiming ahead lets one transaction carry a batch when tasks are short; it
    also keeps work from other runners that could start it. So, unless fixed, the
    prefetch follows the tasks' average run time: enough for about TARGET_SECONDS
    of work per thread, between 1 and MAX (tasks of a second or more: 1).
    """

    TARGET_SECONDS = 0.02
    MAX = 2 * MAX_CLAIM  # so that claims stay batched at half the capacity free
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
    """Each cycle, in one transaction: records finished attempts, claims new tasks.

    Claims take no more than the free slots, which keeps work on the runners that
    can start it now; the prefetch part of the capacity only smooths the gap
    between a batch finishing and the next claim. While claimed tasks are still
    waiting for a thread, a claim waits until half the capacity is free so that
    claims stay batched under load. Outcomes ride along with the next claim, or
    go alone when there is nothing to claim: a busy runner commits once per cycle.

    Args:
        held: how many claimed tasks this runner holds now.
        waiting: how many of them have not started yet.
    """

    def __init__(
        self,
        storage: Storage,
        *,
        completer: Completer,
        capacity: Callable[[], int],
        held: Callable[[], int],
        waiting: Callable[[], int],
        dispatch: Callable[[Task, str], None],
        claim_args: dict[str, object],
        stopping: threading.Event,
        stats: RunnerStats | None = None,
    ) -> None:
        self.storage = storage
        self.completer = completer
        self.capacity = capacity
        self.held = held
        self.waiting = waiting
        self.dispatch = dispatch
        self.claim_args = claim_args
        self.stopping = stopping
        self.stats = stats or RunnerStats()
        self._listener: Listener | None = None
        self._claims_stopped = threading.Event()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        # PostgreSQL claims with nothing to record in one statement (no BEGIN or
        # COMMIT round trips) unless codes with a concurrency cap have due work:
        # those need the serialised full claim.
        self._quick = storage.dialect == "postgres"
        self._capped = False
        # When a rate-limited code that held tasks back has a start allowed again
        # (monotonic time), to look again then rather than at the next poll.
        self._token_due_at: float | None = None
        self._failures = 0  # unexpected cycle failures in a row

    def slot_freed(self) -> None:
        """Called after a task leaves its slot."""
        if self._listener is not None:
            self._listener.wake()

    def room(self) -> int:
        """How many tasks to claim now (0: not enough free slots to bother)."""
        capacity = self.capacity()
        free = capacity - self.held()
        threshold = max(1, capacity // 2) if self.waiting() else 1
        return min(free, MAX_CLAIM) if free >= threshold else 0

    def run_once(self, outcomes: list[Outcome], limit: int) -> int:
        """One cycle: record `outcomes`, claim up to `limit` tasks; how many were claimed.

        Outcomes are encoded before the transaction opens and claimed rows decoded
        after it commits: on SQLite the transaction holds the database's only write
        lock, which every other runner is waiting for.
        """
        token = new_token()
        if not outcomes and self._quick and not self._capped:
            return self._claim_now(token, limit)
        batch = OutcomeBatch.of(outcomes) if outcomes else None

        def cycle(tx: Transaction) -> tuple[int, ClaimedRows | None]:
            applied = tx.tasks.finish_many(batch) if batch is not None else 0
            claimed = (
                tx.tasks.claim_rows(token=token, limit=limit, **self.claim_args)  # type: ignore[arg-type]
                if limit
                else None
            )
            return applied, claimed

        # A cycle that only claims need not wait for the disk: if a crash undoes
        # it, its tasks are simply queued again (and their lease tokens, unknown
        # to the database, can record nothing). Outcomes are acknowledgements.
        try:
            applied, claimed = self.storage.run(
                cycle, retry_for=float("inf"), durable=batch is not None
            )
        except BaseException:
            # Rolled back (an unexpected error: the database retries its own):
            # the outcomes go first into the next cycle.
            if outcomes:
                self.completer.give_back(outcomes)
            raise
        if outcomes:
            self.completer.recorded_batch(outcomes, applied)
        if claimed is None:
            return 0
        self._capped = claimed.capped
        self._token_due_at = (
            None if claimed.token_due is None else time.monotonic() + claimed.token_due
        )
        return self._dispatch(claimed, token)

    def _claim_now(self, token: str, limit: int) -> int:
        """Claim-only cycle on PostgreSQL: one statement, then the capped codes'
        share through the full path if they have due work."""
        self._token_due_at = None
        claimed = self.storage.run(
            lambda tx: tx.tasks.claim_now(token=token, limit=limit, **self.claim_args),  # type: ignore[arg-type]
            retry_for=float("inf"),
            single_statement=True,
            durable=False,  # the statement itself turns synchronous_commit off
        )
        count = self._dispatch(claimed, token)
        # Capped codes come first in the full claim: go through it from now on
        # while they have due work, starting with the room left in this cycle.
        self._capped = claimed.capped
        if claimed.capped and count < limit:
            count += self.run_once([], limit - count)
        return count

    def _dispatch(self, claimed: ClaimedRows, token: str) -> int:
        tasks = claimed.tasks()
        for task in tasks:
            self.dispatch(task, token)
        return len(tasks)

    def _loop(self, listener: Listener) -> None:
        look = True  # whether a claim may find work: after a wake-up or a full claim
        while True:
            claiming = not self.stopping.is_set()
            if not claiming:
                self._claims_stopped.set()
            outcomes = self.completer.take()
            room = self.room() if claiming else 0
            want = room if look else 0
            if outcomes or want:
                try:
                    claimed = self.run_once(outcomes, want)
                except Exception:
                    if not self._failed():
                        return
                    continue
                self._failures = 0
                self.stats.cycle(claimed)
                if want:
                    look = claimed == want
                continue
            if not claiming and self._closing.is_set():
                return
            if room:
                # Slots free and nothing due: wait for an announcement (or a poll,
                # or a rate-limited code's next start).
                listener.wait(self._idle_wait())
            else:
                # Slots full (or stopping): only this runner's own events matter.
                listener.wait(IDLE_POLL_SECONDS, quiet=True)
            look = True

    def _idle_wait(self) -> float:
        """How long to wait for an announcement before looking anyway."""
        if self._token_due_at is None:
            return IDLE_POLL_SECONDS
        return min(IDLE_POLL_SECONDS, max(0.0, self._token_due_at - time.monotonic()))

    def _failed(self) -> bool:
        """After a cycle failed on an unexpected error (the database's own outages
        are retried inside it): log it, pause, and say whether to go on.

        A runner whose fetcher stopped would keep renewing the leases of tasks it
        can never finish. So the loop goes on, pausing longer each time, until
        the cause is mended; only a runner shutting down gives up, after a few
        tries: its outcomes not written, those tasks run again once their leases
        lapse.
        """
        self._failures += 1
        self.stats.failed("claim_cycle")
        pause = min(FAILURE_FIRST_PAUSE * 2 ** (self._failures - 1), FAILURE_MAX_PAUSE)
        if self._closing.is_set() and self._failures >= FAILURES_AT_CLOSE:
            log.error(
                "claim cycle failed %d times while shutting down; %d outcomes not "
                "written (their tasks run again once their leases lapse)",
                self._failures,
                self.completer.pending(),
                exc_info=True,
                extra={"event": "fetch_failed"},
            )
            return False
        log.error(
            "claim cycle failed (%d in a row); trying again in %.1fs",
            self._failures,
            pause,
            exc_info=True,
            extra={"event": "fetch_failed"},
        )
        if self._closing.is_set():
            time.sleep(pause)
        else:
            self._closing.wait(pause)  # cut short when the runner starts closing
        return True

    def _run(self, listener: Listener) -> None:
        try:
            self._loop(listener)
        finally:
            self._claims_stopped.set()
            listener.close()

    def start(self) -> None:
        """Run in a thread."""
        listener = self.storage.listen(["tasks"], urgent=True)
        self._listener = listener
        self.completer.wake = listener.wake
        self._thread = threading.Thread(
            target=self._run, args=(listener,), name="fetcher", daemon=True
        )
        self._thread.start()

    def stop_claiming(self) -> None:
        """After `stopping` is set: wait until no claim is in progress or will start."""
        self.slot_freed()
        self._claims_stopped.wait()

    def join(self) -> None:
        """Write the outcomes still queued, then stop the thread."""
        self._closing.set()
        self.slot_freed()
        if self._thread is not None:
            self._thread.join()
