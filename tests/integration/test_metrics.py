"""A runner's Prometheus metrics count what it did, and are served over HTTP."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from workhorse import App, TaskStatus
from workhorse.cli.runner import _serve_metrics
from workhorse.worker.worker import Worker


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_runner_metrics_count_tasks_by_code_and_status(
    app: App, start_worker: Callable[..., Worker]
) -> None:
    @app.task
    def ok(n: int) -> int:
        return n

    @app.task
    def boom() -> None:
        raise ValueError("no")

    worker = start_worker(app)
    done = [ok.queue(i) for i in range(5)] + [boom.queue()]
    assert [t.wait(10).status for t in done] == [TaskStatus.COMPLETE] * 5 + [
        TaskStatus.ERROR
    ]
    registry = CollectorRegistry()
    registry.register(worker.collector())
    got = samples(generate_latest(registry).decode())

    finished = "workhorse_tasks_finished_total"
    assert got[(finished, (("code", "ok"), ("status", "complete")))] == 5
    assert got[(finished, (("code", "boom"), ("status", "error")))] == 1
    hist = "workhorse_task_duration_seconds"
    assert got[(f"{hist}_count", (("code", "ok"),))] == 5
    assert got[(f"{hist}_bucket", (("code", "ok"), ("le", "+Inf")))] == 5
    assert got[("workhorse_tasks_claimed_total", ())] == 6
    assert got[("workhorse_runner_capacity", ())] >= worker.config.concurrency
    assert got[("workhorse_outcomes_stale_total", ())] == 0


def test_metrics_are_served_with_the_process_s_own(
    app: App, start_worker: Callable[..., Worker]
) -> None:
    worker = start_worker(app)
    (line,) = _serve_metrics(worker, 0, "127.0.0.1")
    url = line.split("metrics: ", 1)[1]
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - local
        text = response.read().decode()
    got = samples(text)
    assert ("workhorse_tasks_held", ()) in got
    assert got[("process_open_fds", ())] > 0
