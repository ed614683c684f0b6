"""Rate limits on task starts: a token bucket per code, shared by every runner.

A code limited to `rate` starts a second holds at most `burst(rate)` tokens (one
second's worth, and at least one); a claim takes one token per task it starts, and
the bucket refills continuously. The bucket lives in the code's row and is changed
only under the code's claim lock, with the database's clock, so the limit holds
across runners on any number of hosts.
"""

from __future__ import annotations

import math
import re

from workhorse.errors import InvalidInput

MAX_RATE_PER_SECOND = 1_000_000.0
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SPEC = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(\d*)\s*([smhd])\s*$")


def parse_rate(spec: str | float | None) -> float | None:
    """Starts per second from `"10/s"`, `"100/m"`, `"5/2h"`, or a number (per second).

    Raises:
        InvalidInput: not a positive rate in one of those forms.
    """
    if spec is None:
        return None
    if isinstance(spec, bool):
        raise InvalidInput(f"rate_limit must be like '10/s' or '100/m', got {spec!r}")
    if isinstance(spec, int | float):
        rate = float(spec)
    elif isinstance(spec, str) and (found := _SPEC.match(spec)):
        count, every, unit = found.groups()
        rate = float(count) / (_UNITS[unit] * (int(every) if every else 1))
    else:
        raise InvalidInput(
            f"rate_limit must be like '10/s', '100/m', '5/2h' or a number per second, "
            f"got {spec!r}"
        )
    if not math.isfinite(rate) or not 0 < rate <= MAX_RATE_PER_SECOND:
        raise InvalidInput(
            f"rate_limit must be above 0 and at most {MAX_RATE_PER_SECOND:.0f}/s, got {spec!r}"
        )
    return rate


def describe_rate(rate: float | None) -> str | None:
    """A rate as people write it: `10/s`, `100/m`, `2/h`."""
    if rate is None:
        return None
    for unit, seconds in _UNITS.items():
        count = rate * seconds
        if count >= 1 and abs(count - round(count)) < 1e-9:
            return f"{round(count)}/{unit}"
    return f"{rate:g}/s"


def burst(rate: float) -> float:
    """How many tokens a full bucket holds: one second's worth, at least one."""
    return max(1.0, rate)


def available(rate: float, tokens: float | None, at: float | None, now: float) -> float:
    """Tokens in the bucket at `now`: what was left at `at`, refilled since, capped
    at `burst`. An unused bucket (no `at`) is full; a clock reading older than `at`
    (another runner's transaction started later) refills nothing."""
    if tokens is None or at is None:
        return burst(rate)
    return min(burst(rate), tokens + max(0.0, now - at) * rate)


def whole_tokens(tokens: float) -> int:
    """Starts a bucket holding `tokens` allows now. Times near 1.8e9 s carry ~2e-7 s
    of float error, so a hair under a whole token counts as one."""
    return int(tokens + 1e-6)


def wait_for_token(rate: float, tokens: float) -> float:
    """Seconds until the bucket holds one whole token again (0 if it does)."""
    return max(0.0, (1.0 - tokens) / rate)
