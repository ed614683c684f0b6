"""The running task as seen from inside a Python task: id, attempt, progress."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from workhorse.errors import InvalidInput, WorkhorseError


@dataclass
class TaskContext:
    """What a Python task may know and do about its own run."""

    id: str
    attempt: int
    code_name: str
    payload: str
    _report_progress: Callable[[int, str | None], bool]
    _queue_children: Callable[[str, list[str], dict[str, Any]], list[str]]

    def progress(self, percent: int, message: str | None = None) -> None:
        """Record progress (0-100) and an optional message, visible in `task.progress`."""
        if (
            isinstance(percent, bool)
            or not isinstance(percent, int)
            or not 0 <= percent <= 100
        ):
            raise InvalidInput("percent must be a whole number from 0 to 100")
        self._report_progress(percent, message)

    def queue_children(
        self,
        code_name: str,
        payloads: Sequence[str],
        *,
        then: str | None = None,
        **options: Any,
    ) -> list[str]:
        """Queue tasks linked to this one as their parent, in one transaction.

        The master/slave pattern: a master slices the work and queues one child per
        slice; `workhorse task list --parent ID` and `TaskHandle.children()` follow
        them. `then` names a code queued once every child has finished (fan-in); a
        Python task receives `parent_id` and `children` (status counts) as keyword
        arguments, a code package gets them as its JSON payload. Options are those
        of `App.queue` (priority, delay, timeout, label...).
        """
        return self._queue_children(
            code_name, list(payloads), {**options, "then": then}
        )


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
