"""Leases: a claim holds for `lease_seconds`, renewed by heartbeat; a stale token loses."""

from __future__ import annotations

# A runner renews its leases this many times per lease period, so a single late
# heartbeat (GC pause, slow commit) never loses a lease.
HEARTBEATS_PER_LEASE = 6


def heartbeat_interval(lease_seconds: float) -> float:
    """Seconds between heartbeats for a given lease length."""
    return lease_seconds / HEARTBEATS_PER_LEASE


def lease_expires_at(now: float, lease_seconds: float) -> float:
    """When a lease taken or renewed at `now` runs out."""
    return now + lease_seconds


def is_expired(expires_at: float | None, now: float) -> bool:
    """A lease with no expiry is not held; one past its time is expired."""
    return expires_at is None or expires_at <= now
