"""A rate-limited task on two runners: starts never outpace the limit, all finish."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from workhorse import App, InvalidInput
from workhorse.domain.rate import burst
from workhorse.worker.worker import Worker

RATE = 20.0


def test_two_runners_start_no_faster_than_the_limit(
    app: App, start_worker: Callable[..., Worker]
) -> None:
    @app.task(rate_limit=f"{RATE:g}/s")
    def ping(i: int) -> int:
        return i

    app.register_all()
    handles = ping.queue_many([[i] for i in range(50)])
    start_worker(app, concurrency=8)
    start_worker(app, concurrency=8)
    results = [h.wait(timeout=60).result for h in handles]
    assert results == list(range(50))
    starts = sorted(h.task.start_time for h in handles)  # the claims' database time
    # Every window of starts holds at most a full bucket plus what refilled in it.
    for i, first in enumerate(starts):
        for j in range(i, len(starts)):
            assert j - i + 1 <= burst(RATE) + RATE * (starts[j] - first) + 1e-6


def test_a_bad_rate_limit_is_refused_when_the_task_is_defined(app: App) -> None:
    with pytest.raises(InvalidInput, match="rate_limit must be"):

        @app.task(rate_limit="fast")
        def nope() -> None:
            """Never defined."""
