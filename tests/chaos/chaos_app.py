"""The app the crash tests run in real runner processes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import workhorse

app = workhorse.App()
RUNS = Path(os.environ.get("CHAOS_RUNS_FILE", "/tmp/workhorse-chaos-runs"))


@app.task(retries=0)
def work(n: int) -> int:
    """Record that this attempt started, then take a little while."""
    with RUNS.open("a") as f:
        f.write(f"{workhorse.current_task().id}\n")
    time.sleep(0.02)
    return n * 2


@app.task(retries=0)
def hold(n: int) -> int:
    """Record this attempt's start and end, with the runner's pid, around a second
    of work (long enough to be frozen in the middle of it)."""
    task_id = workhorse.current_task().id
    with RUNS.open("a") as f:
        f.write(f"start {task_id} {os.getpid()}\n")
    time.sleep(1.0)
    with RUNS.open("a") as f:
        f.write(f"end {task_id} {os.getpid()}\n")
    return n * 2
