"""A runner's Prometheus metrics count what it did, and are served over HTTP."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from workhorse import App, TaskStatus
from workhorse.cli.metrics import serve_metrics
from workhorse.errors import StorageUnavailable
from workhorse.metrics import Depth, DepthCollector, RequestCollector, RequestStats
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


def test_metrics_are_served_with_the_backlog_and_the_process_s_own(
    app: App, start_worker: Callable[..., Worker]
) -> None:
    @app.task
    def later() -> None:
        return None

    worker = start_worker(app)
    later.options(delay=3600).queue()
    later.options(delay=3600).queue()
    app.queues["orders"].post(["a", "b", "c"])
    (line,) = serve_metrics(0, "127.0.0.1", worker=worker, storage=app.storage)
    url = line.split("metrics: ", 1)[1]
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - local
        got = samples(response.read().decode())
    assert ("workhorse_tasks_held", ()) in got
    assert got[("process_open_fds", ())] > 0
    assert got[("workhorse_backlog_up", ())] == 1
    project = app.client.project_id
    tasks = (("code", "later"), ("project", project), ("status", "queued"))
    assert got[("workhorse_tasks", tasks)] == 2
    queue = (("project", project), ("queue", "orders"))
    assert got[("workhorse_queue_messages", queue)] == 3


def test_the_backlog_is_read_at_most_once_per_interval() -> None:
    reads: list[int] = []

    def read() -> Depth:
        reads.append(1)
        return Depth([("p", "c", "queued", len(reads))], [])

    registry = CollectorRegistry()
    registry.register(DepthCollector(read, min_interval=3600))
    first = samples(generate_latest(registry).decode())
    second = samples(generate_latest(registry).decode())
    key = ("workhorse_tasks", (("code", "c"), ("project", "p"), ("status", "queued")))
    assert first[key] == second[key] == 1
    assert len(reads) == 1


def test_an_unreadable_backlog_is_reported_not_raised() -> None:
    def read() -> Depth:
        raise StorageUnavailable("database unavailable: gone")

    registry = CollectorRegistry()
    registry.register(DepthCollector(read))
    got = samples(generate_latest(registry).decode())
    assert got[("workhorse_backlog_up", ())] == 0


def test_http_requests_are_counted_by_api_method_and_status() -> None:
    stats = RequestStats()
    stats.observe("iron_mq", "POST", 201, 0.002)
    stats.observe("iron_mq", "POST", 201, 0.004)
    stats.observe("native", "GET", 404, 0.0005)
    registry = CollectorRegistry()
    registry.register(RequestCollector(stats))
    got = samples(generate_latest(registry).decode())
    requests = "workhorse_http_requests_total"
    assert (
        got[(requests, (("api", "iron_mq"), ("method", "POST"), ("status", "201")))]
        == 2
    )
    assert (
        got[(requests, (("api", "native"), ("method", "GET"), ("status", "404")))] == 1
    )
    duration = "workhorse_http_request_duration_seconds_bucket"
    assert got[(duration, (("api", "iron_mq"), ("le", "0.005")))] == 2
    assert got[(duration, (("api", "iron_mq"), ("le", "0.001")))] == 0
