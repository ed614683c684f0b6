"""Per-key rate limiting (token buckets) and request-body reading with a size cap.

Buckets live in this process only and are touched from the event loop thread, so
they need no lock. With several API processes each enforces the limit separately.
"""

from __future__ import annotations

import math
import time

from starlette.requests import Request

from workhorse.api.errors import ApiError

MAX_KEYS = 100_000


class RateLimiter:
    """`rate` events per second per key, with bursts up to `burst`."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate * 2)
        self._buckets: dict[str, tuple[float, float]] = {}

    @property
    def enabled(self) -> bool:
        """Whether any limit applies."""
        return self.rate > 0

    def take(self, key: str, now: float | None = None) -> float:
        """Spend one event; 0 when allowed, else seconds until one is available."""
        if not self.enabled:
            return 0.0
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate
        if len(self._buckets) >= MAX_KEYS and key not in self._buckets:
            self._prune(now)
        self._buckets[key] = (tokens - 1.0, now)
        return 0.0

    def wait_time(self, key: str, now: float | None = None) -> float:
        """Seconds until `key` may spend an event (0: now), without spending."""
        if not self.enabled or key not in self._buckets:
            return 0.0
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets[key]
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def check(self, key: str) -> None:
        """Spend one event or raise 429 with Retry-After."""
        wait = self.take(key)
        if wait > 0:
            raise ApiError(
                429,
                "Too many requests; slow down and retry after the time in Retry-After.",
                {"Retry-After": str(max(1, math.ceil(wait)))},
            )

    def _prune(self, now: float) -> None:
        """Forget buckets that have refilled (they behave like new ones)."""
        full = [
            k
            for k, (tokens, last) in self._buckets.items()
            if tokens + (now - last) * self.rate >= self.burst
        ]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= MAX_KEYS:
            self._buckets.clear()


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) anything over `limit` bytes while reading."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise ApiError(400, "Invalid Content-Length header") from None
        if size > limit:
            raise ApiError(
                413, f"Request body is too large: the limit is {limit} bytes"
            )
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise ApiError(
                413, f"Request body is too large: the limit is {limit} bytes"
            )
        chunks.append(chunk)
    return b"".join(chunks)
