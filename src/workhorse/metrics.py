"""Prometheus metrics (`--metrics-port` of `workhorse runner`, `server` and `up`).

Task threads count into plain integers of their own, without a lock (under a
microsecond a task); the numbers become Prometheus families only when scraped,
through `RunnerCollector`. So the hot path pays nothing for label lookups or
metric objects, and one process may hold several runners (tests) without their
numbers mixing. prometheus_client itself is imported only by a process that
serves metrics (it adds ~30 ms to a start).
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from workhorse.errors import WorkhorseError

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import CollectorRegistry

log = logging.getLogger(__name__)

# Upper bounds of the task-duration buckets, seconds: from no-op tasks to an hour.
DURATION_BUCKETS = (
    0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0
)  # fmt: skip


@dataclass
class _Durations:
    buckets: list[int] = field(default_factory=lambda: [0] * len(DURATION_BUCKETS))
    count: int = 0
    total: float = 0.0


class TaskCounts:
    """One task thread's counts: written by that thread alone, without a lock;
    read (copied) at scrape time."""

    def __init__(self) -> None:
        self.finished: dict[tuple[str, str], int] = {}
        self.durations: dict[str, _Durations] = {}

    def task_finished(self, code: str, status: str, seconds: float) -> None:
        key = (code, status)
        self.finished[key] = self.finished.get(key, 0) + 1
        durations = self.durations.get(code)
        if durations is None:
            durations = self.durations[code] = _Durations()
        index = bisect.bisect_left(DURATION_BUCKETS, seconds)
        if index < len(DURATION_BUCKETS):
            durations.buckets[index] += 1
        durations.count += 1
        durations.total += seconds


class RunnerStats:
    """What one runner did since it started: task counts kept by each task thread
    (`for_thread`), the rest under a lock (a few events a second)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._threads: list[TaskCounts] = []
        self.claim_cycles = 0
        self.claimed = 0
        self.failures: dict[str, int] = {}

    def for_thread(self) -> TaskCounts:
        """Counts for one task thread to keep."""
        counts = TaskCounts()
        with self._lock:
            self._threads.append(counts)
        return counts

    def cycle(self, claimed: int) -> None:
        with self._lock:
            self.claim_cycles += 1
            self.claimed += claimed

    def failed(self, where: str) -> None:
        with self._lock:
            self.failures[where] = self.failures.get(where, 0) + 1

    def snapshot(self) -> Snapshot:
        """Everything summed, for one scrape. A thread's counts may be a task
        apart from one another (a count taken before its duration): harmless."""
        with self._lock:
            threads = list(self._threads)
            snap = Snapshot(self.claim_cycles, self.claimed, dict(self.failures))
        for counts in threads:
            for key, n in dict(counts.finished).items():
                snap.finished[key] = snap.finished.get(key, 0) + n
            for code, d in dict(counts.durations).items():
                total = snap.durations.setdefault(code, _Durations())
                total.buckets = [
                    a + b for a, b in zip(total.buckets, d.buckets, strict=True)
                ]
                total.count += d.count
                total.total += d.total
        return snap


@dataclass
class Snapshot:
    """A runner's numbers at one moment."""

    claim_cycles: int
    claimed: int
    failures: dict[str, int]
    finished: dict[tuple[str, str], int] = field(default_factory=dict)
    durations: dict[str, _Durations] = field(default_factory=dict)


@dataclass(frozen=True)
class RunnerGauges:
    """How to read a runner's live numbers at scrape time."""

    running: Callable[[], int]
    held: Callable[[], int]
    capacity: Callable[[], int]
    recorded: Callable[[], int]
    stale: Callable[[], int]


class RunnerCollector:
    """Turns a runner's numbers into Prometheus families when scraped."""

    def __init__(self, stats: RunnerStats, gauges: RunnerGauges) -> None:
        self.stats = stats
        self.gauges = gauges

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        s = self.stats.snapshot()
        finished = CounterMetricFamily(
            "workhorse_tasks_finished",
            "Task attempts this runner finished, by how they ended.",
            labels=["code", "status"],
        )
        for (code, status), n in sorted(s.finished.items()):
            finished.add_metric([code, status], n)
        yield finished
        durations = HistogramMetricFamily(
            "workhorse_task_duration_seconds",
            "Run time of finished task attempts.",
            labels=["code"],
        )
        for code, d in sorted(s.durations.items()):
            durations.add_metric([code], _buckets(DURATION_BUCKETS, d), d.total)
        yield durations
        yield CounterMetricFamily(
            "workhorse_claim_cycles", "Claim cycles (one transaction each).",
            value=s.claim_cycles,
        )  # fmt: skip
        yield CounterMetricFamily(
            "workhorse_tasks_claimed", "Tasks this runner claimed.", value=s.claimed
        )
        yield CounterMetricFamily(
            "workhorse_outcomes_recorded",
            "Outcomes written while their lease held.",
            value=self.gauges.recorded(),
        )
        yield CounterMetricFamily(
            "workhorse_outcomes_stale",
            "Outcomes refused: their lease had lapsed and the task had moved on.",
            value=self.gauges.stale(),
        )
        failures = CounterMetricFamily(
            "workhorse_runner_errors",
            "Unexpected errors a runner's threads logged and went on after.",
            labels=["where"],
        )
        for where, n in sorted(s.failures.items()):
            failures.add_metric([where], n)
        yield failures
        gauges = self.gauges
        yield GaugeMetricFamily(
            "workhorse_tasks_running",
            "Task attempts running now.",
            value=gauges.running(),
        )
        yield GaugeMetricFamily(
            "workhorse_tasks_held",
            "Tasks claimed and not yet finished.",
            value=gauges.held(),
        )
        yield GaugeMetricFamily(
            "workhorse_runner_capacity",
            "Tasks this runner holds at most now (threads and prefetch).",
            value=gauges.capacity(),
        )


def _buckets(bounds: tuple[float, ...], d: _Durations) -> list[tuple[str, float]]:
    """Cumulative (upper bound, count) pairs of a histogram, +Inf last."""
    out, cumulative = [], 0
    for bound, n in zip(bounds, d.buckets, strict=True):
        cumulative += n
        out.append((repr(bound), float(cumulative)))
    out.append(("+Inf", float(d.count)))
    return out


def serve(registry: CollectorRegistry, port: int, addr: str = "127.0.0.1") -> int:
    """Serve `registry` over HTTP at /metrics on a daemon thread; the port bound
    (useful with 0)."""
    from prometheus_client import start_http_server

    server, _thread = start_http_server(port, addr=addr, registry=registry)
    return int(server.server_port)


# -- the database's backlog (served by `workhorse server` and `up`) -------------------


@dataclass(frozen=True)
class Depth:
    """Backlog at one moment: (project, code, queued|running, n) and
    (project, queue, messages)."""

    tasks: list[tuple[str, str, str, int]]
    messages: list[tuple[str, str, int]]


class DepthCollector:
    """Tasks queued and running per code, and messages per queue, read from the
    database at most once per `min_interval` seconds however often it is scraped
    (the counts read indexes of the live rows only, never the finished tasks)."""

    def __init__(
        self, read: Callable[[], Depth], *, min_interval: float = 15.0
    ) -> None:
        self._read = read
        self.min_interval = min_interval
        self._lock = threading.Lock()
        self._depth: Depth | None = None
        self._read_at = float("-inf")

    def _current(self) -> Depth | None:
        with self._lock:
            if time.monotonic() - self._read_at >= self.min_interval:
                try:
                    self._depth = self._read()
                except WorkhorseError as exc:  # the database is away: say so
                    log.warning("metrics: backlog unread: %s", exc)
                    self._depth = None
                self._read_at = time.monotonic()
            return self._depth

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        depth = self._current()
        yield GaugeMetricFamily(
            "workhorse_backlog_up",
            "Whether the last read of the backlog from the database worked.",
            value=0 if depth is None else 1,
        )
        if depth is None:
            return
        tasks = GaugeMetricFamily(
            "workhorse_tasks",
            "Tasks queued (delayed ones included) and running, per code.",
            labels=["project", "code", "status"],
        )
        for project, code, status, n in sorted(depth.tasks):
            tasks.add_metric([project, code, status], n)
        yield tasks
        messages = GaugeMetricFamily(
            "workhorse_queue_messages",
            "Messages in a queue (reserved and delayed ones included), as `size` counts.",
            labels=["project", "queue"],
        )
        for project, queue, n in sorted(depth.messages):
            messages.add_metric([project, queue], n)
        yield messages


# -- HTTP requests (served by `workhorse server` and `up`) -----------------------------

# Request durations, seconds: long polls wait up to 30 s.
REQUEST_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0)


class RequestStats:
    """Requests this process answered, by API, method and status."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: dict[tuple[str, str, str], int] = {}
        self.durations: dict[str, _Durations] = {}

    def observe(self, api: str, method: str, status: int, seconds: float) -> None:
        index = bisect.bisect_left(REQUEST_BUCKETS, seconds)
        with self._lock:
            key = (api, method, str(status))
            self.counts[key] = self.counts.get(key, 0) + 1
            d = self.durations.get(api)
            if d is None:
                d = self.durations[api] = _Durations([0] * len(REQUEST_BUCKETS))
            if index < len(REQUEST_BUCKETS):
                d.buckets[index] += 1
            d.count += 1
            d.total += seconds

    def snapshot(
        self,
    ) -> tuple[dict[tuple[str, str, str], int], dict[str, _Durations]]:
        """Copies of the counts and durations, for one scrape."""
        with self._lock:
            return dict(self.counts), {
                api: _Durations(list(d.buckets), d.count, d.total)
                for api, d in self.durations.items()
            }


# One per process: every API app of the process counts here.
REQUESTS = RequestStats()


def api_of(path: str) -> str:
    """Which API a path belongs to, as a label: iron_mq, iron_worker, native, other."""
    if path.startswith("/3/"):
        return "iron_mq"
    if path.startswith("/2/"):
        return "iron_worker"
    if path.startswith("/v1/"):
        return "native"
    return "other"


class RequestCollector:
    """Turns `RequestStats` into Prometheus families when scraped."""

    def __init__(self, stats: RequestStats = REQUESTS) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

        counts, durations = self.stats.snapshot()
        requests = CounterMetricFamily(
            "workhorse_http_requests",
            "HTTP requests answered, by API, method and status code.",
            labels=["api", "method", "status"],
        )
        for (api, method, status), n in sorted(counts.items()):
            requests.add_metric([api, method, status], n)
        yield requests
        histogram = HistogramMetricFamily(
            "workhorse_http_request_duration_seconds",
            "Time to answer HTTP requests (long polls included).",
            labels=["api"],
        )
        for api, d in sorted(durations.items()):
            histogram.add_metric([api], _buckets(REQUEST_BUCKETS, d), d.total)
        yield histogram
