"""Helpers for tests that start real runner processes and kill them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from workhorse import App

HERE = Path(__file__).parent


@pytest.fixture
def spawn_runner(
    tmp_path: Path, database_url: str
) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start `workhorse runner --app chaos_app:app` processes; all are killed at the end."""
    procs: list[subprocess.Popen[bytes]] = []

    def spawn(
        *extra: str,
        env: dict[str, str] | None = None,
        verbose: bool = False,
        wrap: Sequence[str] = (),
    ) -> subprocess.Popen[bytes]:
        """`wrap`: a command to run the runner through (`ip netns exec NAME`);
        it must exec the runner, so that the process is the runner's."""
        full_env = {
            **os.environ,
            "WORKHORSE_DATABASE_URL": database_url,
            "WORKHORSE_LEASE_SECONDS": "2",
            "CHAOS_RUNS_FILE": str(tmp_path / "runs.txt"),
            "PYTHONPATH": str(HERE),
            **(env or {}),
        }
        with (tmp_path / f"runner-{len(procs)}.log").open("wb") as log:
            proc = subprocess.Popen(
                [
                    *wrap,
                    sys.executable,
                    "-m",
                    "workhorse",
                    *(["--verbose"] if verbose else []),
                    "runner",
                    "--app",
                    "chaos_app:app",
                    "--concurrency",
                    "4",
                    "--cache-dir",
                    str(tmp_path / "cache"),
                    *extra,
                ],
                cwd=HERE,
                env=full_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        procs.append(proc)
        return proc

    yield spawn
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll a condition read from the database until it holds."""
    deadline = time.monotonic() + timeout
    pause = 0.01
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(pause)
        pause = min(pause * 1.5, 0.2)


def kill_after_acknowledged(
    script: str, args: list[str], database_url: str, count: int
) -> dict[str, str]:
    """Run a producer `script` that prints "ID VALUE" once each write is acknowledged;
    kill -9 it after `count` lines, most likely mid-write. Returns every
    acknowledgement it printed, those still unread in the pipe at the kill too."""
    producer = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        env={**os.environ, "WORKHORSE_DATABASE_URL": database_url},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert producer.stdout is not None
    acknowledged: dict[str, str] = {}
    for line in producer.stdout:
        key, value = line.split()
        acknowledged[key] = value
        if len(acknowledged) == count:
            producer.send_signal(signal.SIGKILL)
            break
    producer.wait()
    for line in producer.stdout:
        key, value = line.split()
        acknowledged[key] = value
    producer.stdout.close()
    return acknowledged


def runs(path: Path) -> list[tuple[str, str, int]]:
    """(start|end, task id, runner pid) for each line the `hold` task wrote."""
    if not path.exists():
        return []
    return [
        (kind, task_id, int(pid))
        for kind, task_id, pid in (
            line.split() for line in path.read_text().splitlines()
        )
    ]


def fenced(log: Path) -> int:
    """Tasks whose attempt a runner gave up (lease lost) or whose outcome it
    reported and was refused (stale lease), from its INFO log."""
    text = log.read_text(errors="replace")
    dropped = sum(int(n) for n in re.findall(r"(\d+) outcomes dropped", text))
    return dropped + len(re.findall(r"aborted: lease lost", text))


def assert_back_at_work(
    app: App,
    other: subprocess.Popen[bytes],
    runner: subprocess.Popen[bytes],
    runs_file: Path,
) -> None:
    """With the `other` runner killed, new `hold` tasks complete, all run by `runner`."""
    from workhorse import TaskStatus
    from workhorse.domain.task import python_payload

    other.kill()
    other.wait()
    more = app.client.queue_many(
        "hold", [python_payload([i], {}) for i in range(10, 12)]
    )
    wait_for(
        lambda: all(app.get_task(t).status == TaskStatus.COMPLETE for t in more),
        60,
        "the runner to run new tasks",
    )
    assert {p for k, t, p in runs(runs_file) if t in more and k == "end"} == {
        runner.pid
    }
