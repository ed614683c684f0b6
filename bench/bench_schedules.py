"""Scheduler lateness: how long after its due time each run is queued.

    python bench/bench_schedules.py                      # SQLite in a temp dir
    python bench/bench_schedules.py --database-url postgresql://postgres@127.0.0.1:5432/bench
    python bench/bench_schedules.py --schedules 1000 --every 10 --duration 30

Creates N schedules (`run_every` seconds apart, start times spread evenly over
one period, so about N/every runs fall due each second), starts one runner
(which leads and runs the scheduler as in production), waits, then reads each
schedule's fire records. Lateness is `fired_at - due_at`, both read from the
database clock in the transaction that queued the task. Prints JSON.

The runner runs no task code, so the tasks stay queued: only the scheduler is
measured, not task throughput.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from workhorse.client import Client
from workhorse.schedules import ScheduleClient
from workhorse.settings import Settings
from workhorse.storage import open_storage
from workhorse.worker.registry import Registry
from workhorse.worker.worker import Worker, WorkerConfig


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--schedules", type=int, default=1000)
    parser.add_argument("--every", type=float, default=10.0, help="run_every, seconds")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds measured")
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory()
    url = args.database_url or f"sqlite:///{Path(tmp.name) / 'bench.db'}"
    settings = Settings(database_url=url)
    storage = open_storage(settings, migrate=True)
    client = Client(storage, project_id=f"bench-{int(time.time())}")
    client.register_python("bench_noop", {})
    schedules = ScheduleClient(client, min_run_every=0.01)

    start = storage.run(lambda tx: tx.schedules.db_now()) + 3.0
    ids = [
        schedules.create(
            "bench_noop",
            "{}",
            start_at=start + i * args.every / args.schedules,
            run_every=args.every,
        ).id
        for i in range(args.schedules)
    ]

    worker = Worker(
        storage,
        registry=Registry(),
        config=WorkerConfig(
            concurrency=1,
            packages=False,
            project_id=client.project_id,
            cache_dir=Path(tmp.name) / "cache",
        ),
    )
    worker.start()
    time.sleep(3.0 + args.duration)  # the benchmark's measuring window
    worker.stop(grace=1.0)

    lateness: list[float] = []
    for schedule_id in ids:
        for fire in schedules.fires(schedule_id, limit=10_000):
            if fire.outcome == "queued":
                lateness.append(fire.fired_at - fire.due_at)
    for schedule_id in ids:
        schedules.cancel(schedule_id)
    storage.close()
    tmp.cleanup()

    expected = args.schedules * args.duration / args.every
    result = {
        "benchmark": "schedule_lateness",
        "backend": "postgres" if url.startswith("postgres") else "sqlite",
        "schedules": args.schedules,
        "run_every_s": args.every,
        "duration_s": args.duration,
        "runs": len(lateness),
        "runs_expected_about": round(expected),
        "lateness_ms": {
            "p50": round(percentile(lateness, 50) * 1000, 1),
            "p90": round(percentile(lateness, 90) * 1000, 1),
            "p99": round(percentile(lateness, 99) * 1000, 1),
            "max": round(max(lateness) * 1000, 1),
            "mean": round(statistics.fmean(lateness) * 1000, 1),
        }
        if lateness
        else None,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
