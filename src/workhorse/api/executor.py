"""Blocking core calls on a bounded thread pool, failing fast while the database is out.

The core is synchronous. Every call from a request goes through `Executor.run`, which
uses a dedicated `anyio.CapacityLimiter`, so the API never starves the event loop or
other users of anyio's default pool.

A small circuit breaker sits in front: after a call reports `StorageUnavailable`,
requests are answered 503 at once (with Retry-After) instead of each waiting out
the storage retry budget; one request at a time probes the database again, and the
first success closes the breaker. All breaker state is touched only from the event
loop thread.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread
from anyio import CapacityLimiter

from workhorse.errors import StorageUnavailable

T = TypeVar("T")


class Breaker:
    """Open after a storage failure; half-open (one probe) after `pause` seconds."""

    def __init__(self, pause: float) -> None:
        self.pause = pause
        self.tripped = False
        self._reopen_at = 0.0
        self._probing = False

    def before(self) -> bool:
        """Whether this call may go to the database; True means it is the probe."""
        if not self.tripped:
            return False
        if self._probing or time.monotonic() < self._reopen_at:
            raise StorageUnavailable(
                "database unavailable (waiting before the next attempt)"
            )
        self._probing = True
        return True

    def succeeded(self) -> None:
        """A call reached the database: close the breaker."""
        self.tripped = False
        self._probing = False

    def failed(self) -> None:
        """A call found the database unavailable: open the breaker."""
        self.tripped = True
        self._probing = False
        self._reopen_at = time.monotonic() + self.pause

    def abandoned(self) -> None:
        """The probe ended with an unrelated error: let another call probe."""
        self._probing = False


class Executor:
    """Bounded thread pool plus breaker for blocking core calls."""

    def __init__(self, threads: int, *, retry_pause: float) -> None:
        self.limiter = CapacityLimiter(threads)
        self.breaker = Breaker(retry_pause)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`fn(*args, **kwargs)` on a pool thread."""
        probe = self.breaker.before()
        call = functools.partial(fn, *args, **kwargs)
        try:
            result: T = await anyio.to_thread.run_sync(call, limiter=self.limiter)
        except StorageUnavailable:
            self.breaker.failed()
            raise
        except BaseException:
            if probe:
                self.breaker.abandoned()
            raise
        if probe or self.breaker.tripped:
            self.breaker.succeeded()
        return result
