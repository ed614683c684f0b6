"""Schedulers on the real database clock: several at once, skewed clocks, processes.

These run in real time (a due time every second or two) and wait on the
database state, with a timeout, never on a fixed sleep. They assert what must
hold whatever the timing: every due time fired once, none twice, none skipped.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from workhorse.app import App
from workhorse.client import Client
from workhorse.domain.task import TaskStatus
from workhorse.maintenance.scheduler import Scheduler
from workhorse.schedules import Schedule, ScheduleClient
from workhorse.settings import Settings
from workhorse.storage import Storage, open_storage

pytestmark = pytest.mark.slow

EVERY = 2.0
RUNS = 3
SKEWS = (-300.0, 0.0, 300.0)  # seconds each scheduler's clock is off


class SkewedClock:
    """The wall clock, off by a fixed offset."""

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def now(self) -> float:
        return time.time() + self.offset


def wait_until(check: Callable[[], bool], timeout: float = 60.0) -> None:
    """Poll the database until `check()` holds (the event we wait on)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def create(storage: Storage, n: int = 4) -> tuple[ScheduleClient, list[str]]:
    client = Client(storage)
    client.register_python("work", {})
    schedules = ScheduleClient(client, min_run_every=0.01)
    start = storage.run(lambda tx: tx.schedules.db_now()) + 1.0
    ids = [
        schedules.create("work", "{}", start_at=start + i * 0.25, run_every=EVERY).id
        for i in range(n)
    ]
    return schedules, ids


def all_ran(schedules: ScheduleClient, ids: list[str], runs: int = RUNS) -> bool:
    return all(schedules.get(i).run_count >= runs for i in ids)


def assert_exactly_once(schedules: ScheduleClient, ids: list[str]) -> None:
    for schedule_id in ids:
        info = schedules.get(schedule_id)
        fires = sorted(schedules.fires(schedule_id, limit=1000), key=lambda f: f.due_at)
        dues = [f.due_at for f in fires]
        expected = [info.start_at + k * EVERY for k in range(len(dues))]
        assert dues == pytest.approx(
            expected
        )  # consecutive from the start: none missed
        assert {f.outcome for f in fires} == {"queued"}
        tasks = schedules.tasks(schedule_id, limit=1000)
        assert len(tasks) == len(fires) == info.run_count  # none doubled
        assert len({f.task_id for f in fires}) == len(fires)
        assert info.skip_count == 0


def test_leaders_on_skewed_clocks_fire_each_due_time_once(
    storage: Storage, settings: Settings
) -> None:
    """Three schedulers, all acting as leader, clocks -5 min, 0 and +5 min off."""
    schedules, ids = create(storage)
    stop = threading.Event()
    stores = [open_storage(settings) for _ in SKEWS]
    schedulers = [
        Scheduler(s, clock=SkewedClock(skew))
        for s, skew in zip(stores, SKEWS, strict=True)
    ]

    def lead(
        scheduler: Scheduler,
    ) -> None:  # what the maintenance loop does on a leader
        while not stop.is_set():
            scheduler.run_once()
            stop.wait(0.5)

    loops = [threading.Thread(target=lead, args=(s,)) for s in schedulers]
    for t in loops:
        t.start()
    try:
        wait_until(lambda: all_ran(schedules, ids))
    finally:
        stop.set()
        for t in loops:
            t.join(timeout=10)
        for s in schedulers:
            if s._waker is not None:
                s._waker.join(timeout=10)
        for store in stores:
            store.close()
    assert_exactly_once(schedules, ids)


CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from workhorse.maintenance.scheduler import Scheduler
    from workhorse.settings import Settings
    from workhorse.storage import open_storage

    url, offset, stop = sys.argv[1], float(sys.argv[2]), Path(sys.argv[3])

    class Skewed:
        def now(self):
            return time.time() + offset

    storage = open_storage(Settings(database_url=url))
    scheduler = Scheduler(storage, clock=Skewed())
    while not stop.exists():
        scheduler.run_once()
        time.sleep(0.5)
    """
)


def test_scheduler_processes_fire_each_due_time_once(
    storage: Storage, database_url: str, tmp_path: Path
) -> None:
    """Separate processes, as on several hosts, with skewed clocks."""
    schedules, ids = create(storage)
    stop = tmp_path / "stop"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, database_url, str(skew), str(stop)],
            env=env,
            stderr=subprocess.PIPE,
        )
        for skew in SKEWS
    ]
    try:
        wait_until(lambda: all_ran(schedules, ids))
    finally:
        stop.touch()
        outputs = [c.communicate(timeout=30)[1] for c in children]
    assert [c.returncode for c in children] == [0, 0, 0], outputs
    assert_exactly_once(schedules, ids)


def test_runners_run_tasks_of_a_code_defined_schedule(
    app: App, start_worker: Callable[..., Any]
) -> None:
    """End to end: `@app.task(schedule=...)`, two runners, tasks run and complete."""

    @app.task(name="beat", schedule=Schedule(run_every=1, kwargs={"n": 7}))
    def beat(n: int) -> int:
        return n * 2

    start_worker(app)
    start_worker(app)
    [info] = app.schedules.list()

    def done() -> bool:
        tasks = app.schedules.tasks(info.id)
        return sum(t.status == TaskStatus.COMPLETE for t in tasks) >= 2

    wait_until(done)
    tasks = app.schedules.tasks(info.id)
    complete = [t for t in tasks if t.status == TaskStatus.COMPLETE]
    assert {t.result for t in complete} == {"14"}
    fires = app.schedules.fires(info.id, limit=1000)
    assert len({f.due_at for f in fires}) == len(fires)
    assert len({t.id for t in tasks}) == len(tasks) <= len(fires)
