"""Entry point: `workhorse [--database-url URL] [--project ID] COMMAND`."""

from __future__ import annotations

import logging

import click

from workhorse.cli import codes, projects, queues, runner, server, tasks
from workhorse.cli.common import Context, handle_errors, pass_ctx, table
from workhorse.cli.schedules import schedule
from workhorse.client import DEFAULT_PROJECT


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--database-url",
    envvar="WORKHORSE_DATABASE_URL",
    default=None,
    help="sqlite:///path or postgresql://... (default: sqlite:///var/workhorse.db)",
)
@click.option(
    "--project",
    "project_id",
    envvar="WORKHORSE_PROJECT_ID",
    default=DEFAULT_PROJECT,
    show_default=True,
    help="Project to act in.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO level.")
@click.pass_context
def cli(
    ctx: click.Context, database_url: str | None, project_id: str, verbose: bool
) -> None:
    """Workhorse: background tasks and durable message queues."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    ctx.obj = Context(database_url, project_id)
    ctx.call_on_close(ctx.obj.close)


@cli.command()
@pass_ctx
@handle_errors
def migrate(ctx: Context, /) -> None:
    """Apply pending database migrations."""
    applied = ctx.storage.migrate()
    click.echo(
        f"applied {len(applied)} migrations" if applied else "database is up to date"
    )


@cli.command()
@pass_ctx
@handle_errors
def status(ctx: Context, /) -> None:
    """Task counts per code and status."""
    counts = ctx.client.counts()
    statuses = [
        "queued",
        "running",
        "complete",
        "error",
        "cancelled",
        "timeout",
        "killed",
    ]
    per_code: dict[str, dict[str, int]] = {}
    for code, st, n in counts:
        per_code.setdefault(code, {})[st] = n
    rows = [
        [code, *(per_code[code].get(s, 0) for s in statuses)]
        for code in sorted(per_code)
    ]
    rows.append(
        ["total", *(sum(per_code[c].get(s, 0) for c in per_code) for s in statuses)]
    )
    table("tasks", ["code", *statuses], rows)


@cli.command()
@pass_ctx
@handle_errors
def runners(ctx: Context, /) -> None:
    """Live runners with the age of their last heartbeat."""
    rows = [
        [
            r["id"],
            r["host"],
            r["pid"],
            r["cluster"],
            f"{r['running']}/{r['concurrency']}",
            r["sandbox"],
            r["status"],
            f"{r['age']:.1f}s",
        ]
        for r in ctx.client.runners()
    ]
    table(
        "runners",
        ["id", "host", "pid", "cluster", "running", "sandbox", "status", "heartbeat"],
        rows,
    )


cli.add_command(runner.runner)
cli.add_command(runner.up)
cli.add_command(tasks.task)
cli.add_command(codes.code)
cli.add_command(queues.queue)
cli.add_command(codes.stacks)
cli.add_command(schedule)
cli.add_command(projects.project)
cli.add_command(projects.token)
cli.add_command(server.server)


def main() -> None:
    """Console-script entry point."""
    cli()
