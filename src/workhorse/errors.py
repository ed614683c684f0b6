"""One exception tree for Workhorse; the HTTP layer maps these to wire errors."""

from __future__ import annotations


class WorkhorseError(Exception):
    """Base of every error Workhorse raises on purpose."""


class InvalidInput(WorkhorseError):
    """The caller asked for something malformed; nothing was written."""


class PayloadTooLarge(InvalidInput):
    """A payload or message body is over the configured limit."""


class NotFound(WorkhorseError):
    """The named object does not exist (or belongs to another project)."""


class Conflict(WorkhorseError):
    """The object is not in a state that allows the operation."""


class StaleLease(Conflict):
    """A completion or reservation carried a token that no longer holds."""


class StorageUnavailable(WorkhorseError):
    """The database could not be reached within the retry budget."""


class StorageCorrupt(WorkhorseError):
    """The database reports damaged data; the operation changed nothing.

    Not retried: damage stays until the file is repaired or restored (run
    `workhorse check`)."""


class TaskFailed(WorkhorseError):
    """A task ended in a status other than complete; raised by `Task.result`."""

    def __init__(self, task_id: str, status: str, error: str | None) -> None:
        super().__init__(
            f"task {task_id} ended {status}: {error or 'no error message'}"
        )
        self.task_id = task_id
        self.status = status
        self.error = error


class TaskInterrupted(BaseException):
    """Raised inside a running Python task that timed out or was cancelled.

    It derives from BaseException so that user code with a broad `except Exception`
    does not swallow it.
    """
