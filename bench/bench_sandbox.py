"""Cost of the per-task sandbox: no-op `sh` code-package tasks, sandboxed and bare.

For each launcher (`bwrap`: the bubblewrap sandbox; `process`: a bare child
process) this starts 2 `workhorse runner` processes on a fresh database and
measures:

  throughput       N no-op tasks queued in one transaction, then drained by the
                   2 runners: N / (last end - first start), database clock.
  cpu per task     over the drain, divided by N: `runner_cpu_ms_per_task` is the
                   CPU time (user + system) of the runner processes and of the
                   task processes they reaped (a sandbox's init is reaped by the
                   host's init, so most of a sandbox's own cost is missing);
                   `host_cpu_ms_per_task` is every CPU's busy time on the host,
                   this script's polling and anything else running included.
  start overhead   one task at a time on idle runners: from the claim (the
                   task's start_time, database clock) to the moment the task's
                   command runs (it prints `date +%s.%N`); p50 and p95. A task
                   whose log lacks that line is counted in `lost_logs`.

Both use the host clock (SQLite's clock is the host's; a local PostgreSQL too).
With --reps, the modes are measured in turn, that many times, and each figure is
the median of the repetitions (every repetition is listed under `runs`). The
load average is reported before and after: the figures are only comparable
between runs on an equally quiet machine.

Prints one JSON document on one line (`make bench` reads it):

    .venv/bin/python bench/bench_sandbox.py --tasks 2000 --latency-tasks 200 --reps 3
    .venv/bin/python bench/bench_sandbox.py --quick
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
TICK = os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def host_busy_seconds() -> float:
    """Busy time of all CPUs since boot (/proc/stat: user, nice, system, irq and
    softirq)."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split()[1:8]]
    return (sum(fields) - fields[3] - fields[4]) / TICK


def cpu_seconds(pids: list[int]) -> float:
    """User + system time of these processes and of the children they reaped."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return total / TICK


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


def wait_until(predicate: Any, timeout: float, what: str, pause: float = 0.01) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(pause)


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
        # Warm-up tasks fill the code caches.
        for h in app.queue_many("noop", ["{}"] * RUNNERS * 2):
            h.wait(60)
        pids = [p.pid for p in procs]
        cpu_before, host_before = cpu_seconds(pids), host_busy_seconds()
        ids = client.queue_many("noop", ["{}"] * tasks)

        def drained() -> bool:
            stats = client.code_stats("noop")
            return stats["queued"] + stats["running"] == 0

        # Polled slowly: this process competes with the runners for the CPUs.
        wait_until(drained, 600, "the batch", pause=0.1)
        cpu = cpu_seconds(pids) - cpu_before
        host = host_busy_seconds() - host_before
        done = [client.get(i) for i in ids]
        failed = [t for t in done if t.status != "complete"]
        first = min(t.start_time or 0 for t in done)
        last = max(t.end_time or 0 for t in done)
        overheads = []
        lost_logs = 0
        for _ in range(latency_tasks):
            handle = app.queue("noop", "{}").wait(60)
            task = handle.task
            lines = handle.log.strip().splitlines()
            if not lines or not lines[-1].replace(".", "", 1).isdigit():
                lost_logs += 1  # the task ran, but its output was not stored
                continue
            started = float(lines[-1])
            overheads.append((started - (task.start_time or started)) * 1000)
    finally:
        stop_runners(procs)
        app.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return {
        "tasks": tasks,
        "failed": len(failed),
        "tasks_per_s": round(tasks / (last - first), 1) if last > first else None,
        "runner_cpu_ms_per_task": round(cpu / tasks * 1000, 2),
        "host_cpu_ms_per_task": round(host / tasks * 1000, 2),
        "start_overhead_ms": {
            "p50": round(statistics.median(overheads), 2) if overheads else None,
            "p95": round(percentile(overheads, 0.95), 2) if overheads else None,
            "n": len(overheads),
        },
        "lost_logs": lost_logs,
    }


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over repetitions of one mode (with each repetition, if several)."""

    def med(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return round(statistics.median(known), 2) if known else None

    summary = {
        "tasks": runs[0]["tasks"],
        "failed": sum(r["failed"] for r in runs),
        "lost_logs": sum(r["lost_logs"] for r in runs),
        "tasks_per_s": med([r["tasks_per_s"] for r in runs]),
        "runner_cpu_ms_per_task": med([r["runner_cpu_ms_per_task"] for r in runs]),
        "host_cpu_ms_per_task": med([r["host_cpu_ms_per_task"] for r in runs]),
        "start_overhead_ms": {
            "p50": med([r["start_overhead_ms"]["p50"] for r in runs]),
            "p95": med([r["start_overhead_ms"]["p95"] for r in runs]),
            "n": sum(r["start_overhead_ms"]["n"] for r in runs),
        },
    }
    if len(runs) > 1:
        summary["runs"] = runs
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--latency-tasks", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=4, help="per runner")
    parser.add_argument("--reps", type=int, default=1, help="repetitions per mode")
    parser.add_argument(
        "--quick", action="store_true", help="200 tasks, 20 latency samples"
    )
    parser.add_argument(
        "--database-url",
        default="sqlite:///",
        help="sqlite (a fresh file per mode) or a postgresql:// URL",
    )
    parser.add_argument("--modes", default="bwrap,process")
    args = parser.parse_args()
    if args.quick:
        args.tasks, args.latency_tasks = 200, 20
    modes = args.modes.split(",")
    results: dict[str, Any] = {
        "benchmark": "sandbox",
        "runners": RUNNERS,
        "concurrency_per_runner": args.concurrency,
        "database": "sqlite"
        if args.database_url.startswith("sqlite")
        else "postgresql",
        "cpus": os.cpu_count(),
        "reps": args.reps,
        "load_before": load_average(),
    }
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
    for _ in range(args.reps):
        for mode in modes:
            runs[mode].append(
                measure(
                    mode,
                    args.database_url,
                    args.tasks,
                    args.latency_tasks,
                    args.concurrency,
                )
            )
    for mode in modes:
        results[mode] = summarize(runs[mode])
    results["load_after"] = load_average()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
