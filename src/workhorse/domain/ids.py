"""Identifiers: 24 hex characters, time-ordered like IronMQ's ids."""

from __future__ import annotations

import os
import time


def new_id(now: float | None = None) -> str:
    """A new id: 8 hex digits of seconds, then 16 random hex digits."""
    seconds = int(time.time() if now is None else now) & 0xFFFFFFFF
    return f"{seconds:08x}{os.urandom(8).hex()}"


def new_token() -> str:
    """A new unguessable token (leases, reservations)."""
    return os.urandom(12).hex()
