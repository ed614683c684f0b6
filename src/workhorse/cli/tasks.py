"""`workhorse task queue|list|show|log|cancel|retry`."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import click
from rich.progress import BarColumn, Progress, TextColumn

from workhorse.cli.common import (
    Context,
    console,
    emit_json,
    fmt_time,
    handle_errors,
    pass_ctx,
    table,
)
from workhorse.domain.task import Attempt, Task, TaskOptions


@click.group()
def task() -> None:
    """Queue and inspect tasks."""


@task.command("queue")
@click.argument("code_name")
@click.option("--payload", default="", help="payload string (usually JSON)")
@click.option(
    "--payload-file",
    type=click.Path(exists=True, path_type=Path),
    help="read the payload from a file",
)
@click.option("--priority", type=int, default=None, help="0, 1 or 2 (2 runs first)")
@click.option("--delay", type=float, default=0, help="seconds before it may start")
@click.option("--timeout", type=int, default=None, help="seconds before it is killed")
@click.option("--label", default=None)
@click.option("--cluster", default="default", show_default=True)
@click.option("--retries", type=int, default=None)
@click.option("--retries-delay", type=int, default=None)
@click.option(
    "--unique-key",
    default=None,
    help="queue nothing if a task of this code with this key is queued or running",
)
@click.option(
    "-n",
    "--count",
    type=click.IntRange(1, 10000),
    default=1,
    help="queue this many copies in one transaction",
)
@click.option(
    "--wait",
    "wait_s",
    type=float,
    default=None,
    help="wait this long for the task to finish",
)
@pass_ctx
@handle_errors
def queue_cmd(  # noqa: PLR0917 - one parameter per CLI option
    ctx: Context,
    /,
    code_name: str,
    payload: str,
    payload_file: Path | None,
    wait_s: float | None,
    count: int,
    **opts: object,
) -> None:
    """Queue a task of CODE_NAME."""
    if payload_file is not None:
        payload = payload_file.read_text()
    options = TaskOptions(**opts)  # type: ignore[arg-type]
    tasks, ids = ctx.client.queue_many_as(code_name, [payload] * count, options)
    for task, task_id in zip(tasks, ids, strict=True):
        click.echo(task_id)
        if task_id != task.id:
            click.echo(
                f"{task_id} holds unique key {task.unique_key!r}: nothing queued",
                err=True,
            )
    if wait_s is not None and len(ids) == 1:
        deadline = time.monotonic() + wait_s
        pause = 0.005
        t = ctx.client.get(ids[0])
        while not t.status.is_final and time.monotonic() < deadline:
            time.sleep(pause)
            pause = min(pause * 2, 0.25)
            t = ctx.client.get(ids[0])
        click.echo(f"{t.status}" + (f": {t.error.splitlines()[-1]}" if t.error else ""))


@task.command("list")
@click.option("--code", "code_name", default=None)
@click.option(
    "--status",
    default=None,
    type=click.Choice(
        ["queued", "running", "complete", "error", "cancelled", "timeout", "killed"]
    ),
)
@click.option("--schedule", "schedule_id", default=None)
@click.option("--parent", "parent_id", default=None)
@click.option("--limit", default=30, type=click.IntRange(1, 1000), show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
@handle_errors
def list_cmd(ctx: Context, /, limit: int, as_json: bool, **filters: str | None) -> None:
    """Tasks, newest first."""
    rows = ctx.client.list(limit=limit, **filters)
    if as_json:
        emit_json([_task_json(t) for _, t in rows])
        return
    table(
        None,
        ["id", "code", "status", "pri", "attempt", "created", "duration", "label"],
        [
            [
                t.id,
                t.code_name,
                t.status,
                t.priority,
                t.attempt,
                fmt_time(t.created_at),
                f"{t.duration:.3f}s" if t.duration is not None else "-",
                t.label,
            ]
            for _, t in rows
        ],
    )


def _task_json(t: Task | Attempt) -> dict[str, object]:
    data: dict[str, object] = asdict(t)
    data.pop("lease_token", None)
    return data


@task.command("show")
@click.argument("task_id")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
@handle_errors
def show_cmd(ctx: Context, /, task_id: str, as_json: bool) -> None:
    """One task with its attempts."""
    t = ctx.client.get(task_id)
    attempts = ctx.client.attempts(task_id)
    if as_json:
        emit_json({**_task_json(t), "attempts": [_task_json(a) for a in attempts]})
        return
    fields = [
        ("id", t.id),
        (
            "code",
            f"{t.code_name} (rev {t.code_revision})"
            if t.code_revision
            else t.code_name,
        ),
        ("status", t.status),
        ("priority", t.priority),
        ("label", t.label),
        ("unique", t.unique_key),
        ("cluster", t.cluster),
        ("created", fmt_time(t.created_at)),
        ("started", fmt_time(t.start_time)),
        ("ended", fmt_time(t.end_time)),
        ("duration", f"{t.duration:.3f}s" if t.duration is not None else None),
        ("timeout", f"{t.timeout}s"),
        (
            "retries",
            f"{t.retries} (delay {t.retries_delay}s{', backoff' if t.backoff else ''})",
        ),
        (
            "progress",
            f"{t.progress}% {t.progress_message or ''}"
            if t.progress is not None
            else None,
        ),
        ("payload", t.payload[:200]),
        ("result", t.result),
        ("error", t.error),
    ]
    for name, value in fields:
        if value is not None:
            console.print(f"[bold]{name:>9}[/bold]  {value}")
    if attempts:
        table(
            "attempts",
            ["#", "runner", "started", "ended", "status", "error"],
            [
                [
                    a.attempt,
                    a.runner_id,
                    fmt_time(a.start_time),
                    fmt_time(a.end_time),
                    a.status,
                    (a.error or "").strip().splitlines()[-1] if a.error else None,
                ]
                for a in attempts
            ],
        )


@task.command("log")
@click.argument("task_id")
@click.option(
    "-f", "--follow", is_flag=True, help="keep printing output until the task ends"
)
@pass_ctx
@handle_errors
def log_cmd(ctx: Context, /, task_id: str, follow: bool) -> None:
    """Output (stdout and stderr) of the newest attempt."""
    client = ctx.client
    if not follow:
        click.echo(client.log(task_id), nl=False)
        return
    next_chunk = 0
    pause = 0.05
    while True:
        final = client.get(task_id).status.is_final
        for chunk, text in client.log_since(task_id, next_chunk):
            click.echo(text, nl=False)
            next_chunk = chunk + 1
        if final:
            return
        time.sleep(pause)
        pause = min(pause * 1.5, 0.5)


@task.command("cancel")
@click.argument("task_ids", nargs=-1, required=True)
@pass_ctx
@handle_errors
def cancel_cmd(ctx: Context, /, task_ids: tuple[str, ...]) -> None:
    """Cancel tasks (queued ones at once, running ones are stopped by their runner)."""
    for task_id in task_ids:
        t = ctx.client.cancel(task_id)
        click.echo(
            f"{task_id} {t.status}{' (cancel requested)' if t.cancel_requested else ''}"
        )


@task.command("retry")
@click.argument("task_id")
@click.option("--delay", type=float, default=0)
@pass_ctx
@handle_errors
def retry_cmd(ctx: Context, /, task_id: str, delay: float) -> None:
    """Queue a copy of a finished task; prints the new id."""
    click.echo(ctx.client.retry(task_id, delay=delay))


@task.command("wait")
@click.argument("task_ids", nargs=-1, required=True)
@click.option("--timeout", type=float, default=None)
@pass_ctx
@handle_errors
def wait_cmd(ctx: Context, /, task_ids: tuple[str, ...], timeout: float | None) -> None:
    """Wait for tasks to finish, with a progress bar."""
    deadline = None if timeout is None else time.monotonic() + timeout
    pending = set(task_ids)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
    ) as bar:
        job = bar.add_task("tasks finished", total=len(pending))
        while pending and (deadline is None or time.monotonic() < deadline):
            for task_id in list(pending):
                if ctx.client.get(task_id).status.is_final:
                    pending.discard(task_id)
                    bar.advance(job)
            if pending:
                time.sleep(0.1)
    if pending:
        raise click.ClickException(
            f"{len(pending)} tasks not finished: {json.dumps(sorted(pending))}"
        )
