"""Async wake-ups for long polls, fed by the storage's blocking listeners.

`storage.listen(keys)` gives a listener with a blocking `wait`. Holding a pool
thread per long-polling request would let thirty-second polls starve every other
request, so instead each *key* being waited on gets one watch thread, shared by
every request waiting on that key. The thread blocks in `listener.wait` and, when
woken, sets the asyncio events of that key's subscribers through
`loop.call_soon_threadsafe`. Requests then retry their (quick, non-blocking)
database call on the bounded pool.

A watch retires a few seconds after its last subscriber leaves. Past
`max_watches` distinct keys, new subscribers fall back to polling every
`poll_seconds`. Subscribers are also woken every `poll_seconds` regardless, which
covers changes no one announces (delays and reservations running out).
"""

from __future__ import annotations

import asyncio
import threading
import time
from types import TracebackType

from workhorse.storage import Storage
from workhorse.storage.base import Listener

THREAD_WAIT_SECONDS = 0.5
# After a wake-up a watch passes on at most one more per this interval (a busy
# SQLite database announces every commit to every listener).
COALESCE_SECONDS = 0.02
LINGER_SECONDS = 5.0


class Subscription:
    """One request's interest in a key."""

    def __init__(self, notifier: Notifier, key: str, watch: _Watch | None) -> None:
        self._notifier = notifier
        self.key = key
        self.watch = watch
        self.event = asyncio.Event()

    async def wait(self, seconds: float) -> bool:
        """Until the key is announced or `seconds` (at most the poll interval) pass."""
        limit = min(seconds, self._notifier.poll_seconds)
        if limit <= 0:
            return False
        try:
            await asyncio.wait_for(self.event.wait(), limit)
        except TimeoutError:
            return False
        finally:
            self.event.clear()
        return True

    def close(self) -> None:
        """Stop following the key."""
        self._notifier.unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _Watch:
    """A thread blocked on one key's listener."""

    def __init__(self, notifier: Notifier, key: str, listener: Listener) -> None:
        self.key = key
        self.listener = listener
        self.subscribers: set[Subscription] = set()
        self.idle_since = time.monotonic()
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=self._run,
            args=(notifier,),
            name=f"api-watch-{key}"[:60],
            daemon=True,
        )

    def _run(self, notifier: Notifier) -> None:
        try:
            while not self.stop.is_set():
                woken = self.listener.wait(THREAD_WAIT_SECONDS)
                if self.stop.is_set():
                    break
                notifier.from_thread(self, woken)
                if woken:  # announcements meanwhile are coalesced into the next wake
                    self.stop.wait(COALESCE_SECONDS)
        finally:
            self.listener.close()


class Notifier:
    """Per-key watch threads fanning announcements out to asyncio events."""

    def __init__(
        self, storage: Storage, *, max_watches: int = 256, poll_seconds: float = 1.0
    ) -> None:
        self.storage = storage
        self.max_watches = max_watches
        self.poll_seconds = poll_seconds
        self._watches: dict[str, _Watch] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def subscribe(self, key: str) -> Subscription:
        """Follow `key` (call from the event loop, before the first check)."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        watch = self._watches.get(key)
        if watch is None and len(self._watches) < self.max_watches:
            watch = _Watch(self, key, self.storage.listen([key]))
            self._watches[key] = watch
            watch.thread.start()
        sub = Subscription(self, key, watch)
        if watch is not None:
            watch.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Forget a subscription (the watch lingers for a while)."""
        watch = sub.watch
        if watch is not None and sub in watch.subscribers:
            watch.subscribers.discard(sub)
            if not watch.subscribers:
                watch.idle_since = time.monotonic()

    def from_thread(self, watch: _Watch, woken: bool) -> None:
        """Called by a watch thread after each wait."""
        loop = self._loop
        if loop is None or loop.is_closed():
            watch.stop.set()
            return
        try:
            loop.call_soon_threadsafe(self._deliver, watch, woken)
        except RuntimeError:  # the loop closed meanwhile
            watch.stop.set()

    def _deliver(self, watch: _Watch, woken: bool) -> None:
        if woken:
            for sub in watch.subscribers:
                sub.event.set()
        if (
            not watch.subscribers
            and time.monotonic() - watch.idle_since > LINGER_SECONDS
        ):
            if self._watches.get(watch.key) is watch:
                del self._watches[watch.key]
            watch.stop.set()

    def close(self) -> None:
        """Stop every watch thread."""
        for watch in self._watches.values():
            watch.stop.set()
        for watch in self._watches.values():
            watch.thread.join(timeout=2 * THREAD_WAIT_SECONDS)
        self._watches.clear()

    @property
    def watching(self) -> int:
        """How many keys have a watch thread."""
        return len(self._watches)
