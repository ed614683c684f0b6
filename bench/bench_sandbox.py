"""Cost of the per-task sandbox: no-op `sh` code-package tasks, sandboxed and bare.

For each launcher (`bwrap`: the bubblewrap sandbox; `process`: a bare child
process) this starts 2 `workhorse runner` processes on a fresh database and
measures:

  throughput       N no-op tasks queued in one transaction, then drained by the
                   2 runners: N / (last end - first start), database clock.
  start overhead   one task at a time on idle runners: from the claim (the
                   task's start_time, database clock) to the moment the task's
                   command runs (it prints `date +%s.%N`); p50 and p95.

Both use the host clock (SQLite's clock is the host's; a local PostgreSQL too).
Prints one JSON document. Run it on a quiet machine for numbers you publish:

    .venv/bin/python bench/bench_sandbox.py --tasks 2000 --latency-tasks 200
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from workhorse.app import App
from workhorse.client import CodePackage
from workhorse.settings import Settings

WORKHORSE = str(Path(sys.executable).parent / "workhorse")
SCRIPT = "exec date +%s.%N\n"
RUNNERS = 2


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def start_runners(
    url: str, mode: str, concurrency: int, scratch: Path
) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, "WORKHORSE_SANDBOX": mode, "WORKHORSE_DATABASE_URL": url}
    return [
        subprocess.Popen(
            [
                WORKHORSE,
                "runner",
                "--concurrency",
                str(concurrency),
                "--cache-dir",
                str(scratch / f"cache{i}"),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=scratch,
        )
        for i in range(RUNNERS)
    ]


def stop_runners(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.01)


def measure(
    mode: str, url: str, tasks: int, latency_tasks: int, concurrency: int
) -> dict[str, Any]:
    scratch = Path(tempfile.mkdtemp(prefix=f"bench-sandbox-{mode}-"))
    if url.startswith("sqlite"):
        url = f"sqlite:///{scratch / 'bench.db'}"
    app = App(settings=Settings(database_url=url))
    client = app.client
    src = scratch / "noop"
    src.mkdir()
    (src / "run.sh").write_text(SCRIPT)
    client.upload_directory(src, CodePackage(name="noop", command="sh run.sh"))
    procs = start_runners(url, mode, concurrency, scratch)
    try:
        wait_until(lambda: len(client.runners()) >= RUNNERS, 60, "runners")
        # One warm-up task per runner fills the code caches.
        for h in app.queue_many("noop", ["{}"] * RUNNERS * 2):
            h.wait(60)
        ids = client.queue_many("noop", ["{}"] * tasks)

        def drained() -> bool:
            stats = client.code_stats("noop")
            return stats["queued"] + stats["running"] == 0

        wait_until(drained, 600, "the batch")
        done = [client.get(i) for i in ids]
        failed = [t for t in done if t.status != "complete"]
        first = min(t.start_time or 0 for t in done)
        last = max(t.end_time or 0 for t in done)
        overheads = []
        for _ in range(latency_tasks):
            handle = app.queue("noop", "{}").wait(60)
            task = handle.task
            started = float(handle.log.strip().splitlines()[-1])
            overheads.append((started - (task.start_time or started)) * 1000)
    finally:
        stop_runners(procs)
        app.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return {
        "tasks": tasks,
        "failed": len(failed),
        "tasks_per_s": round(tasks / (last - first), 1) if last > first else None,
        "start_overhead_ms": {
            "p50": round(statistics.median(overheads), 2),
            "p95": round(percentile(overheads, 0.95), 2),
            "n": len(overheads),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--latency-tasks", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=4, help="per runner")
    parser.add_argument(
        "--database-url",
        default="sqlite:///",
        help="sqlite (a fresh file per mode) or a postgresql:// URL",
    )
    parser.add_argument("--modes", default="bwrap,process")
    args = parser.parse_args()
    results: dict[str, Any] = {
        "benchmark": "sandbox",
        "runners": RUNNERS,
        "concurrency_per_runner": args.concurrency,
        "database": "sqlite"
        if args.database_url.startswith("sqlite")
        else "postgresql",
        "cpus": os.cpu_count(),
    }
    for mode in args.modes.split(","):
        results[mode] = measure(
            mode, args.database_url, args.tasks, args.latency_tasks, args.concurrency
        )
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
