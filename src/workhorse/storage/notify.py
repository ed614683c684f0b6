"""In-process fan-out of change announcements to waiting threads.

Each database adapter feeds a Hub: PostgreSQL from LISTEN, SQLite from local
commits and from polling `PRAGMA data_version` (which changes whenever another
process commits). A listener follows key prefixes such as `tasks` or
`queue:<project>:<name>`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence


class HubListener:
    """One waiter's view of the hub."""

    def __init__(self, hub: Hub, keys: Sequence[str]) -> None:
        self._hub = hub
        self.keys = tuple(keys)
        self._event = threading.Event()

    def matches(self, key: str) -> bool:
        """Whether an announcement of `key` concerns this listener."""
        return any(key == k or key.startswith(k + ":") for k in self.keys)

    def wake(self) -> None:
        """Mark this listener woken."""
        self._event.set()

    def wait(self, timeout: float) -> bool:
        """Block until woken or `timeout`; clears the wake-up either way."""
        woken = self._event.wait(timeout)
        self._event.clear()
        return woken

    def close(self) -> None:
        """Stop following."""
        self._hub.remove(self)


class Hub:
    """The set of listeners in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: list[HubListener] = []

    def add(self, keys: Sequence[str]) -> HubListener:
        """A new listener for `keys`."""
        listener = HubListener(self, keys)
        with self._lock:
            self._listeners.append(listener)
        return listener

    def remove(self, listener: HubListener) -> None:
        """Forget a listener (idempotent)."""
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    @property
    def active(self) -> bool:
        """Whether anyone is listening."""
        return bool(self._listeners)

    def publish(self, key: str) -> None:
        """Wake every listener that follows `key`."""
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            if listener.matches(key):
                listener.wake()

    def publish_all(self) -> None:
        """Wake everyone (something changed, we cannot tell what)."""
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener.wake()
