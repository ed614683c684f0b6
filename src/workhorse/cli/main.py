"""Entry point: `workhorse [--database-url URL] [--project ID] COMMAND`."""

from __future__ import annotations

import importlib
import logging

import click

from workhorse.cli.common import Context, handle_errors, pass_ctx, table
from workhorse.client import DEFAULT_PROJECT

# Commands defined in their own modules, loaded only when run (or listed by --help):
# a runner's start-up then skips the modules of every other command.
LAZY_COMMANDS = {
    "backup": "workhorse.cli.database:backup",
    "check": "workhorse.cli.database:check",
    "code": "workhorse.cli.codes:code",
    "project": "workhorse.cli.projects:project",
    "queue": "workhorse.cli.queues:queue",
    "runner": "workhorse.cli.runner:runner",
    "schedule": "workhorse.cli.schedules:schedule",
    "server": "workhorse.cli.server:server",
    "stacks": "workhorse.cli.codes:stacks",
    "task": "workhorse.cli.tasks:task",
    "token": "workhorse.cli.projects:token",
    "up": "workhorse.cli.runner:up",
}


class LazyGroup(click.Group):
    """A group whose commands in LAZY_COMMANDS are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = LAZY_COMMANDS.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module_name, _, attr = target.partition(":")
        command: click.Command = getattr(importlib.import_module(module_name), attr)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
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


def main() -> None:
    """Console-script entry point."""
    cli()
