"""Time as a seam: SystemClock in production, FakeClock in tests.

Times are float seconds since the Unix epoch (UTC) everywhere inside Workhorse;
datetimes appear only at the public edges (SDK properties, CLI, HTTP).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Tells the time in epoch seconds."""

    def now(self) -> float:
        """The current time, seconds since the epoch."""
        ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> float:
        """The current time, seconds since the epoch."""
        return time.time()


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start

    def now(self) -> float:
        """The frozen current time."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self._now += seconds


def to_datetime(epoch: float | None) -> datetime | None:
    """Epoch seconds to an aware UTC datetime (None stays None)."""
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def from_datetime(value: datetime) -> float:
    """An aware datetime to epoch seconds; naive datetimes are refused."""
    if value.tzinfo is None:
        from workhorse.errors import InvalidInput

        raise InvalidInput(
            "naive datetime: give a time zone (e.g. 2030-01-01T00:00:00Z)"
        )
    return value.timestamp()
