"""The scheduler on real storage: due times fire once, policies hold, schedules end.

Time is explicit here: a FakeClock gives the `now` that stands in for the
database clock, so no test sleeps or depends on timing.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest

from workhorse.app import App
from workhorse.client import Client
from workhorse.clock import FakeClock
from workhorse.domain.schedule import ScheduleStatus
from workhorse.maintenance.scheduler import Scheduler
from workhorse.schedules import Schedule, ScheduleClient
from workhorse.storage import Storage

START = 1_800_000_000.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def client(storage: Storage) -> Client:
    c = Client(storage)
    c.register_python("work", {"priority": 1, "timeout": 99})
    return c


@pytest.fixture
def schedules(client: Client) -> ScheduleClient:
    return ScheduleClient(client, min_run_every=0.01)


@pytest.fixture
def scheduler(storage: Storage) -> Scheduler:
    return Scheduler(storage)


def make(schedules: ScheduleClient, **fields: Any):  # type: ignore[no-untyped-def]
    fields.setdefault("start_at", START)
    fields.setdefault("run_every", 60)
    return schedules.create("work", fields.pop("payload", '{"args": []}'), **fields)


def tasks_of(schedules: ScheduleClient, schedule_id: str) -> list[Any]:
    return schedules.tasks(schedule_id, limit=1000)


def test_a_due_schedule_queues_one_task(
    schedules: ScheduleClient, scheduler: Scheduler, clock: FakeClock
) -> None:
    info = make(schedules, label="Critical Task", payload='{"args": [1]}')
    assert scheduler.run_once(now=clock.now()) == 1
    [task] = tasks_of(schedules, info.id)
    assert (task.code_name, task.payload, task.label, task.schedule_id) == (
        "work",
        '{"args": [1]}',
        "Critical Task",
        info.id,
    )
    assert (task.priority, task.timeout) == (1, 99)  # the code's defaults
    got = schedules.get(info.id)
    assert (got.run_count, got.last_run_time, got.next_start) == (1, START, START + 60)
    [fire] = schedules.fires(info.id)
    assert (fire.due_at, fire.task_id, fire.outcome) == (START, task.id, "queued")


def test_nothing_fires_before_the_due_time(
    schedules: ScheduleClient, scheduler: Scheduler, clock: FakeClock
) -> None:
    make(schedules, start_at=START + 10)
    assert scheduler.run_once(now=clock.now()) == 0
    clock.advance(9.999)
    assert scheduler.run_once(now=clock.now()) == 0
    clock.advance(0.001)
    assert scheduler.run_once(now=clock.now()) == 1


def test_running_again_at_the_same_time_fires_nothing_more(
    schedules: ScheduleClient, scheduler: Scheduler, clock: FakeClock
) -> None:
    info = make(schedules)
    assert scheduler.run_once(now=clock.now()) == 1
    assert scheduler.run_once(now=clock.now()) == 0
    assert len(tasks_of(schedules, info.id)) == 1


def test_every_due_time_fires_in_turn(
    schedules: ScheduleClient, scheduler: Scheduler, clock: FakeClock
) -> None:
    info = make(schedules, run_every=60)
    for _ in range(5):
        scheduler.run_once(now=clock.now())
        clock.advance(60)
    assert [f.due_at for f in schedules.fires(info.id)] == [
        START + 60 * k for k in range(4, -1, -1)
    ]
    assert schedules.get(info.id).skip_count == 0


def test_task_options_come_from_the_schedule(
    schedules: ScheduleClient, scheduler: Scheduler, clock: FakeClock
) -> None:
    info = make(schedules, priority=2, timeout=30, delay=5, cluster="gpu", label="x")
    scheduler.run_once(now=clock.now())
    [task] = tasks_of(schedules, info.id)
    assert (task.priority, task.timeout, task.cluster, task.label) == (
        2,
        30,
        "gpu",
        "x",
    )
    assert task.run_at == START + 5


def test_run_times_ends_the_schedule(
    schedules: ScheduleClient, scheduler: Scheduler, clock: FakeClock
) -> None:
    info = make(schedules, run_times=3)
    for _ in range(6):
        scheduler.run_once(now=clock.now())
        clock.advance(60)
    got = schedules.get(info.id)
    assert (got.status, got.run_count, got.next_start) == (
        ScheduleStatus.COMPLETE,
        3,
        None,
    )
    assert len(tasks_of(schedules, info.id)) == 3


def test_end_at_ends_the_schedule(
    schedules: ScheduleClient, scheduler: Scheduler, clock: FakeClock
) -> None:
    info = make(schedules, end_at=START + 150)
    for _ in range(6):
        scheduler.run_once(now=clock.now())
        clock.advance(60)
    got = schedules.get(info.id)
    assert (got.status, got.run_count) == (ScheduleStatus.COMPLETE, 3)


def test_a_one_off_schedule_runs_once(
    schedules: ScheduleClient, scheduler: Scheduler, clock: FakeClock
) -> None:
    info = make(schedules, run_every=None)
    for _ in range(3):
        scheduler.run_once(now=clock.now())
        clock.advance(60)
    assert schedules.get(info.id).status == ScheduleStatus.COMPLETE
    assert len(tasks_of(schedules, info.id)) == 1


def test_cancel_stops_it_at_once(
    schedules: ScheduleClient, scheduler: Scheduler, clock: FakeClock
) -> None:
    info = make(schedules)
    scheduler.run_once(now=clock.now())
    schedules.cancel(info.id)
    clock.advance(600)
    assert scheduler.run_once(now=clock.now()) == 0
    assert len(tasks_of(schedules, info.id)) == 1


def test_pause_stops_and_resume_restarts_without_a_burst(
    schedules: ScheduleClient, scheduler: Scheduler, storage: Storage
) -> None:
    now = storage.run(lambda tx: tx.schedules.db_now())
    info = make(schedules, start_at=now + 5, run_every=60)
    schedules.pause(info.id)
    assert scheduler.run_once(now=now + 600) == 0
    resumed = schedules.resume(info.id)
    assert resumed.next_start is not None
    assert scheduler.run_once(now=resumed.next_start) == 1
    assert len(tasks_of(schedules, info.id)) == 1


def test_catch_up_once_after_downtime_queues_a_single_task(
    schedules: ScheduleClient, scheduler: Scheduler, clock: FakeClock
) -> None:
    info = make(schedules, run_every=60)
    scheduler.run_once(now=clock.now())
    clock.advance(3600 + 30)  # an hour without any scheduler
    assert scheduler.run_once(now=clock.now()) == 1
    got = schedules.get(info.id)
    assert (got.run_count, got.skip_count) == (2, 59)
    assert got.next_start == START + 3660
    assert schedules.fires(info.id)[0].due_at == START + 3600


def test_catch_up_skip_after_downtime_queues_nothing(
    schedules: ScheduleClient, scheduler: Scheduler, clock: FakeClock
) -> None:
    info = make(schedules, run_every=60, catch_up="skip")
    scheduler.run_once(now=clock.now())
    clock.advance(3600 + 30)
    assert scheduler.run_once(now=clock.now()) == 0
    got = schedules.get(info.id)
    assert (got.run_count, got.skip_count, got.next_start) == (1, 60, START + 3660)
    clock.advance(30)
    assert scheduler.run_once(now=clock.now()) == 1


def test_overlap_skip_waits_for_the_previous_task(
    schedules: ScheduleClient, scheduler: Scheduler, clock: FakeClock, client: Client
) -> None:
    info = make(schedules, overlap="skip")
    scheduler.run_once(now=clock.now())
    clock.advance(60)
    assert scheduler.run_once(now=clock.now()) == 0  # the first task is still queued
    assert schedules.get(info.id).skip_count == 1
    assert schedules.fires(info.id)[0].outcome == "skipped"
    client.cancel(tasks_of(schedules, info.id)[0].id)
    clock.advance(60)
    assert scheduler.run_once(now=clock.now()) == 1


def test_overlap_allow_queues_regardless(
    schedules: ScheduleClient, scheduler: Scheduler, clock: FakeClock
) -> None:
    info = make(schedules)
    for _ in range(3):
        scheduler.run_once(now=clock.now())
        clock.advance(60)
    assert len(tasks_of(schedules, info.id)) == 3


def test_a_deleted_code_counts_errors_and_the_schedule_goes_on(
    schedules: ScheduleClient, scheduler: Scheduler, clock: FakeClock, client: Client
) -> None:
    info = make(schedules)
    client.delete_code("work")
    client.forget_code("work")
    scheduler.run_once(now=clock.now())
    got = schedules.get(info.id)
    assert (got.error_count, got.run_count, got.status) == (
        1,
        0,
        ScheduleStatus.SCHEDULED,
    )
    assert got.msg is not None
    assert "unknown code" in got.msg
    assert got.next_start == START + 60
    assert schedules.fires(info.id)[0].outcome == "error"
    assert tasks_of(schedules, info.id) == []


def test_many_schedules_fire_in_batches(
    storage: Storage, schedules: ScheduleClient
) -> None:
    for _ in range(25):
        make(schedules)
    small = Scheduler(storage, batch=10)
    assert small.run_once(now=START) == 25
    assert small.run_once(now=START) == 0


def test_cron_schedule_fires_at_its_wall_clock_time(
    schedules: ScheduleClient, scheduler: Scheduler
) -> None:
    info = make(schedules, run_every=None, cron="0 9 * * *", timezone="Europe/Berlin")
    due = info.next_start
    assert due is not None
    assert scheduler.run_once(now=due - 0.001) == 0
    assert scheduler.run_once(now=due) == 1
    assert schedules.get(info.id).next_start == due + 86400


# -- several schedulers at once -----------------------------------------------------


def test_concurrent_schedulers_fire_each_due_time_exactly_once(
    storage: Storage, schedules: ScheduleClient, settings: Any
) -> None:
    """Four schedulers (as if four leaders) run each tick at the same instant."""
    from workhorse.storage import open_storage

    infos = [make(schedules, run_every=10, start_at=START + i) for i in range(12)]
    instances = 4
    ticks = [START + 2.5 * k for k in range(40)]
    barrier = threading.Barrier(instances)
    storages = [open_storage(settings) for _ in range(instances)]
    errors: list[BaseException] = []

    def run(store: Storage) -> None:
        scheduler = Scheduler(store)
        try:
            for now in ticks:
                barrier.wait(timeout=30)
                scheduler.run_once(now=now)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(s,)) for s in storages]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for s in storages:
        s.close()
    assert not errors
    last = ticks[-1]
    for info in infos:
        expected = [
            info.start_at + 10 * k for k in range(int((last - info.start_at) // 10) + 1)
        ]
        fires = sorted(f.due_at for f in schedules.fires(info.id, limit=1000))
        tasks = tasks_of(schedules, info.id)
        assert fires == expected  # none missed
        assert len(tasks) == len(expected)  # none doubled
        assert Counter(f.outcome for f in schedules.fires(info.id, limit=1000)) == {
            "queued": len(expected)
        }
        assert schedules.get(info.id).skip_count == 0


def test_a_stale_scheduler_cannot_fire_a_due_time_again(
    storage: Storage, schedules: ScheduleClient, scheduler: Scheduler
) -> None:
    """Two leaders at once: one claimed before the other committed (simulated)."""
    info = make(schedules)
    stale_claim = storage.run(lambda tx: tx.schedules.claim_due(limit=10, now=START))
    assert scheduler.run_once(now=START) == 1
    # the stale leader now acts on what it read before
    fired = storage.run(lambda tx: scheduler._fire(tx, stale_claim[0], START))
    assert fired == 0
    assert len(tasks_of(schedules, info.id)) == 1


def test_the_fire_record_blocks_a_due_time_even_if_the_schedule_is_rewound(
    storage: Storage, schedules: ScheduleClient, scheduler: Scheduler
) -> None:
    """Belt and braces: the unique fire record holds even when the advance applies."""
    info = make(schedules)
    assert scheduler.run_once(now=START) == 1
    storage.run(
        lambda tx: tx.schedules.advance(
            info.id,
            pending=START + 60,
            next_start=START,  # a bug or an operator puts the schedule back
            status=ScheduleStatus.SCHEDULED,
            ran=0,
            skipped=0,
            errors=0,
            msg=None,
            now_db=START,
        )
    )
    assert scheduler.run_once(now=START) == 0
    assert len(tasks_of(schedules, info.id)) == 1


# -- schedules defined in code ------------------------------------------------------


def test_code_defined_schedules_are_synced_once_however_many_runners_start(
    settings: Any,
) -> None:
    apps = [App(settings=settings) for _ in range(3)]
    try:
        for app in apps:

            @app.task(name="tick", schedule="*/5 * * * *")
            def tick() -> None: ...

            @app.task(
                name="report", schedule=Schedule(run_every=3600, kwargs={"day": 1})
            )
            def report(day: int) -> int:
                return day

        for app in apps:
            app.register_all()
        found = apps[0].schedules.list()
        assert sorted(s.code_name for s in found) == ["report", "tick"]
        report_schedule = next(s for s in found if s.code_name == "report")
        assert report_schedule.payload == '{"args":[],"kwargs":{"day":1}}'
        assert report_schedule.sync_key == "task:report"
    finally:
        for app in apps:
            app.close()


def test_a_changed_code_definition_redefines_the_schedule(settings: Any) -> None:
    first = App(settings=settings)
    first.task(name="tick", schedule=300)(lambda: None)
    first.register_all()
    [before] = first.schedules.list()
    first.schedules.pause(before.id)
    first.register_all()  # unchanged: the operator's pause stands
    assert first.schedules.get(before.id).status == ScheduleStatus.PAUSED
    first.close()

    second = App(settings=settings)
    second.task(name="tick", schedule={"run_every": 600, "label": "slower"})(
        lambda: None
    )
    second.register_all()
    [after] = second.schedules.list()
    assert after.id == before.id
    assert (after.run_every, after.label, after.status) == (
        600,
        "slower",
        ScheduleStatus.PAUSED,
    )
    second.close()


def test_a_bad_code_definition_fails_at_decoration() -> None:
    app = App(database_url="sqlite:////nonexistent/never-opened.db")
    from workhorse.errors import InvalidInput

    with pytest.raises(InvalidInput, match="cron"):
        app.task(name="x", schedule="every day")(lambda: None)
    with pytest.raises(InvalidInput, match="unknown schedule fields"):
        app.task(name="y", schedule={"evry": 5})(lambda: None)


def test_app_schedule_creates_one(app: App) -> None:
    app.task(name="work")(lambda: None)
    info = app.schedule("work", {"args": [2]}, run_every=3600, label="L")
    assert (info.code_name, info.payload, info.label) == ("work", '{"args":[2]}', "L")
    assert app.schedules.get(info.id) == info
