"""When to retry a failed attempt: a pure function of the policy and the attempt."""

from __future__ import annotations

from dataclasses import dataclass

from workhorse.domain.task import TaskStatus

MAX_BACKOFF_SECONDS = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many times to retry, how long to wait, and whether the wait doubles."""

    retries: int
    retries_delay: float
    backoff: bool = False


def next_retry_delay(policy: RetryPolicy, attempt: int) -> float | None:
    """Seconds to wait before retrying after attempt `attempt` (1-based), or None.

    Attempts lost to a dead runner do not count (the caller passes the attempts
    that really ran). With backoff the delay doubles each attempt: delay,
    2*delay, 4*delay..., capped at a day. Delays are relative so that the database
    clock, not a possibly skewed runner clock, decides when the retry is due.
    """
    if attempt > policy.retries:
        return None
    delay = float(policy.retries_delay)
    if policy.backoff:
        delay = min(max(delay, 1.0) * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS)
    return delay


# Statuses after which a retry may follow. Cancelled never retries; a timeout
# retries, as IronWorker did.
RETRYABLE = frozenset({TaskStatus.ERROR, TaskStatus.TIMEOUT, TaskStatus.KILLED})


def should_retry(status: TaskStatus) -> bool:
    """Whether an attempt that ended with `status` may be retried."""
    return status in RETRYABLE
