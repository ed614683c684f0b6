"""The public `Schedule` definition: coercion, early validation, fingerprints."""

from __future__ import annotations

import pytest

from workhorse.errors import InvalidInput
from workhorse.schedules import Schedule


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("*/5 * * * *", Schedule(cron="*/5 * * * *")),
        (300, Schedule(run_every=300.0)),
        (1.5, Schedule(run_every=1.5)),
        ({"run_every": 60, "label": "x"}, Schedule(run_every=60, label="x")),
        (Schedule(cron="@daily"), Schedule(cron="@daily")),
    ],
)
def test_coerce(value: object, expected: Schedule) -> None:
    assert Schedule.coerce(value) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "cron string, seconds or a Schedule"),
        ([60], "cron string, seconds or a Schedule"),
        ({"every": 60}, "unknown schedule fields: every"),
    ],
)
def test_coerce_refuses(value: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        Schedule.coerce(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        (Schedule(cron="every day"), "cron"),
        (Schedule(run_every=0.2), "at least 1 seconds"),
        (Schedule(cron="0 9 * * *", timezone="Atlantis/Capital"), "time zone"),
        (Schedule(run_every=60, start_at="2030-01-01T09:00:00"), "no time zone"),
        (Schedule(run_every=60, overlap="never"), "overlap"),
        (Schedule(run_every=60, catch_up="burst"), "catch_up"),
        (Schedule(run_every=60, run_times=-1), "run_times"),
    ],
)
def test_validate_refuses_at_definition_time(schedule: Schedule, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        schedule.validate()


def test_validate_returns_the_schedule() -> None:
    s = Schedule(cron="0 6 * * *", timezone="Europe/Berlin")
    assert s.validate() is s


def test_python_payload_from_args_and_kwargs() -> None:
    s = Schedule(run_every=60, args=(1, "a"), kwargs={"k": True})
    assert s.python_payload() == '{"args":[1,"a"],"kwargs":{"k":true}}'


def test_fingerprint_changes_with_the_definition_only() -> None:
    a = Schedule(run_every=60, label="x")
    assert a.fingerprint("code", "{}") == Schedule(run_every=60, label="x").fingerprint(
        "code", "{}"
    )
    assert a.fingerprint("code", "{}") != Schedule(run_every=61, label="x").fingerprint(
        "code", "{}"
    )
    assert a.fingerprint("code", "{}") != a.fingerprint("other", "{}")
    assert a.fingerprint("code", "{}") != a.fingerprint("code", '{"a":1}')
