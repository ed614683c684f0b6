"""Identifiers: 24 hex characters, time-ordered like IronMQ's ids."""

from __future__ import annotations

import os
import time


def new_id(now: float | None = None) -> str:
    """A new id: 8 hex digits of seconds, then 16 random hex digits."""
    seconds = int(time.time() if now is None else now) & 0xFFFFFFFF
    return f"{seconds:08x}{os.urandom(8).hex()}"


def new_ids(count: int, now: float | None = None) -> list[str]:
    """`count` new ids sharing one timestamp, from one read of the random source."""
    seconds = f"{int(time.time() if now is None else now) & 0xFFFFFFFF:08x}"
    noise = os.urandom(8 * count).hex()
    return [seconds + noise[i : i + 16] for i in range(0, 16 * count, 16)]


def new_token() -> str:
    """A new unguessable token (leases, reservations)."""
    return os.urandom(12).hex()
