"""The runner seam: a `Running` handle per claimed task and what a run returns."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from workhorse.domain.task import Task, TaskStatus


@dataclass(frozen=True, slots=True)
class RunResult:
    """How an attempt ended, as the runner saw it."""

    status: TaskStatus
    result: str | None = None
    error: str | None = None
    log: str | None = None


class Running:
    """One claimed task in this runner, from claim until its outcome is reported.

    Exactly one of the normal end of the run and `abort()` reports the outcome;
    `abort()` also interrupts the run through the hook the runner installed.
    """

    def __init__(self, task: Task, token: str) -> None:
        self.task = task
        self.token = token
        self.deadline = time.monotonic() + task.timeout
        self.started = False
        self._lock = threading.Lock()
        self._done = False
        self.aborted: tuple[TaskStatus | None, str] | None = None
        self._interrupt: Callable[[], None] | None = None

    def set_interrupt(self, hook: Callable[[], None] | None) -> None:
        """Install (or clear) how to stop the run; an abort already asked for fires now."""
        with self._lock:
            self._interrupt = hook
            if hook is not None and self.aborted is not None:
                hook()

    def finish(self) -> bool:
        """Claim the right to report; False if an abort already reported."""
        with self._lock:
            if self._done:
                return False
            self._done = True
            return True

    def abort(self, status: TaskStatus | None, reason: str) -> bool:
        """Stop the run. `status` None means the lease was lost: nothing is reported.

        Returns True when this call is the one that ended the attempt.
        """
        # The hook fires under the lock so that a run which has just ended (and
        # cleared its hook) can never receive the interruption meant for it.
        with self._lock:
            if self._done:
                return False
            self._done = True
            self.aborted = (status, reason)
            if self._interrupt is not None:
                self._interrupt()
        return True


class Runner(Protocol):
    """Executes one attempt of a claimed task."""

    def run(self, running: Running) -> RunResult:
        """Run to the end (or until interrupted) and say how it went."""
        ...
