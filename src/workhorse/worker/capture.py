"""Routes print()/sys.stdout/sys.stderr writes of a running Python task to its log.

Installed once per runner process. Writes from threads or coroutines that are not
running a task go to the original streams.
"""

from __future__ import annotations

import sys
import threading
from contextvars import ContextVar
from typing import Any, TextIO

TRUNCATED = "\n[workhorse: log truncated at {limit} bytes]\n"


class LogBuffer:
    """A size-capped text buffer for one attempt."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._parts: list[str] = []
        self._size = 0
        self.truncated = False

    def write(self, text: str) -> None:
        """Append, dropping what is over the cap (once marked)."""
        if self.truncated:
            return
        size = len(text.encode(errors="replace"))
        if self._size + size > self.limit:
            room = max(self.limit - self._size, 0)
            self._parts.append(
                text.encode(errors="replace")[:room].decode(errors="ignore")
            )
            self._parts.append(TRUNCATED.format(limit=self.limit))
            self.truncated = True
            return
        self._parts.append(text)
        self._size += size

    def text(self) -> str:
        """Everything written."""
        return "".join(self._parts)


_buffer: ContextVar[LogBuffer | None] = ContextVar("workhorse_log", default=None)


class _Router:
    def __init__(self, original: TextIO) -> None:
        self._original = original

    def write(self, text: str) -> int:
        buf = _buffer.get()
        if buf is None:
            return self._original.write(text)
        buf.write(text)
        return len(text)

    def flush(self) -> None:
        if _buffer.get() is None:
            self._original.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)


_install_lock = threading.Lock()


def install() -> None:
    """Route sys.stdout and sys.stderr (idempotent)."""
    with _install_lock:
        if not isinstance(sys.stdout, _Router):
            sys.stdout = _Router(sys.stdout)
        if not isinstance(sys.stderr, _Router):
            sys.stderr = _Router(sys.stderr)


def bind(buffer: LogBuffer | None) -> object:
    """Send this context's writes to `buffer`; returns a reset token."""
    return _buffer.set(buffer)


def unbind(token: object) -> None:
    """Undo `bind`."""
    _buffer.reset(token)  # type: ignore[arg-type]
