"""ScheduleStore and ScheduleClient conformance, the same on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.contract.test_tasks import client_with_codes
from workhorse.client import Client
from workhorse.domain.schedule import (
    IRON_MIN_RUN_EVERY,
    CatchUp,
    Overlap,
    ScheduleStatus,
)
from workhorse.domain.task import TaskOptions
from workhorse.errors import Conflict, InvalidInput, NotFound
from workhorse.schedules import ScheduleClient
from workhorse.storage import Storage

NOW = 1_800_000_000.0


@pytest.fixture
def client(storage: Storage) -> Client:
    return client_with_codes(storage)


@pytest.fixture
def schedules(client: Client) -> ScheduleClient:
    return ScheduleClient(client)


def make(schedules: ScheduleClient, code: str = "work", **fields: Any):  # type: ignore[no-untyped-def]
    fields.setdefault("start_at", NOW)
    fields.setdefault("run_every", 60)
    return schedules.create(code, fields.pop("payload", "{}"), **fields)


# -- creating and reading -----------------------------------------------------------


def test_create_stores_every_field(schedules: ScheduleClient) -> None:
    info = schedules.create(
        "work",
        '{"x": 1}',
        start_at="2027-01-15T08:00:00Z",
        end_at=NOW + 86400,
        run_every=3600,
        run_times=5,
        priority=2,
        timeout=120,
        delay=3,
        cluster="gpu",
        label="Critical Task",
        name="nightly",
        max_concurrency=2,
        overlap="skip",
        catch_up="skip",
    )
    got = schedules.get(info.id)
    assert got == info
    assert (got.code_name, got.payload, got.label, got.name) == (
        "work",
        '{"x": 1}',
        "Critical Task",
        "nightly",
    )
    assert (got.start_at, got.end_at, got.run_every, got.run_times) == (
        NOW,
        NOW + 86400,
        3600.0,
        5,
    )
    assert (
        got.priority,
        got.timeout,
        got.task_delay,
        got.cluster,
        got.max_concurrency,
    ) == (
        2,
        120,
        3.0,
        "gpu",
        2,
    )
    assert (got.overlap, got.catch_up) == (Overlap.SKIP, CatchUp.SKIP)
    assert got.status == ScheduleStatus.SCHEDULED
    assert got.next_start == NOW
    assert (got.run_count, got.skip_count, got.error_count, got.last_run_time) == (
        0,
        0,
        0,
        None,
    )
    assert got.project_id == "default"
    assert got.created_at > 0
    assert got.updated_at >= got.created_at


def test_create_with_cron_and_time_zone(schedules: ScheduleClient) -> None:
    info = schedules.create(
        "work", "", start_at=NOW, cron="0 9 * * *", timezone="Europe/Berlin"
    )
    assert (info.cron, info.timezone, info.run_every) == (
        "0 9 * * *",
        "Europe/Berlin",
        None,
    )
    assert info.next_start is not None
    local = datetime.fromtimestamp(info.next_start, ZoneInfo("Europe/Berlin"))
    assert (local.hour, local.minute) == (9, 0)


def test_start_defaults_to_the_database_clock(
    schedules: ScheduleClient, storage: Storage
) -> None:
    before = storage.run(lambda tx: tx.schedules.db_now())
    info = schedules.create("work", "", run_every=60)
    after = storage.run(lambda tx: tx.schedules.db_now())
    assert before <= info.start_at <= after
    assert info.next_start == info.start_at


def test_run_times_zero_means_unlimited(schedules: ScheduleClient) -> None:
    assert make(schedules, run_times=0).run_times is None


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [
        ({"run_every": 0.5}, InvalidInput, "run_every must be at least"),
        ({"end_at": NOW - 60}, InvalidInput, "end_at must be after start_at"),
        ({"run_every": None, "cron": "every monday"}, InvalidInput, "cron"),
        (
            {"run_every": None, "cron": "0 9 * * *", "timezone": "Nowhere/City"},
            InvalidInput,
            "time zone",
        ),
        ({"start_at": datetime(2030, 1, 1)}, InvalidInput, "no time zone"),  # noqa: DTZ001
        ({"start_at": "2030-01-01T09:00:00"}, InvalidInput, "no time zone"),
        ({"priority": 7}, InvalidInput, "priority"),
        ({"timeout": 0}, InvalidInput, "timeout"),
        ({"overlap": "sometimes"}, InvalidInput, "overlap"),
        ({"catch_up": "all"}, InvalidInput, "catch_up"),
        ({"run_times": -2}, InvalidInput, "run_times"),
        ({"max_concurrency": 0}, InvalidInput, "max_concurrency"),
        ({"name": "x" * 300}, InvalidInput, "name"),
        ({"payload": 5}, InvalidInput, "payload"),
        ({"code": "missing"}, NotFound, "unknown code"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_stored(
    schedules: ScheduleClient,
    fields: dict[str, Any],
    error: type[Exception],
    message: str,
) -> None:
    fields = dict(fields)
    code = fields.pop("code", "work")
    with pytest.raises(error, match=message):
        make(schedules, code, **fields)
    assert schedules.list() == []


def test_iron_minimum_of_sixty_seconds(client: Client) -> None:
    iron = ScheduleClient(client, min_run_every=IRON_MIN_RUN_EVERY)
    with pytest.raises(InvalidInput, match="at least 60"):
        make(iron, run_every=59)
    assert make(iron, run_every=60).run_every == 60


def test_get_unknown_or_other_project_is_not_found(
    schedules: ScheduleClient, client: Client
) -> None:
    info = make(schedules)
    with pytest.raises(NotFound):
        schedules.get("nope")
    other = ScheduleClient(client.with_project("elsewhere"))
    with pytest.raises(NotFound):
        other.get(info.id)


def test_list_is_newest_first_and_filters(schedules: ScheduleClient) -> None:
    a = make(schedules)
    b = make(schedules, "other")
    c = make(schedules)
    schedules.cancel(c.id)
    assert {s.id for s in schedules.list()} == {a.id, b.id, c.id}
    assert [s.id for s in schedules.list(code_name="other")] == [b.id]
    assert [s.id for s in schedules.list(status="cancelled")] == [c.id]
    assert len(schedules.list(limit=2)) == 2
    with pytest.raises(InvalidInput):
        schedules.list(status="sleeping")
    with pytest.raises(InvalidInput):
        schedules.list(limit=0)


# -- changing -----------------------------------------------------------------------


def test_pause_and_resume(schedules: ScheduleClient, storage: Storage) -> None:
    db_now = storage.run(lambda tx: tx.schedules.db_now())
    info = make(schedules, start_at=db_now - 3600 * 10, run_every=3600)
    paused = schedules.pause(info.id)
    assert (paused.status, paused.next_start) == (ScheduleStatus.PAUSED, None)
    assert schedules.pause(info.id).status == ScheduleStatus.PAUSED  # idempotent
    resumed = schedules.resume(info.id)
    assert resumed.status == ScheduleStatus.SCHEDULED
    # the next due time after now, with no catch-up for the paused time
    assert resumed.next_start is not None
    assert db_now < resumed.next_start <= db_now + 3600
    assert (resumed.next_start - info.start_at) % 3600 == 0
    assert schedules.resume(info.id).status == ScheduleStatus.SCHEDULED  # idempotent


def test_cancel_is_final_and_idempotent(schedules: ScheduleClient) -> None:
    info = make(schedules)
    assert schedules.cancel(info.id).status == ScheduleStatus.CANCELLED
    again = schedules.cancel(info.id)
    assert (again.status, again.next_start) == (ScheduleStatus.CANCELLED, None)
    with pytest.raises(Conflict):
        schedules.pause(info.id)
    with pytest.raises(Conflict):
        schedules.resume(info.id)
    with pytest.raises(Conflict):
        schedules.update(info.id, label="x")
    with pytest.raises(NotFound):
        schedules.cancel("nope")


def test_update_of_options_keeps_the_next_due_time(schedules: ScheduleClient) -> None:
    info = make(schedules, start_at=NOW + 500)
    changed = schedules.update(info.id, label="new", payload='{"v": 2}', priority=1)
    assert (changed.label, changed.payload, changed.priority) == ("new", '{"v": 2}', 1)
    assert changed.next_start == NOW + 500
    assert changed.version > info.version


def test_update_of_timing_restarts_from_the_next_due_time(
    schedules: ScheduleClient, storage: Storage
) -> None:
    info = make(schedules, start_at=NOW - 50, run_every=60)
    changed = schedules.update(info.id, run_every=3600)
    db_now = storage.run(lambda tx: tx.schedules.db_now())
    assert changed.run_every == 3600
    assert changed.next_start is not None
    assert changed.next_start > db_now


def test_update_refuses_bad_input_and_changes_nothing(
    schedules: ScheduleClient,
) -> None:
    info = make(schedules)
    with pytest.raises(InvalidInput):
        schedules.update(info.id, run_every=0.1)
    with pytest.raises(InvalidInput, match="unknown schedule fields"):
        schedules.update(info.id, colour="red")
    with pytest.raises(NotFound):
        schedules.update(info.id, code_name="missing")
    assert schedules.get(info.id) == info


def test_update_revives_a_complete_schedule_with_runs_left(
    schedules: ScheduleClient, storage: Storage
) -> None:
    info = make(schedules, start_at=NOW, run_times=1)
    _fire(storage, info.id, NOW, status=ScheduleStatus.COMPLETE, next_start=None)
    assert schedules.get(info.id).status == ScheduleStatus.COMPLETE
    revived = schedules.update(info.id, run_times=3)
    assert revived.status == ScheduleStatus.SCHEDULED
    assert revived.next_start is not None


# -- the scheduler's statements -----------------------------------------------------


def _fire(storage: Storage, schedule_id: str, pending: float, **kw: Any) -> bool:
    args: dict[str, Any] = {
        "next_start": pending + 60,
        "status": ScheduleStatus.SCHEDULED,
        "ran": 1,
        "skipped": 0,
        "errors": 0,
        "msg": None,
        "now_db": pending,
    }
    args.update(kw)
    return storage.run(
        lambda tx: tx.schedules.advance(schedule_id, pending=pending, **args)
    )


def test_claim_due_returns_only_due_live_schedules_earliest_first(
    schedules: ScheduleClient, storage: Storage
) -> None:
    late = make(schedules, start_at=NOW - 10)
    early = make(schedules, start_at=NOW - 20)
    make(schedules, start_at=NOW + 10)
    paused = make(schedules, start_at=NOW - 30)
    schedules.pause(paused.id)
    claimed = storage.run(lambda tx: tx.schedules.claim_due(limit=10, now=NOW))
    assert [c.schedule.id for c in claimed] == [early.id, late.id]
    assert all(c.db_now == NOW for c in claimed)
    limited = storage.run(lambda tx: tx.schedules.claim_due(limit=1, now=NOW))
    assert [c.schedule.id for c in limited] == [early.id]


def test_advance_applies_once_per_due_time(
    schedules: ScheduleClient, storage: Storage
) -> None:
    info = make(schedules, start_at=NOW)
    assert _fire(storage, info.id, NOW)
    assert not _fire(storage, info.id, NOW)  # a second scheduler with the same claim
    got = schedules.get(info.id)
    assert (got.next_start, got.run_count, got.last_run_time) == (NOW + 60, 1, NOW)


def test_advance_loses_to_a_cancel(schedules: ScheduleClient, storage: Storage) -> None:
    info = make(schedules, start_at=NOW)
    schedules.cancel(info.id)
    assert not _fire(storage, info.id, NOW)
    assert schedules.get(info.id).run_count == 0


def test_advance_counts_skips_and_errors(
    schedules: ScheduleClient, storage: Storage
) -> None:
    info = make(schedules, start_at=NOW)
    assert _fire(storage, info.id, NOW, ran=0, skipped=3, errors=1, msg="boom")
    got = schedules.get(info.id)
    assert (got.run_count, got.skip_count, got.error_count, got.msg) == (
        0,
        3,
        1,
        "boom",
    )
    assert got.last_run_time is None


def test_fire_record_is_unique_per_due_time(
    schedules: ScheduleClient, storage: Storage
) -> None:
    info = make(schedules)

    def fire(tx, due: float, task_id: str | None) -> bool:  # type: ignore[no-untyped-def]
        return bool(
            tx.schedules.insert_fire(
                info.id, due, task_id=task_id, outcome="queued", now_db=NOW
            )
        )

    assert storage.run(lambda tx: fire(tx, NOW, "t1"))
    assert not storage.run(lambda tx: fire(tx, NOW, "t2"))
    assert storage.run(lambda tx: fire(tx, NOW + 60, "t3"))
    fires = schedules.fires(info.id)
    assert [(f.due_at, f.task_id) for f in fires] == [(NOW + 60, "t3"), (NOW, "t1")]


def test_sync_key_is_unique_per_project(
    schedules: ScheduleClient, storage: Storage
) -> None:
    info = make(schedules)
    twin = replace(info, id="other-id")
    assert storage.run(lambda tx: tx.schedules.insert(twin)) is None
    assert len(schedules.list()) == 1


def test_count_active_counts_queued_and_running_tasks(
    schedules: ScheduleClient, client: Client, storage: Storage
) -> None:
    info = make(schedules)

    def queue(tx) -> None:  # type: ignore[no-untyped-def]
        tasks = [
            client.build(tx, "work", "{}", TaskOptions(schedule_id=info.id))
            for _ in range(3)
        ]
        tx.tasks.insert_many(tasks, now=NOW)

    storage.run(queue)
    assert storage.run(lambda tx: tx.schedules.count_active(info.id, limit=10)) == 3
    assert storage.run(lambda tx: tx.schedules.count_active(info.id, limit=2)) == 2
    first = schedules.tasks(info.id)[0]
    client.cancel(first.id)
    assert storage.run(lambda tx: tx.schedules.count_active(info.id, limit=10)) == 2
    assert {t.schedule_id for t in schedules.tasks(info.id)} == {info.id}


def test_next_due_is_the_earliest_live_due_time(
    schedules: ScheduleClient, storage: Storage
) -> None:
    assert storage.run(lambda tx: tx.schedules.next_due(now=NOW)) == (None, NOW)
    make(schedules, start_at=NOW + 30)
    b = make(schedules, start_at=NOW + 10)
    assert storage.run(lambda tx: tx.schedules.next_due(now=NOW)) == (NOW + 10, NOW)
    schedules.cancel(b.id)
    assert storage.run(lambda tx: tx.schedules.next_due(now=NOW)) == (NOW + 30, NOW)


def test_db_now_is_the_database_clock_unless_given(storage: Storage) -> None:
    assert storage.run(lambda tx: tx.schedules.db_now(now=NOW)) == NOW
    assert storage.run(lambda tx: tx.schedules.db_now()) > NOW - 10**9


def test_prune_fires_forgets_only_old_records(
    schedules: ScheduleClient, storage: Storage
) -> None:
    info = make(schedules)
    day = 86400.0

    def fire(tx, due: float, at: float) -> None:  # type: ignore[no-untyped-def]
        tx.schedules.insert_fire(
            info.id, due, task_id=None, outcome="skipped", now_db=at
        )

    storage.run(lambda tx: fire(tx, NOW - 3 * day, NOW - 3 * day))
    storage.run(lambda tx: fire(tx, NOW - 2.5 * day, NOW - 2.5 * day))
    storage.run(lambda tx: fire(tx, NOW, NOW))

    def prune(limit: int) -> int:
        return storage.run(
            lambda tx: tx.schedules.prune_fires(retention=2 * day, limit=limit, now=NOW)
        )

    assert prune(1) == 1
    assert prune(10) == 1
    assert prune(10) == 0
    assert [f.due_at for f in schedules.fires(info.id)] == [NOW]
