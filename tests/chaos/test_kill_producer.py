"""kill -9 of a producer queueing one task per call, from one thread or from several
at once (whose calls share commits on SQLite): every task it was told was stored is
there, and runs exactly once (on SQLite through the intake)."""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.chaos.conftest import kill_after_acknowledged, wait_for
from workhorse import App, TaskStatus
from workhorse.settings import Settings

pytestmark = [pytest.mark.chaos, pytest.mark.slow]
ACKNOWLEDGED = 300

PRODUCER = """
import itertools
import sys
import threading
import workhorse
from workhorse.domain.task import python_payload

app = workhorse.App()
numbers = itertools.count()  # next() is atomic under the GIL
out = threading.Lock()

def produce():
    while True:
        i = next(numbers)
        task_id = app.client.queue("work", python_payload([i], {}))
        with out:
            sys.stdout.write(f"{task_id} {i}\\n")
            sys.stdout.flush()

threads = [threading.Thread(target=produce) for _ in range(int(sys.argv[1]))]
for t in threads:
    t.start()
for t in threads:
    t.join()
"""


@pytest.mark.parametrize("threads", [1, 8])
def test_a_killed_producer_loses_no_acknowledged_task(
    settings: Settings,
    database_url: str,
    spawn_runner: Callable[..., subprocess.Popen[bytes]],
    tmp_path: Path,
    threads: int,
) -> None:
    app = App(settings=settings)
    app.client.register_python("work", {})
    acknowledged = {
        task_id: int(n)
        for task_id, n in kill_after_acknowledged(
            PRODUCER, [str(threads)], database_url, ACKNOWLEDGED
        ).items()
    }

    for task_id in acknowledged:
        assert app.client.get(task_id).status == TaskStatus.QUEUED

    stored = sum(n for _, st, n in app.client.counts())
    # At most the calls in flight (one a thread) committed unacknowledged.
    assert len(acknowledged) <= stored <= len(acknowledged) + threads
    spawn_runner()
    spawn_runner()

    def finished() -> int:
        return sum(n for _, st, n in app.client.counts() if st == "complete")

    wait_for(lambda: finished() == stored, 120, "every stored task complete")
    for task_id, n in acknowledged.items():
        task = app.client.get(task_id)
        assert (task.status, task.result) == (TaskStatus.COMPLETE, str(n * 2))
    runs = Counter((tmp_path / "runs.txt").read_text().split())
    assert set(acknowledged) <= set(runs)
    assert all(count == 1 for count in runs.values())
    app.close()
