"""The running task as seen from inside a Python task: id, attempt, progress."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass

from workhorse.errors import InvalidInput, WorkhorseError


@dataclass
class TaskContext:
    """What a Python task may know and do about its own run."""

    id: str
    attempt: int
    code_name: str
    payload: str
    _report_progress: Callable[[int, str | None], bool]

    def progress(self, percent: int, message: str | None = None) -> None:
        """Record progress (0-100) and an optional message, visible in `task.progress`."""
        if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
            raise InvalidInput("percent must be a whole number from 0 to 100")
        self._report_progress(percent, message)


_current: ContextVar[TaskContext | None] = ContextVar("workhorse_task", default=None)


def current_task() -> TaskContext:
    """The task being run by this thread or coroutine.

    Raises:
        WorkhorseError: when called outside a running task.
    """
    ctx = _current.get()
    if ctx is None:
        raise WorkhorseError("current_task() is only available inside a running task")
    return ctx


def set_current(ctx: TaskContext | None) -> object:
    """Bind the current task; returns a token for `reset_current`."""
    return _current.set(ctx)


def reset_current(token: object) -> None:
    """Undo `set_current`."""
    _current.reset(token)  # type: ignore[arg-type]
