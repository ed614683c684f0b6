"""`workhorse schedule CODE ...` creates; `schedule list|show|pause|...` manage.

    workhorse schedule report --payload '{"day": 1}' --run-every 3600 \\
        --start-at 2030-01-01T09:00:00Z --label "Critical Task"
    workhorse schedule report --cron "*/5 * * * *" --timezone Europe/Berlin
    workhorse schedule list
    workhorse schedule show ID

The first word after `schedule` is a subcommand when it names one, and the code
to schedule otherwise (`workhorse schedule create CODE ...` is the same). A code
named like a subcommand (say `list`) is scheduled with `schedule create list`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from workhorse.cli.common import (
    Context,
    console,
    emit_json,
    fmt_time,
    handle_errors,
    pass_ctx,
    table,
)
from workhorse.domain.schedule import CatchUp, Overlap, ScheduleInfo, ScheduleStatus
from workhorse.errors import InvalidInput
from workhorse.schedules import ScheduleClient

CREATE = "create"


class ScheduleGroup(click.Group):
    """A group whose unknown first word is the code to schedule (`create` implied)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Insert `create` when the first word is not a subcommand or help."""
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = [CREATE, *args]
        return super().parse_args(ctx, args)


def _schedules(ctx: Context) -> ScheduleClient:
    return ScheduleClient(ctx.client)


def _definition_options(fn: Any) -> Any:
    """Options shared by `create` and `update`; None means 'not given'."""
    options = [
        click.option("--payload", default=None, help="payload string (usually JSON)"),
        click.option(
            "--payload-file",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="read the payload from a file",
        ),
        click.option("--label", default=None, help='free text, e.g. "Critical Task"'),
        click.option("--name", default=None, help="a name for the schedule"),
        click.option(
            "--start-at",
            default=None,
            help="ISO 8601 with a zone, e.g. 2030-01-01T09:00:00Z",
        ),
        click.option("--end-at", default=None, help="no run at or after this time"),
        click.option(
            "--run-every", type=float, default=None, help="seconds between runs"
        ),
        click.option("--cron", default=None, help='five fields, e.g. "*/5 * * * *"'),
        click.option(
            "--timezone", default=None, help="IANA zone for --cron (default UTC)"
        ),
        click.option("--run-times", type=int, default=None, help="stop after N runs"),
        click.option(
            "--priority", type=int, default=None, help="0, 1 or 2 (2 runs first)"
        ),
        click.option(
            "--timeout", type=int, default=None, help="seconds a task may run"
        ),
        click.option(
            "--delay", type=float, default=None, help="seconds each task waits"
        ),
        click.option("--cluster", default=None, help="cluster the tasks run on"),
        click.option(
            "--max-concurrency", type=int, default=None, help="skip while N run"
        ),
        click.option(
            "--overlap",
            type=click.Choice([o.value for o in Overlap]),
            default=None,
            help="allow, or skip a run while the previous one is active",
        ),
        click.option(
            "--catch-up",
            type=click.Choice([c.value for c in CatchUp]),
            default=None,
            help="after downtime: run once (default) or skip the missed runs",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _fields(given: dict[str, Any]) -> dict[str, Any]:
    """The options given on the command line, as `Schedule` fields."""
    payload_file = given.pop("payload_file", None)
    if payload_file is not None:
        if given.get("payload") is not None:
            raise InvalidInput("give --payload or --payload-file, not both")
        given["payload"] = payload_file.read_text()
    return {k: v for k, v in given.items() if v is not None}


@click.group(
    cls=ScheduleGroup,
    no_args_is_help=True,
    subcommand_metavar="CODE [OPTIONS] | COMMAND [ARGS]...",
)
def schedule() -> None:
    """Run a code on a schedule: `workhorse schedule CODE --run-every 3600 ...`.

    Subcommands list, show, pause, resume, cancel and update manage schedules;
    any other first word is the code to schedule (as `schedule create CODE`).
    """


@schedule.command(CREATE)
@click.argument("code_name")
@_definition_options
@click.option("--json", "as_json", is_flag=True, help="print the schedule as JSON")
@pass_ctx
@handle_errors
def create_cmd(ctx: Context, /, code_name: str, as_json: bool, **given: Any) -> None:
    """Schedule CODE_NAME; prints the new schedule's id.

    Without --run-every or --cron the task runs once, at --start-at (default now).
    """
    fields = _fields(given)
    payload = fields.pop("payload", "")
    info = _schedules(ctx).create(code_name, payload, **fields)
    if as_json:
        emit_json(_as_json(info))
        return
    click.echo(info.id)


@schedule.command("list")
@click.option(
    "--status", type=click.Choice([s.value for s in ScheduleStatus]), default=None
)
@click.option("--code", "code_name", default=None)
@click.option("--limit", default=30, type=click.IntRange(1, 1000), show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
@handle_errors
def list_cmd(
    ctx: Context, status: str | None, code_name: str | None, limit: int, as_json: bool
) -> None:
    """Schedules, newest first."""
    found = _schedules(ctx).list(status=status, code_name=code_name, limit=limit)
    if as_json:
        emit_json([_as_json(s) for s in found])
        return
    table(
        None,
        [
            "id",
            "code",
            "label",
            "status",
            "every",
            "runs",
            "errors",
            "last run",
            "next start",
        ],
        [
            [
                s.id,
                s.code_name,
                s.label,
                s.status,
                _every(s),
                f"{s.run_count}/{s.run_times}" if s.run_times else s.run_count,
                s.error_count,
                fmt_time(s.last_run_time),
                fmt_time(s.next_start),
            ]
            for s in found
        ],
    )


@schedule.command("show")
@click.argument("schedule_id")
@click.option(
    "--tasks", "task_limit", default=10, show_default=True, help="recent tasks shown"
)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
@handle_errors
def show_cmd(ctx: Context, schedule_id: str, task_limit: int, as_json: bool) -> None:
    """One schedule with the tasks it queued (newest first)."""
    client = _schedules(ctx)
    info = client.get(schedule_id)
    tasks = client.tasks(schedule_id, limit=task_limit) if task_limit > 0 else []
    if as_json:
        emit_json(
            {
                **_as_json(info),
                "tasks": [{"id": t.id, "status": t.status} for t in tasks],
            }
        )
        return
    rows = [
        ("id", info.id),
        ("code", info.code_name),
        ("name", info.name),
        ("label", info.label),
        ("status", info.status),
        ("timing", _every(info)),
        ("start at", fmt_time(info.start_at)),
        ("end at", fmt_time(info.end_at) if info.end_at else None),
        ("run times", info.run_times),
        ("run count", info.run_count),
        ("skip count", info.skip_count),
        ("error count", info.error_count),
        ("last error", info.msg),
        ("last run", fmt_time(info.last_run_time)),
        ("next start", fmt_time(info.next_start)),
        ("overlap", info.overlap),
        ("catch up", info.catch_up),
        ("payload", info.payload[:200]),
    ]
    for name, value in rows:
        if value is not None:
            console.print(f"[bold]{name:>11}[/bold]  {value}")
    if tasks:
        table(
            "tasks",
            ["id", "status", "created", "label"],
            [[t.id, t.status, fmt_time(t.created_at), t.label] for t in tasks],
        )
        click.echo(f"all of them: workhorse task list --schedule {info.id}")


@schedule.command("pause")
@click.argument("schedule_ids", nargs=-1, required=True)
@pass_ctx
@handle_errors
def pause_cmd(ctx: Context, schedule_ids: tuple[str, ...]) -> None:
    """Stop queueing tasks until resumed."""
    for schedule_id in schedule_ids:
        click.echo(f"{schedule_id} {_schedules(ctx).pause(schedule_id).status}")


@schedule.command("resume")
@click.argument("schedule_ids", nargs=-1, required=True)
@pass_ctx
@handle_errors
def resume_cmd(ctx: Context, schedule_ids: tuple[str, ...]) -> None:
    """Queue again from the next due time (runs missed while paused are skipped)."""
    for schedule_id in schedule_ids:
        info = _schedules(ctx).resume(schedule_id)
        click.echo(f"{schedule_id} {info.status} next {fmt_time(info.next_start)}")


@schedule.command("cancel")
@click.argument("schedule_ids", nargs=-1, required=True)
@pass_ctx
@handle_errors
def cancel_cmd(ctx: Context, schedule_ids: tuple[str, ...]) -> None:
    """End schedules now (tasks already queued are left alone)."""
    for schedule_id in schedule_ids:
        click.echo(f"{schedule_id} {_schedules(ctx).cancel(schedule_id).status}")


@schedule.command("update")
@click.argument("schedule_id")
@_definition_options
@click.option("--code", "code_name", default=None, help="schedule another code")
@pass_ctx
@handle_errors
def update_cmd(ctx: Context, /, schedule_id: str, **given: Any) -> None:
    """Change the given fields; a new timing starts from the next due time."""
    fields = _fields(given)
    if not fields:
        raise InvalidInput("nothing to change: give at least one option")
    info = _schedules(ctx).update(schedule_id, **fields)
    click.echo(f"{info.id} {info.status} next {fmt_time(info.next_start)}")


def _every(info: ScheduleInfo) -> str:
    if info.cron:
        return f"cron {info.cron} ({info.timezone})"
    if info.run_every:
        return f"every {info.run_every:g}s"
    return "once"


def _as_json(info: ScheduleInfo) -> dict[str, Any]:
    data = {name: getattr(info, name) for name in ScheduleInfo.__dataclass_fields__}
    for name in ("status", "overlap", "catch_up"):
        data[name] = str(data[name])
    return data
