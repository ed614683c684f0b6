"""Retry policy: a pure function of the policy and the attempt number."""

from __future__ import annotations

import pytest

from workhorse.domain.lease import heartbeat_interval, is_expired, lease_expires_at
from workhorse.domain.retry import RetryPolicy, next_retry_delay, should_retry
from workhorse.domain.task import TaskStatus


def test_no_retries_means_no_retry() -> None:
    assert next_retry_delay(RetryPolicy(0, 10), 1) is None


def test_fixed_delay_until_retries_run_out() -> None:
    policy = RetryPolicy(retries=2, retries_delay=10)
    assert [next_retry_delay(policy, a) for a in (1, 2, 3)] == [10.0, 10.0, None]


def test_backoff_doubles_each_attempt() -> None:
    policy = RetryPolicy(retries=4, retries_delay=3, backoff=True)
    assert [next_retry_delay(policy, a) for a in (1, 2, 3, 4)] == [3.0, 6.0, 12.0, 24.0]


def test_backoff_is_capped_at_a_day() -> None:
    assert next_retry_delay(RetryPolicy(100, 60, backoff=True), 40) == 24 * 3600.0


@pytest.mark.parametrize(
    ("status", "retry"),
    [
        (TaskStatus.ERROR, True),
        (TaskStatus.TIMEOUT, True),
        (TaskStatus.KILLED, True),
        (TaskStatus.CANCELLED, False),
        (TaskStatus.COMPLETE, False),
    ],
)
def test_which_endings_retry(status: TaskStatus, retry: bool) -> None:
    assert should_retry(status) is retry


def test_lease_rules() -> None:
    assert lease_expires_at(100.0, 30.0) == 130.0
    assert heartbeat_interval(30.0) == 5.0
    assert is_expired(None, 1.0)
    assert is_expired(130.0, 130.0)
    assert not is_expired(130.0, 129.9)
