"""`workhorse schedule ...` through Click's test runner, on both backends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from workhorse.cli.main import cli
from workhorse.client import Client
from workhorse.domain.schedule import ScheduleStatus
from workhorse.maintenance.scheduler import Scheduler
from workhorse.schedules import ScheduleClient
from workhorse.storage import Storage

START = "2027-01-15T08:00:00Z"
START_EPOCH = 1_800_000_000.0


@pytest.fixture
def client(storage: Storage) -> Client:
    c = Client(storage)
    c.register_python("work", {})
    c.register_python("list", {})  # a code named like a subcommand
    return c


@pytest.fixture
def schedules(client: Client) -> ScheduleClient:
    return ScheduleClient(client)


@pytest.fixture
def run(database_url: str, client: Client):  # type: ignore[no-untyped-def]
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(cli, ["--database-url", database_url, *args])

    return invoke


def test_schedule_code_creates_a_schedule(run, schedules: ScheduleClient) -> None:  # type: ignore[no-untyped-def]
    result = run(
        "schedule", "work", "--payload", '{"a": 1}', "--label", "Critical Task",
        "--start-at", START, "--run-every", "3600", "--run-times", "5",
        "--priority", "2",
        "--timeout", "60", "--cluster", "default",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    info = schedules.get(result.output.strip())
    assert (info.code_name, info.payload, info.label) == (
        "work",
        '{"a": 1}',
        "Critical Task",
    )
    assert (
        info.start_at,
        info.run_every,
        info.run_times,
        info.priority,
        info.timeout,
    ) == (
        START_EPOCH,
        3600,
        5,
        2,
        60,
    )


def test_options_may_come_before_the_code(run, schedules: ScheduleClient) -> None:  # type: ignore[no-untyped-def]
    result = run("schedule", "--run-every", "60", "work")
    assert result.exit_code == 0, result.output
    assert schedules.get(result.output.strip()).run_every == 60


def test_schedule_with_cron_and_time_zone(run, schedules: ScheduleClient) -> None:  # type: ignore[no-untyped-def]
    result = run(
        "schedule", "work", "--cron", "*/5 * * * *", "--timezone", "Europe/Berlin",
        "--overlap", "skip", "--catch-up", "skip", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["cron"], data["timezone"], data["overlap"], data["catch_up"]) == (
        "*/5 * * * *",
        "Europe/Berlin",
        "skip",
        "skip",
    )


def test_a_code_named_like_a_subcommand_uses_create(
    run, schedules: ScheduleClient
) -> None:  # type: ignore[no-untyped-def]
    result = run("schedule", "create", "list", "--run-every", "60")
    assert result.exit_code == 0, result.output
    assert schedules.get(result.output.strip()).code_name == "list"


def test_payload_file(run, schedules: ScheduleClient, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    payload = tmp_path / "p.json"
    payload.write_text('{"from": "file"}')
    result = run(
        "schedule", "work", "--payload-file", str(payload), "--run-every", "60"
    )
    assert result.exit_code == 0, result.output
    assert schedules.get(result.output.strip()).payload == '{"from": "file"}'


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--run-every", "0.2"], "run_every must be at least"),
        (["--start-at", "2030-01-01T09:00:00"], "no time zone"),
        (
            ["--start-at", START, "--end-at", "2027-01-15T07:00:00Z"],
            "end_at must be after",
        ),
        (["--cron", "every day"], "cron"),
        (["--cron", "0 9 * * *", "--timezone", "Moon/Base"], "time zone"),
        (["--cron", "0 9 * * *", "--run-every", "60"], "not both"),
        (["--priority", "9"], "priority"),
    ],
)
def test_bad_input_exits_2_with_a_message_and_stores_nothing(
    run,
    schedules: ScheduleClient,
    args: list[str],
    message: str,  # type: ignore[no-untyped-def]
) -> None:
    result = run("schedule", "work", *args)
    assert result.exit_code == 2
    assert message in result.output
    assert schedules.list() == []


def test_unknown_code_exits_2(run, schedules: ScheduleClient) -> None:  # type: ignore[no-untyped-def]
    result = run("schedule", "nope", "--run-every", "60")
    assert result.exit_code == 2
    assert "unknown code" in result.output
    assert schedules.list() == []


def test_list_show_pause_resume_update_cancel(
    run, schedules: ScheduleClient, storage: Storage
) -> None:  # type: ignore[no-untyped-def]
    info = schedules.create("work", "{}", start_at=START_EPOCH, run_every=60, label="L")
    Scheduler(storage).run_once(now=START_EPOCH)

    listed = run("schedule", "list")
    assert listed.exit_code == 0, listed.output
    assert "work" in listed.output  # a table sized to the terminal; ids via --json
    as_json = json.loads(
        run("schedule", "list", "--json", "--status", "scheduled").output
    )
    assert [s["id"] for s in as_json] == [info.id]
    assert as_json[0]["run_count"] == 1

    shown = run("schedule", "show", info.id)
    assert shown.exit_code == 0, shown.output
    assert "run count" in shown.output
    [task] = schedules.tasks(info.id)
    assert task.id in shown.output
    detail = json.loads(run("schedule", "show", info.id, "--json").output)
    assert detail["tasks"] == [{"id": task.id, "status": "queued"}]

    assert "paused" in run("schedule", "pause", info.id).output
    assert schedules.get(info.id).status == ScheduleStatus.PAUSED
    assert "scheduled" in run("schedule", "resume", info.id).output

    updated = run("schedule", "update", info.id, "--label", "M", "--run-every", "120")
    assert updated.exit_code == 0, updated.output
    got = schedules.get(info.id)
    assert (got.label, got.run_every) == ("M", 120)
    assert run("schedule", "update", info.id).exit_code == 2  # nothing to change

    assert "cancelled" in run("schedule", "cancel", info.id).output
    assert run("schedule", "cancel", info.id).exit_code == 0  # idempotent
    assert run("schedule", "pause", info.id).exit_code == 1  # a conflict
    assert run("schedule", "show", "missing").exit_code == 2


def test_task_list_by_schedule(
    run, schedules: ScheduleClient, storage: Storage
) -> None:  # type: ignore[no-untyped-def]
    info = schedules.create("work", "{}", start_at=START_EPOCH, run_every=60)
    Scheduler(storage).run_once(now=START_EPOCH)
    [task] = schedules.tasks(info.id)
    result = run("task", "list", "--schedule", info.id, "--json")
    assert result.exit_code == 0, result.output
    assert [t["id"] for t in json.loads(result.output)] == [task.id]


def test_help_lists_both_forms(run) -> None:  # type: ignore[no-untyped-def]
    result = run("schedule", "--help")
    assert result.exit_code == 0
    for word in ("list", "show", "pause", "resume", "cancel", "update", "create"):
        assert word in result.output
    assert "schedule CODE" in result.output
    assert run("schedule").exit_code in (0, 2)  # no arguments: the help
