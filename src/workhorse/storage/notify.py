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
    """One waiter's view of the hub.

    An urgent listener (a fetcher, a long poll) asks pollers to look for changes
    as often as they can while it waits; others accept a slower cadence.
    """

    def __init__(self, hub: Hub, keys: Sequence[str], urgent: bool) -> None:
        self._hub = hub
        self.keys = tuple(keys)
        self.urgent = urgent
        self._event = threading.Event()

    def matches(self, key: str) -> bool:
        """Whether an announcement of `key` concerns this listener."""
        return any(key == k or key.startswith(k + ":") for k in self.keys)

    def wake(self) -> None:
        """Mark this listener woken.

        A no-op while it is marked already (runner threads wake their fetcher
        once per task): `wait` clears the mark before its caller looks at what
        woke it, so nothing published before a skipped wake-up goes unseen.
        """
        if not self._event.is_set():
            self._event.set()

    def wait(self, timeout: float, *, quiet: bool = False) -> bool:
        """Block until woken or `timeout`; clears the wake-up either way.

        A quiet wait does not count as waiting, so pollers need not hurry for it.
        """
        if quiet:
            woken = self._event.wait(timeout)
        else:
            self._hub.waiting(self, +1)
            try:
                woken = self._event.wait(timeout)
            finally:
                self._hub.waiting(self, -1)
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
        # Waiters right now, and how many of them are urgent; pollers sleep on this.
        self.cond = threading.Condition()
        self.waiters = 0
        self.urgent_waiters = 0

    def waiting(self, listener: HubListener, delta: int) -> None:
        """Count a listener entering (+1) or leaving (-1) a wait."""
        with self.cond:
            self.waiters += delta
            if listener.urgent:
                self.urgent_waiters += delta
            if delta > 0:
                self.cond.notify_all()

    def add(self, keys: Sequence[str], *, urgent: bool = False) -> HubListener:
        """A new listener for `keys`."""
        listener = HubListener(self, keys, urgent)
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
