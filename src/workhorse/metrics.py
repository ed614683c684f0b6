"""Prometheus metrics of a runner process (`workhorse runner --metrics-port 9464`).

Task threads count into plain integers of their own, without a lock (under a
microsecond a task); the numbers become Prometheus families only when scraped,
through `RunnerCollector`. So the hot path pays nothing for label lookups or
metric objects, and one process may hold several runners (tests) without their
numbers mixing.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

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


class RunnerCollector(Collector):
    """Turns a runner's numbers into Prometheus families when scraped."""

    def __init__(self, stats: RunnerStats, gauges: RunnerGauges) -> None:
        self.stats = stats
        self.gauges = gauges

    def collect(self) -> Iterator[Metric]:
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
            cumulative, buckets = 0, []
            for bound, n in zip(DURATION_BUCKETS, d.buckets, strict=True):
                cumulative += n
                buckets.append((repr(bound), cumulative))
            buckets.append(("+Inf", d.count))
            durations.add_metric([code], buckets, d.total)
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


def serve(registry: CollectorRegistry, port: int, addr: str = "127.0.0.1") -> int:
    """Serve `registry` over HTTP at /metrics on a daemon thread; the port bound
    (useful with 0)."""
    from prometheus_client import start_http_server

    server, _thread = start_http_server(port, addr=addr, registry=registry)
    return int(server.server_port)
