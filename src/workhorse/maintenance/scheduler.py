"""Scheduler: due schedules become tasks, exactly once per due time.

Three layers keep a due time from firing twice, however many processes run:

1. Only the leader runs the scheduler (the maintenance loop calls `run_once`
   on the elected leader only).
2. A claim locks the due schedules (`FOR UPDATE SKIP LOCKED` on PostgreSQL, the
   single writer on SQLite), and the advance past a due time is conditional on
   the schedule still waiting for that due time.
3. The task and a fire record unique per (schedule, due time) commit in one
   transaction, so even two leaders at once (a paused process that wakes up
   after losing its lease) cannot queue a due time twice.

Due times come from each schedule's definition and the database clock decides
which have arrived (`now=None` reaches SQL), so a skewed process clock cannot
fire early, late or twice.

Waking: the maintenance loop ticks every half second, too coarse for a
one-second lateness target. So while this process leads, a small thread sleeps
until the next due time (at most MAX_WAIT_SECONDS, and woken early when a
schedule changes) and fires it. The thread stops by itself once the maintenance
loop stops calling `run_once` (leadership lost, or the runner stopping).
"""

from __future__ import annotations

import logging
import threading
import time

from workhorse.client import Client
from workhorse.clock import Clock, SystemClock
from workhorse.domain.schedule import (
    MISFIRE_GRACE_SECONDS,
    Overlap,
    ScheduleStatus,
    Tick,
    plan_tick,
)
from workhorse.domain.task import NewTask, TaskOptions
from workhorse.errors import InvalidInput, NotFound, StorageUnavailable
from workhorse.storage import Storage
from workhorse.storage.base import Listener
from workhorse.storage.schedules import NOTIFY_KEY, Claimed
from workhorse.storage.stores import Transaction

log = logging.getLogger(__name__)
BATCH = 500
# The wake thread re-checks leadership and new schedules at least this often.
MAX_WAIT_SECONDS = 1.0
# Change announcements wake the thread at most this often (on SQLite every commit
# in the database announces itself).
MIN_RECHECK_SECONDS = 0.05
# The wake thread fires only while the maintenance loop called us this recently.
LEAD_FRESH_SECONDS = 2.0
# Counting active tasks for the overlap policy stops here.
ACTIVE_COUNT_LIMIT = 10_000
# Fire records only guard due times near the present (an older one could only be
# fired again by rewinding a schedule, which the conditional advance refuses);
# they are kept two days for inspection, and pruned a batch a minute.
FIRE_RETENTION_SECONDS = 2 * 86400.0
PRUNE_EVERY_SECONDS = 60.0
PRUNE_BATCH = 10_000


class Scheduler:
    """Turns due schedules into tasks; a leader-only maintenance service.

    Args:
        storage: the database.
        clock: this process's clock; used only to time its own sleeps, after
            measuring its offset from the database clock, so skew cancels out.
        batch: schedules claimed per transaction.
        grace: how late a due time may be and still run under `catch_up=skip`.
    """

    period = 0.5

    def __init__(
        self,
        storage: Storage,
        *,
        clock: Clock | None = None,
        batch: int = BATCH,
        grace: float = MISFIRE_GRACE_SECONDS,
    ) -> None:
        self.storage = storage
        self.clock = clock or SystemClock()
        self.batch = batch
        self.grace = grace
        self._clients: dict[str, Client] = {}
        self._pass_lock = threading.Lock()
        self._waker: threading.Thread | None = None
        self._waker_lock = threading.Lock()
        self._led_at = float("-inf")
        self._caller: threading.Thread | None = None
        self._pruned_at = float("-inf")

    # -- the service ------------------------------------------------------------

    def run_once(self, now: float | None = None) -> int:
        """Fire every due schedule; returns how many tasks were queued.

        Called by the maintenance loop (as leader) with `now=None`: the database
        clock decides, and the wake thread is kept running until the next call.
        Tests pass `now` to stand in for the database clock; no thread starts.
        """
        if now is not None:
            return self.fire_due(now)
        self._led_at = time.monotonic()
        self._caller = threading.current_thread()
        wait = self.seconds_until_due()
        # Reading first keeps an idle scheduler off SQLite's write lock.
        fired = self.fire_due() if wait is not None and wait <= 0 else 0
        if self._led_at - self._pruned_at >= PRUNE_EVERY_SECONDS:
            self._pruned_at = self._led_at
            self.prune_fires()
        self._ensure_waker()
        return fired

    def prune_fires(self, now: float | None = None) -> int:
        """Forget one batch of fire records past FIRE_RETENTION_SECONDS."""
        return self.storage.run(
            lambda tx: tx.schedules.prune_fires(
                retention=FIRE_RETENTION_SECONDS, limit=PRUNE_BATCH, now=now
            ),
            retry_for=0,
        )

    def fire_due(self, now: float | None = None) -> int:
        """Claim and fire due schedules, a batch per transaction, until none is due."""
        total = 0
        with self._pass_lock:
            while True:
                fired, claimed = self.storage.run(
                    lambda tx: self._pass(tx, now), retry_for=0
                )
                total += fired
                if claimed < self.batch:
                    return total

    def _pass(self, tx: Transaction, now: float | None) -> tuple[int, int]:
        claimed = tx.schedules.claim_due(limit=self.batch, now=now)
        fired = sum(self._fire(tx, c, now) for c in claimed)
        return fired, len(claimed)

    def _fire(self, tx: Transaction, claimed: Claimed, now: float | None) -> int:
        s = claimed.schedule
        pending = s.next_start
        if pending is None:  # pragma: no cover - the claim only returns due schedules
            return 0
        active = 0
        if s.overlap == Overlap.SKIP or s.max_concurrency is not None:
            active = tx.schedules.count_active(s.id, limit=ACTIVE_COUNT_LIMIT)
        task, error = self._build(tx, claimed)
        tick = plan_tick(
            s.timing,
            pending=pending,
            now=claimed.db_now,
            run_count=s.run_count,
            run_times=s.run_times,
            catch_up=s.catch_up,
            overlap=s.overlap,
            max_concurrency=s.max_concurrency,
            active=active,
            runnable=task is not None,
            grace=self.grace,
        )
        queued = task if tick.queue else None
        applied = tx.schedules.advance(
            s.id,
            pending=pending,
            next_start=tick.next_start,
            status=tick.status,
            ran=1 if queued else 0,
            skipped=tick.skipped,
            errors=1 if tick.reason == "error" else 0,
            msg=error if tick.reason == "error" else None,
            now_db=claimed.db_now,
        )
        if not applied:
            return 0  # someone else decided this due time first
        if not tx.schedules.insert_fire(
            s.id,
            tick.due_at,
            task_id=queued.id if queued else None,
            outcome=_outcome(tick),
            now_db=claimed.db_now,
        ):
            log.warning(
                "schedule %s: due time %.3f was already fired; not queueing it again",
                s.id,
                tick.due_at,
                extra={"event": "schedule_duplicate_prevented"},
            )
            return 0
        self._report(claimed, tick, error)
        if queued is None:
            return 0
        tx.tasks.insert_many([queued], now=now)
        return 1

    def _build(
        self, tx: Transaction, claimed: Claimed
    ) -> tuple[NewTask | None, str | None]:
        """The task one due time queues, or why none can be built."""
        s = claimed.schedule
        client = self._clients.get(s.project_id)
        if client is None:
            client = self._clients[s.project_id] = Client(
                self.storage, project_id=s.project_id
            )
        options = TaskOptions(
            priority=s.priority,
            delay=s.task_delay,
            timeout=s.timeout,
            label=s.label,
            cluster=s.cluster,
            schedule_id=s.id,
        )
        try:
            return client.build(tx, s.code_name, s.payload, options), None
        except (InvalidInput, NotFound) as exc:
            return None, str(exc)

    def _report(self, claimed: Claimed, tick: Tick, error: str | None) -> None:
        s = claimed.schedule
        if tick.reason == "error":
            log.warning(
                "schedule %s could not queue a task: %s",
                s.id,
                error,
                extra={"event": "schedule_error", "schedule_id": s.id},
            )
        elif tick.skipped:
            log.info(
                "schedule %s skipped %d due times (%s)",
                s.id,
                tick.skipped,
                tick.reason or "missed",
                extra={"event": "schedule_skipped", "schedule_id": s.id},
            )
        if tick.status == ScheduleStatus.COMPLETE:
            log.info(
                "schedule %s is complete",
                s.id,
                extra={"event": "schedule_complete", "schedule_id": s.id},
            )

    # -- waking at due times --------------------------------------------------------

    def _leading(self) -> bool:
        caller = self._caller
        return (
            caller is not None
            and caller.is_alive()
            and time.monotonic() - self._led_at < LEAD_FRESH_SECONDS
        )

    def _ensure_waker(self) -> None:
        with self._waker_lock:
            if self._waker is None or not self._waker.is_alive():
                self._waker = threading.Thread(
                    target=self._wake_loop, name="scheduler-wake", daemon=True
                )
                self._waker.start()

    def seconds_until_due(self) -> float | None:
        """Seconds until the earliest live schedule is due, by the database clock.

        Returns None when no schedule is live.
        """
        next_due, db_now = self.storage.run(
            lambda tx: tx.schedules.next_due(), write=False, retry_for=0
        )
        return None if next_due is None else next_due - db_now

    def _wake_loop(self) -> None:
        listener = self.storage.listen([NOTIFY_KEY])
        try:
            while self._leading():
                self._wake_step(listener)
        except Exception:  # a thread boundary: log, and let the next tick restart us
            if self._leading():
                log.exception(
                    "scheduler wake thread failed",
                    extra={"event": "scheduler_wake_failed"},
                )
        finally:
            listener.close()

    def _wake_step(self, listener: Listener) -> None:
        try:
            wait = self.seconds_until_due()
        except StorageUnavailable:
            wait = MAX_WAIT_SECONDS
        if wait is not None and wait <= 0:
            try:
                self.fire_due()
            except StorageUnavailable as exc:
                log.warning(
                    "scheduler pass skipped: %s",
                    exc,
                    extra={"event": "scheduler_skipped"},
                )
                listener.wait(MAX_WAIT_SECONDS)
            return
        wait = MAX_WAIT_SECONDS if wait is None else min(wait, MAX_WAIT_SECONDS)
        # Sleep on this process's clock: its offset from the database clock is
        # measured now, so a skewed but steady clock wakes us at the right time.
        checked = self.clock.now()
        deadline = checked + wait
        while (remaining := deadline - self.clock.now()) > 0:
            if listener.wait(remaining):
                # A schedule changed: look again, but not more often than MIN_RECHECK.
                hold = min(deadline, checked + MIN_RECHECK_SECONDS) - self.clock.now()
                if hold > 0:
                    time.sleep(hold)
                return


def _outcome(tick: Tick) -> str:
    if tick.queue:
        return "queued"
    return "error" if tick.reason == "error" else "skipped"
