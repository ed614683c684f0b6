"""`workhorse code upload|list|show|pause|resume|delete`."""

from __future__ import annotations

from pathlib import Path

import click

from workhorse.cli.common import Context, console, fmt_time, handle_errors, pass_ctx, table
from workhorse.client import RUNTIMES, CodePackage
from workhorse.errors import InvalidInput


@click.group()
def code() -> None:
    """Upload and manage code packages."""


def _parse_env(pairs: tuple[str, ...]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--env takes KEY=VALUE, got {pair!r}")
        env[key] = value
    return env


@code.command("upload")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--name", required=True, help="code name tasks are queued under")
@click.option("--command", required=True, help='how to start it, e.g. "python3 main.py"')
@click.option("--runtime", default="sh", type=click.Choice(RUNTIMES), show_default=True)
@click.option("--env", multiple=True, help="KEY=VALUE set for every task (repeatable)")
@click.option("--config", "config_file", type=click.Path(exists=True, path_type=Path), help="file given to tasks as CONFIG_FILE")
@click.option("--max-concurrency", type=click.IntRange(1), default=None)
@click.option("--retries", type=click.IntRange(0, 100), default=0)
@click.option("--retries-delay", type=click.IntRange(0), default=0)
@click.option("--default-priority", type=click.IntRange(0, 2), default=0)
@click.option("--timeout", type=click.IntRange(1, 86400), default=3600)
@pass_ctx
@handle_errors
def upload_cmd(ctx: Context, source: Path, name: str, command: str, runtime: str, env: tuple[str, ...],
               config_file: Path | None, max_concurrency: int | None, retries: int, retries_delay: int,
               default_priority: int, timeout: int) -> None:
    """Upload SOURCE (a directory or a .zip) as a new revision of code NAME."""
    package = CodePackage(
        name=name, command=command, runtime=runtime, env=_parse_env(env),
        config=config_file.read_text() if config_file else None, max_concurrency=max_concurrency,
        retries=retries, retries_delay=retries_delay, priority=default_priority, timeout=timeout,
    )
    if source.is_dir():
        row = ctx.client.upload_directory(source, package)
    else:
        row = ctx.client.upload(package, source.read_bytes())
    console.print(f"uploaded [bold]{row['name']}[/bold] revision {row['revision']}")


@code.command("list")
@pass_ctx
@handle_errors
def list_cmd(ctx: Context) -> None:
    """Codes of the project."""
    table(None, ["name", "kind", "rev", "command", "max conc.", "paused", "updated"],
          [[c["name"], c["kind"], c["revision"], c["command"], c["max_concurrency"], "yes" if c["paused"] else "",
            fmt_time(c["updated_at"])] for c in ctx.client.codes()])


@code.command("show")
@click.argument("name")
@pass_ctx
@handle_errors
def show_cmd(ctx: Context, name: str) -> None:
    """One code with its settings."""
    c = ctx.client.code(name)
    for key in ("name", "kind", "revision", "command", "runtime", "max_concurrency", "retries",
                "retries_delay", "priority", "timeout", "paused"):
        console.print(f"[bold]{key:>15}[/bold]  {c[key]}")


@code.command("pause")
@click.argument("name")
@pass_ctx
@handle_errors
def pause_cmd(ctx: Context, name: str) -> None:
    """Stop starting tasks of NAME (queued tasks wait; nothing is lost)."""
    ctx.client.set_paused(name, True)
    click.echo(f"{name} paused")


@code.command("resume")
@click.argument("name")
@pass_ctx
@handle_errors
def resume_cmd(ctx: Context, name: str) -> None:
    """Start tasks of NAME again."""
    ctx.client.set_paused(name, False)
    click.echo(f"{name} resumed")


@code.command("delete")
@click.argument("name")
@pass_ctx
@handle_errors
def delete_cmd(ctx: Context, name: str) -> None:
    """Delete a code and all its revisions."""
    ctx.client.delete_code(name)
    click.echo(f"{name} deleted")
