"""Schedule rules: due times (interval, cron, zones, DST), validation, decisions."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from workhorse.domain.schedule import (
    IRON_MIN_RUN_EVERY,
    MAX_COUNTED_SKIPS,
    CatchUp,
    Overlap,
    ScheduleStatus,
    Timing,
    check_cron,
    check_run_times,
    count_due_between,
    first_run_at,
    last_due_at_or_before,
    next_run_at,
    overlap_blocks,
    plan_tick,
    remaining_runs,
    resume_at,
    status_after_change,
    to_epoch,
    validate_timing,
    zone,
)
from workhorse.errors import InvalidInput

BERLIN = ZoneInfo("Europe/Berlin")
T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def berlin(*parts: int, fold: int = 0) -> float:
    return datetime(*parts, tzinfo=BERLIN, fold=fold).timestamp()  # type: ignore[misc]


def utc(*parts: int) -> float:
    return datetime(*parts, tzinfo=UTC).timestamp()  # type: ignore[misc]


def walk(timing: Timing, n: int, after: float | None = None) -> list[float]:
    """The next n due times after `after` (None: from the first)."""
    out: list[float] = []
    due = after
    for _ in range(n):
        due = next_run_at(timing, due)
        if due is None:
            break
        out.append(due)
    return out


def local(instants: list[float]) -> list[str]:
    return [
        datetime.fromtimestamp(t, BERLIN).strftime("%m-%d %H:%M %Z") for t in instants
    ]


# -- run_every ----------------------------------------------------------------------


def test_interval_due_times_are_start_plus_multiples() -> None:
    t = Timing(start_at=T0, run_every=60)
    assert walk(t, 4) == [T0, T0 + 60, T0 + 120, T0 + 180]


def test_next_run_is_strictly_after_the_given_time() -> None:
    t = Timing(start_at=T0, run_every=60)
    assert next_run_at(t, T0) == T0 + 60
    assert next_run_at(t, T0 + 59.999) == T0 + 60
    assert next_run_at(t, T0 + 60) == T0 + 120


def test_next_run_before_the_start_is_the_start() -> None:
    t = Timing(start_at=T0, run_every=60)
    assert next_run_at(t, T0 - 1000) == T0


def test_interval_with_fractional_period_never_repeats_or_goes_back() -> None:
    t = Timing(start_at=T0 + 0.1, run_every=0.3)
    dues = walk(t, 1000)
    assert all(b > a for a, b in itertools.pairwise(dues))
    assert dues[-1] == pytest.approx(T0 + 0.1 + 999 * 0.3)


def test_interval_ignores_dst_it_is_a_fixed_number_of_seconds() -> None:
    start = berlin(2026, 3, 29, 1, 0)
    t = Timing(start_at=start, run_every=3600, timezone="Europe/Berlin")
    assert walk(t, 3) == [start, start + 3600, start + 7200]
    assert local(walk(t, 3)) == [
        "03-29 01:00 CET",
        "03-29 03:00 CEST",
        "03-29 04:00 CEST",
    ]


def test_end_at_is_exclusive() -> None:
    t = Timing(start_at=T0, end_at=T0 + 180, run_every=60)
    assert walk(t, 10) == [T0, T0 + 60, T0 + 120]


def test_one_off_schedule_has_one_due_time() -> None:
    t = Timing(start_at=T0)
    assert first_run_at(t) == T0
    assert next_run_at(t, None) == T0
    assert next_run_at(t, T0 - 5) == T0
    assert next_run_at(t, T0) is None


def test_random_intervals_agree_with_last_due_at_or_before() -> None:
    rng = random.Random(7)
    for _ in range(300):
        every = rng.choice([1, 7.5, 60, 3600, 86400])
        start = T0 + rng.random() * 100
        t = Timing(start_at=start, run_every=every)
        moment = start + rng.random() * every * 50
        last = last_due_at_or_before(t, moment)
        nxt = next_run_at(t, moment)
        assert last is not None
        assert nxt is not None
        assert last <= moment < nxt
        assert next_run_at(t, last) == pytest.approx(nxt)


# -- cron ---------------------------------------------------------------------------


def test_cron_in_utc() -> None:
    t = Timing(start_at=utc(2027, 1, 1, 0, 2), cron="*/5 * * * *")
    assert walk(t, 3) == [
        utc(2027, 1, 1, 0, 5),
        utc(2027, 1, 1, 0, 10),
        utc(2027, 1, 1, 0, 15),
    ]


def test_cron_first_run_may_be_the_start_itself() -> None:
    t = Timing(start_at=utc(2027, 1, 1, 9, 0), cron="0 9 * * *")
    assert first_run_at(t) == utc(2027, 1, 1, 9, 0)


def test_cron_start_a_moment_after_a_match_waits_for_the_next() -> None:
    t = Timing(start_at=utc(2027, 1, 1, 9, 0) + 0.0005, cron="0 9 * * *")
    assert first_run_at(t) == utc(2027, 1, 2, 9, 0)


def test_cron_fractional_after_just_before_a_match_finds_it() -> None:
    t = Timing(start_at=T0 - 86400, cron="* * * * *")
    match = utc(2027, 1, 15, 8, 1)
    assert next_run_at(t, match - 1e-6) == match
    assert next_run_at(t, match) == match + 60


def test_cron_reads_wall_clock_in_its_time_zone() -> None:
    t = Timing(
        start_at=utc(2027, 1, 1), cron="0 9 * * mon-fri", timezone="Europe/Berlin"
    )
    first = first_run_at(t)
    assert first == berlin(2027, 1, 1, 9, 0)  # a Friday, 08:00 UTC
    assert local(walk(t, 2, first)) == ["01-04 09:00 CET", "01-05 09:00 CET"]


def test_cron_in_summer_keeps_local_time() -> None:
    t = Timing(start_at=berlin(2026, 3, 27), cron="0 9 * * *", timezone="Europe/Berlin")
    dues = walk(t, 4)
    assert local(dues) == [
        "03-27 09:00 CET",
        "03-28 09:00 CET",
        "03-29 09:00 CEST",
        "03-30 09:00 CEST",
    ]
    assert dues[2] - dues[1] == 23 * 3600  # the short day


def test_cron_end_at_stops_it() -> None:
    t = Timing(
        start_at=utc(2027, 1, 1), end_at=utc(2027, 1, 1, 0, 12), cron="*/5 * * * *"
    )
    assert walk(t, 10) == [
        utc(2027, 1, 1, 0, 0),
        utc(2027, 1, 1, 0, 5),
        utc(2027, 1, 1, 0, 10),
    ]


def test_cron_that_never_matches_has_no_due_time() -> None:
    assert first_run_at(Timing(start_at=T0, cron="0 0 31 2 *")) is None


# -- DST: Europe/Berlin springs forward on 2026-03-29 at 02:00 and falls back on
# -- 2026-10-25 at 03:00.


def test_spring_forward_a_missing_wall_time_runs_when_the_clocks_jump() -> None:
    t = Timing(
        start_at=berlin(2026, 3, 28), cron="30 2 * * *", timezone="Europe/Berlin"
    )
    assert local(walk(t, 3)) == [
        "03-28 02:30 CET",
        "03-29 03:00 CEST",
        "03-30 02:30 CEST",
    ]


def test_spring_forward_every_half_hour_skips_the_missing_hour_without_doubles() -> (
    None
):
    t = Timing(
        start_at=berlin(2026, 3, 29, 1, 0),
        cron="*/30 * * * *",
        timezone="Europe/Berlin",
    )
    dues = walk(t, 5)
    assert local(dues) == [
        "03-29 01:00 CET",
        "03-29 01:30 CET",
        "03-29 03:00 CEST",
        "03-29 03:30 CEST",
        "03-29 04:00 CEST",
    ]
    assert len(set(dues)) == len(dues)


def test_spring_forward_hourly_runs_once_at_the_jump() -> None:
    t = Timing(
        start_at=berlin(2026, 3, 29, 0, 0), cron="0 * * * *", timezone="Europe/Berlin"
    )
    assert local(walk(t, 4)) == [
        "03-29 00:00 CET",
        "03-29 01:00 CET",
        "03-29 03:00 CEST",
        "03-29 04:00 CEST",
    ]


def test_fall_back_a_repeated_wall_time_runs_once() -> None:
    t = Timing(
        start_at=berlin(2026, 10, 24), cron="30 2 * * *", timezone="Europe/Berlin"
    )
    dues = walk(t, 3)
    assert local(dues) == ["10-24 02:30 CEST", "10-25 02:30 CEST", "10-26 02:30 CET"]
    assert dues[2] - dues[1] == 25 * 3600  # the long day


def test_fall_back_every_half_hour_runs_each_wall_time_once() -> None:
    t = Timing(
        start_at=berlin(2026, 10, 25, 1, 0),
        cron="*/30 * * * *",
        timezone="Europe/Berlin",
    )
    assert local(walk(t, 6)) == [
        "10-25 01:00 CEST",
        "10-25 01:30 CEST",
        "10-25 02:00 CEST",
        "10-25 02:30 CEST",
        "10-25 03:00 CET",
        "10-25 03:30 CET",
    ]


def test_fall_back_next_run_from_inside_the_repeated_hour() -> None:
    t = Timing(
        start_at=berlin(2026, 10, 25), cron="*/30 * * * *", timezone="Europe/Berlin"
    )
    second_215 = berlin(2026, 10, 25, 2, 15, fold=1)
    assert local([next_run_at(t, second_215) or 0]) == ["10-25 03:00 CET"]


def test_fall_back_last_due_from_inside_the_repeated_hour() -> None:
    t = Timing(
        start_at=berlin(2026, 10, 25), cron="*/30 * * * *", timezone="Europe/Berlin"
    )
    second_215 = berlin(2026, 10, 25, 2, 15, fold=1)
    assert last_due_at_or_before(t, second_215) == berlin(2026, 10, 25, 2, 30)
    first_245 = berlin(2026, 10, 25, 2, 45)
    assert last_due_at_or_before(t, first_245) == berlin(2026, 10, 25, 2, 30)


def test_spring_forward_last_due_at_the_jump() -> None:
    t = Timing(
        start_at=berlin(2026, 3, 29), cron="30 2 * * *", timezone="Europe/Berlin"
    )
    jump = berlin(2026, 3, 29, 3, 0)
    assert last_due_at_or_before(t, jump) == jump
    assert last_due_at_or_before(t, jump - 1) is None


def test_count_due_between_across_fall_back() -> None:
    t = Timing(
        start_at=berlin(2026, 10, 25), cron="*/30 * * * *", timezone="Europe/Berlin"
    )
    # 01:00 01:30 02:00 02:30 (CEST) 03:00 03:30 04:00 (CET): the repeated hour once
    assert (
        count_due_between(t, berlin(2026, 10, 25, 1, 0), berlin(2026, 10, 25, 4, 0))
        == 7
    )


# -- other helpers ------------------------------------------------------------------


def test_last_due_before_the_start_is_none() -> None:
    assert last_due_at_or_before(Timing(start_at=T0, run_every=60), T0 - 1) is None


def test_last_due_of_a_one_off_is_its_start() -> None:
    assert last_due_at_or_before(Timing(start_at=T0), T0 + 1e6) == T0


def test_last_due_never_reaches_end_at() -> None:
    t = Timing(start_at=T0, end_at=T0 + 120, run_every=60)
    assert last_due_at_or_before(t, T0 + 500) == T0 + 60
    c = Timing(
        start_at=utc(2027, 1, 1), end_at=utc(2027, 1, 1, 0, 10), cron="*/5 * * * *"
    )
    assert last_due_at_or_before(c, utc(2027, 1, 2)) == utc(2027, 1, 1, 0, 5)


def test_last_due_of_a_cron_before_its_first_match_is_none() -> None:
    t = Timing(start_at=utc(2027, 1, 1, 0, 1), cron="0 0 * * *")
    assert last_due_at_or_before(t, utc(2027, 1, 1, 12)) is None


def test_count_due_between() -> None:
    t = Timing(start_at=T0, run_every=60)
    assert count_due_between(t, T0, T0 + 600) == 11
    assert count_due_between(t, T0 + 1, T0 + 59) == 0
    assert count_due_between(t, T0 + 10, T0) == 0
    assert count_due_between(Timing(start_at=T0), T0 - 1, T0 + 1) == 1
    assert count_due_between(Timing(start_at=T0), T0 + 1, T0 + 2) == 0


def test_count_due_between_counts_from_first_even_off_the_minute() -> None:
    t = Timing(start_at=T0, cron="* * * * *")
    match = utc(2027, 1, 15, 8, 1)
    assert count_due_between(t, match + 0.5, match + 120) == 2


def test_a_cron_that_never_matches_counts_and_finds_nothing() -> None:
    t = Timing(start_at=T0, cron="0 0 31 2 *")
    assert count_due_between(t, T0, T0 + 1e7) == 0
    assert last_due_at_or_before(t, T0 + 1e7) is None
    assert next_run_at(t, T0) is None


def test_count_due_between_is_capped() -> None:
    t = Timing(start_at=T0, run_every=1)
    assert count_due_between(t, T0, T0 + 10 * MAX_COUNTED_SKIPS) == MAX_COUNTED_SKIPS
    c = Timing(start_at=T0, cron="* * * * *")
    assert (
        count_due_between(c, T0, T0 + 60 * (MAX_COUNTED_SKIPS + 10))
        == MAX_COUNTED_SKIPS
    )


# -- validation ---------------------------------------------------------------------


def test_validate_normalises() -> None:
    t = validate_timing(Timing(start_at=int(T0), run_every=60, cron=None))
    assert t == Timing(start_at=T0, run_every=60.0)
    c = validate_timing(Timing(start_at=T0, cron="  */5  *  * * * "))
    assert c.cron == "*/5 * * * *"


@pytest.mark.parametrize(
    ("timing", "minimum", "message"),
    [
        (Timing(start_at=T0, run_every=59), IRON_MIN_RUN_EVERY, "at least 60 seconds"),
        (Timing(start_at=T0, run_every=0.5), 1.0, "at least 1 seconds"),
        (Timing(start_at=T0, run_every=float("nan")), 1.0, "number of seconds"),
        (Timing(start_at=T0, run_every="60"), 1.0, "number of seconds"),  # type: ignore[arg-type]
        (Timing(start_at=T0, run_every=True), 1.0, "number of seconds"),  # type: ignore[arg-type]
        (Timing(start_at=T0, run_every=60, cron="* * * * *"), 1.0, "not both"),
        (Timing(start_at=T0, end_at=T0, run_every=60), 1.0, "end_at must be after"),
        (Timing(start_at=T0, end_at=T0 - 5, run_every=60), 1.0, "end_at must be after"),
        (Timing(start_at=T0, cron="61 * * * *"), 1.0, "invalid cron"),
        (Timing(start_at=T0, cron="* * * *"), 1.0, "five fields"),
        (Timing(start_at=T0, cron="* * * * * *"), 1.0, "five fields"),
        (Timing(start_at=T0, cron="H * * * *"), 1.0, "invalid cron"),
        (Timing(start_at=T0, cron="  "), 1.0, "non-empty"),
        (Timing(start_at=T0, cron="0 0 31 2 *"), 1.0, "never run"),
        (
            Timing(start_at=T0, cron="0 9 * * *", timezone="Mars/Olympus"),
            1.0,
            "time zone",
        ),
        (Timing(start_at=T0, timezone="../etc/passwd"), 1.0, "time zone"),
        (Timing(start_at=T0, timezone=""), 1.0, "time zone"),
        (Timing(start_at=float("inf")), 1.0, "start_at must be a time"),
        (Timing(start_at=T0, end_at="x"), 1.0, "end_at must be a time"),  # type: ignore[arg-type]
        (
            Timing(
                start_at=utc(2027, 1, 1, 0, 1),
                end_at=utc(2027, 1, 1, 0, 2),
                cron="0 * * * *",
            ),
            1.0,
            "never run",
        ),
    ],
)
def test_validate_refuses(timing: Timing, minimum: float, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        validate_timing(timing, min_run_every=minimum)


def test_minimum_run_every_is_a_parameter() -> None:
    validate_timing(Timing(start_at=T0, run_every=0.05), min_run_every=0.01)
    validate_timing(Timing(start_at=T0, run_every=60), min_run_every=IRON_MIN_RUN_EVERY)


def test_check_cron_accepts_aliases_and_names() -> None:
    assert check_cron("@hourly") == "@hourly"
    assert check_cron("0 9 * * MON-FRI") == "0 9 * * MON-FRI"
    with pytest.raises(InvalidInput):
        check_cron(5)  # type: ignore[arg-type]


def test_zone_accepts_iana_names() -> None:
    assert zone("Europe/Berlin") == BERLIN
    assert zone("UTC") == ZoneInfo("UTC")


@pytest.mark.parametrize(
    ("value", "stored"), [(None, None), (0, None), (1, 1), (500, 500)]
)
def test_run_times(value: int | None, stored: int | None) -> None:
    assert check_run_times(value) == stored


@pytest.mark.parametrize("value", [-1, 2.5, True, 10**10])
def test_run_times_refused(value: object) -> None:
    with pytest.raises(InvalidInput, match="run_times"):
        check_run_times(value)  # type: ignore[arg-type]


# -- times at the edge --------------------------------------------------------------


def test_to_epoch_accepts_aware_times() -> None:
    aware = datetime(2030, 1, 1, 9, tzinfo=timezone(timedelta(hours=1)))
    assert to_epoch(aware, "start_at") == utc(2030, 1, 1, 8)
    assert to_epoch("2030-01-01T08:00:00Z", "start_at") == utc(2030, 1, 1, 8)
    assert to_epoch("2030-01-01T09:00:00+01:00", "start_at") == utc(2030, 1, 1, 8)
    assert to_epoch(T0, "start_at") == T0
    assert to_epoch(int(T0), "start_at") == T0
    assert to_epoch(None, "start_at") is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (datetime(2030, 1, 1, 9), "no time zone"),  # noqa: DTZ001 - the point of the test
        ("2030-01-01T09:00:00", "no time zone"),
        ("next tuesday", "not an ISO 8601"),
        (True, "must be a time"),
        (float("nan"), "finite"),
        ([2030], "must be a datetime"),
    ],
)
def test_to_epoch_refuses(value: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        to_epoch(value, "start_at")  # type: ignore[arg-type]


# -- decisions ----------------------------------------------------------------------


def tick(timing: Timing, pending: float, now: float, **kw: object):  # type: ignore[no-untyped-def]
    args: dict[str, object] = {
        "run_count": 0,
        "run_times": None,
        "catch_up": CatchUp.ONCE,
        "overlap": Overlap.ALLOW,
    }
    args.update(kw)
    return plan_tick(timing, pending=pending, now=now, **args)  # type: ignore[arg-type]


EVERY_MINUTE = Timing(start_at=T0, run_every=60)


def test_on_time_due_queues_one_task_and_moves_on() -> None:
    d = tick(EVERY_MINUTE, T0 + 60, T0 + 60.2)
    assert (d.due_at, d.queue, d.skipped, d.next_start, d.status, d.reason) == (
        T0 + 60,
        True,
        0,
        T0 + 120,
        ScheduleStatus.SCHEDULED,
        None,
    )


def test_outage_catch_up_once_queues_one_task_for_the_latest_due_time() -> None:
    d = tick(EVERY_MINUTE, T0 + 60, T0 + 600 + 30)
    assert d.queue
    assert d.due_at == T0 + 600
    assert d.skipped == 9  # 60..540 passed over; 600 runs
    assert d.next_start == T0 + 660


def test_outage_catch_up_skip_queues_nothing_for_the_missed_due_times() -> None:
    d = tick(EVERY_MINUTE, T0 + 60, T0 + 600 + 5, catch_up=CatchUp.SKIP, grace=60)
    assert not d.queue
    assert d.reason == "missed"
    assert d.skipped == 10
    assert d.next_start == T0 + 660


def test_catch_up_skip_runs_a_due_time_reached_late_within_grace() -> None:
    t = Timing(start_at=T0, run_every=3600)
    d = tick(t, T0 + 3600, T0 + 3600 + 30, catch_up=CatchUp.SKIP, grace=60)
    assert (d.queue, d.skipped) == (True, 0)


def test_catch_up_skip_drops_a_due_time_reached_past_grace() -> None:
    t = Timing(start_at=T0, run_every=3600)
    d = tick(t, T0 + 3600, T0 + 3600 + 61, catch_up=CatchUp.SKIP, grace=60)
    assert (d.queue, d.reason, d.skipped, d.next_start) == (
        False,
        "missed",
        1,
        T0 + 7200,
    )


def test_overlap_skip_skips_while_a_task_is_active() -> None:
    d = tick(EVERY_MINUTE, T0 + 60, T0 + 60, overlap=Overlap.SKIP, active=1)
    assert (d.queue, d.reason, d.skipped, d.next_start) == (
        False,
        "overlap",
        1,
        T0 + 120,
    )


def test_overlap_skip_runs_when_nothing_is_active() -> None:
    assert tick(EVERY_MINUTE, T0 + 60, T0 + 60, overlap=Overlap.SKIP, active=0).queue


def test_overlap_allow_runs_while_tasks_are_active() -> None:
    assert tick(EVERY_MINUTE, T0 + 60, T0 + 60, overlap=Overlap.ALLOW, active=5).queue


def test_max_concurrency_skips_at_the_cap() -> None:
    assert tick(EVERY_MINUTE, T0, T0, max_concurrency=2, active=1).queue
    assert not tick(EVERY_MINUTE, T0, T0, max_concurrency=2, active=2).queue


def test_overlap_blocks() -> None:
    assert overlap_blocks(Overlap.SKIP, None, 1)
    assert not overlap_blocks(Overlap.SKIP, None, 0)
    assert not overlap_blocks(Overlap.ALLOW, None, 100)
    assert overlap_blocks(Overlap.ALLOW, 3, 3)


def test_run_times_completes_the_schedule() -> None:
    d = tick(EVERY_MINUTE, T0 + 120, T0 + 120, run_count=2, run_times=3)
    assert d.queue
    assert (d.next_start, d.status) == (None, ScheduleStatus.COMPLETE)


def test_a_skipped_due_time_does_not_use_up_run_times() -> None:
    d = tick(
        EVERY_MINUTE,
        T0 + 120,
        T0 + 120,
        run_count=2,
        run_times=3,
        overlap=Overlap.SKIP,
        active=1,
    )
    assert not d.queue
    assert (d.next_start, d.status) == (T0 + 180, ScheduleStatus.SCHEDULED)


def test_end_at_completes_the_schedule() -> None:
    t = Timing(start_at=T0, end_at=T0 + 120, run_every=60)
    d = tick(t, T0 + 60, T0 + 60)
    assert d.queue
    assert (d.next_start, d.status) == (None, ScheduleStatus.COMPLETE)


def test_outage_past_end_at_runs_the_last_due_time_once() -> None:
    t = Timing(start_at=T0, end_at=T0 + 300, run_every=60)
    d = tick(t, T0 + 60, T0 + 5000)
    assert d.queue
    assert d.due_at == T0 + 240
    assert (d.skipped, d.status) == (3, ScheduleStatus.COMPLETE)


def test_one_off_completes_after_its_run() -> None:
    d = tick(Timing(start_at=T0), T0, T0 + 1)
    assert (d.queue, d.due_at, d.next_start, d.status) == (
        True,
        T0,
        None,
        ScheduleStatus.COMPLETE,
    )


def test_unbuildable_task_is_an_error_not_a_skip_nor_a_run() -> None:
    d = tick(EVERY_MINUTE, T0 + 60, T0 + 60, runnable=False, run_count=0, run_times=1)
    assert (d.queue, d.reason, d.skipped) == (False, "error", 0)
    assert (d.next_start, d.status) == (T0 + 120, ScheduleStatus.SCHEDULED)


def test_cron_outage_across_dst_runs_once() -> None:
    t = Timing(start_at=berlin(2026, 3, 28), cron="0 * * * *", timezone="Europe/Berlin")
    d = tick(t, berlin(2026, 3, 29, 0, 0), berlin(2026, 3, 29, 5, 10))
    assert d.queue
    assert local([d.due_at]) == ["03-29 05:00 CEST"]
    assert d.skipped == 4  # 00:00 01:00 03:00 04:00
    assert local([d.next_start or 0]) == ["03-29 06:00 CEST"]


def test_pending_later_than_the_latest_due_time_is_decided_itself() -> None:
    # a redefined schedule may wait for a due time the formula would not produce
    d = tick(EVERY_MINUTE, T0 + 90, T0 + 100)
    assert d.due_at == T0 + 90
    assert d.skipped == 0


# -- pause, resume and changes ------------------------------------------------------


def test_resume_picks_up_after_now_without_catching_up() -> None:
    assert resume_at(EVERY_MINUTE, T0 + 3600 + 1) == T0 + 3660
    assert resume_at(Timing(start_at=T0 + 500, run_every=60), T0) == T0 + 500
    assert resume_at(Timing(start_at=T0), T0 + 1) is None


def test_status_after_change() -> None:
    s = ScheduleStatus
    assert status_after_change(s.PAUSED, None, None, 0) == s.PAUSED
    assert status_after_change(s.SCHEDULED, T0, None, 0) == s.SCHEDULED
    assert status_after_change(s.SCHEDULED, None, None, 0) == s.COMPLETE
    assert status_after_change(s.SCHEDULED, T0, 3, 3) == s.COMPLETE


def test_remaining_runs() -> None:
    assert remaining_runs(None, 10) is None
    assert remaining_runs(5, 3) == 2
    assert remaining_runs(5, 9) == 0


def test_final_statuses() -> None:
    assert [s for s in ScheduleStatus if s.is_final] == [
        ScheduleStatus.COMPLETE,
        ScheduleStatus.CANCELLED,
    ]
