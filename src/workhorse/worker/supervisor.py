"""Supervisor: renews leases by heartbeat, enforces deadlines, acts on cancels and lost leases."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from workhorse.domain.lease import heartbeat_interval
from workhorse.domain.task import TaskStatus
from workhorse.errors import StorageUnavailable
from workhorse.metrics import RunnerStats
from workhorse.storage import Storage
from workhorse.worker.runners.base import Running

log = logging.getLogger(__name__)
TICK_SECONDS = 0.1
# A cancel announcement triggers a heartbeat at most this often.
MIN_HEARTBEAT_GAP = 0.25


class Supervisor:
    """One thread watching every task this runner holds."""

    def __init__(
        self,
        storage: Storage,
        *,
        runner_id: str,
        lease_seconds: float,
        inflight: Callable[[], list[Running]],
        abort: Callable[[Running, TaskStatus | None, str], None],
        running_count: Callable[[], int],
        status: Callable[[], str],
        stats: RunnerStats | None = None,
    ) -> None:
        self.storage = storage
        self.runner_id = runner_id
        self.lease_seconds = lease_seconds
        self.inflight = inflight
        self.abort = abort
        self.running_count = running_count
        self.status = status
        self.stats = stats or RunnerStats()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.beats = 0

    def check_deadlines(self, now: float) -> None:
        """Time out every started task past its deadline."""
        for r in self.inflight():
            if r.started and now > r.deadline:
                self.abort(r, TaskStatus.TIMEOUT, f"timed out after {r.task.timeout} s")

    def heartbeat(self) -> None:
        """Renew leases; stop tasks whose lease was lost or whose cancel was asked for."""
        before = {r.task.id: r for r in self.inflight()}

        def beat(tx):  # type: ignore[no-untyped-def]
            held = tx.tasks.heartbeat(
                runner_id=self.runner_id,
                task_ids=list(before),
                lease_seconds=self.lease_seconds,
            )
            tx.runners.heartbeat(
                self.runner_id, running=self.running_count(), status=self.status()
            )
            return held

        held = self.storage.run(beat, retry_for=0)
        self.beats += 1
        tokens = {task_id: (token, cancel) for task_id, token, cancel in held}
        for task_id, r in before.items():
            entry = tokens.get(task_id)
            if entry is None or entry[0] != r.token:
                self.abort(r, None, "lease lost")
            elif entry[1]:
                self.abort(r, TaskStatus.CANCELLED, "cancelled")

    def _loop(self) -> None:
        listener = self.storage.listen(["cancel"])
        interval = heartbeat_interval(self.lease_seconds)
        next_beat = 0.0
        last_beat = 0.0
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                self.check_deadlines(now)
                woken = listener.wait(TICK_SECONDS)
                now = time.monotonic()
                due = now >= next_beat or (
                    woken and now - last_beat >= MIN_HEARTBEAT_GAP
                )
                if due:
                    try:
                        self.heartbeat()
                        next_beat = now + interval
                    except StorageUnavailable as exc:
                        self.stats.failed("heartbeat")
                        log.warning(
                            "heartbeat failed: %s",
                            exc,
                            extra={"event": "heartbeat_failed"},
                        )
                        next_beat = now + min(interval, 1.0)
                    except Exception:  # the thread must outlive any one bad beat
                        self.stats.failed("heartbeat")
                        # Without beats the leases lapse and the tasks run again
                        # elsewhere while they still run here: try again soon.
                        log.exception(
                            "heartbeat failed", extra={"event": "heartbeat_failed"}
                        )
                        next_beat = now + min(interval, 1.0)
                    last_beat = now
        finally:
            listener.close()

    def start(self) -> None:
        """Run in a thread."""
        self._thread = threading.Thread(
            target=self._loop, name="supervisor", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
