"""`workhorse code upload|list|show|revisions|download|stats|pause|resume|delete`,
and `workhorse stacks`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

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
from workhorse.client import RUNTIMES, CodePackage
from workhorse.domain.limits import Limits, format_size, limits_from, parse_size
from workhorse.domain.rate import describe_rate
from workhorse.errors import InvalidInput
from workhorse.settings import Settings
from workhorse.worker.runners.sandbox import choose_launcher
from workhorse.worker.runners.stacks import detect_stacks

DEFAULTS = Limits()
F = TypeVar("F", bound=Callable[..., Any])


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


def _size(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> int | None:
    if value is None:
        return None
    try:
        return parse_size(value)
    except InvalidInput as exc:
        raise click.BadParameter(str(exc)) from None


_upload_options = [
    click.option("--name", required=True, help="code name tasks are queued under"),
    click.option(
        "--command", required=True, help='how to start it, e.g. "python3 main.py"'
    ),
    click.option(
        "--runtime", default="sh", type=click.Choice(RUNTIMES), show_default=True
    ),
    click.option(
        "--env", multiple=True, help="KEY=VALUE set for every task (repeatable)"
    ),
    click.option(
        "--config",
        "config_file",
        type=click.Path(exists=True, path_type=Path),
        help="file given to tasks as CONFIG_FILE",
    ),
    click.option(
        "--max-concurrency",
        type=click.IntRange(1),
        default=None,
        help="tasks of this code running at once, on all runners",
    ),
    click.option(
        "--rate-limit",
        default=None,
        help="task starts allowed on all runners, e.g. 10/s, 100/m, 5/2h",
    ),
    click.option("--retries", type=click.IntRange(0, 100), default=0),
    click.option("--retries-delay", type=click.IntRange(0), default=0),
    click.option("--default-priority", type=click.IntRange(0, 2), default=0),
    click.option(
        "--timeout",
        type=click.IntRange(1, 86400),
        default=3600,
        show_default=True,
        help="seconds of wall-clock time per task",
    ),
    click.option(
        "--memory",
        callback=_size,
        help=f"memory per task, e.g. 256M [{format_size(DEFAULTS.memory)}]",
    ),
    click.option(
        "--cpu",
        type=click.IntRange(1),
        default=None,
        help=f"CPU seconds per task [{DEFAULTS.cpu}]",
    ),
    click.option(
        "--processes",
        type=click.IntRange(8),
        default=None,
        help=f"processes and threads at once [{DEFAULTS.processes}]",
    ),
    click.option(
        "--open-files",
        type=click.IntRange(16),
        default=None,
        help=f"open files per process [{DEFAULTS.open_files}]",
    ),
    click.option(
        "--disk",
        callback=_size,
        help=f"TASK_DIR size, e.g. 100M [{format_size(DEFAULTS.disk)}]",
    ),
    click.option(
        "--network/--no-network",
        default=False,
        show_default=True,
        help="let tasks use the host's network (off: loopback only)",
    ),
    click.option(
        "--image",
        default=None,
        help="Docker image to run in, where a Docker engine is reachable",
    ),
]


def _with_upload_options(fn: F) -> F:
    for option in reversed(_upload_options):
        fn = option(fn)
    return fn


@code.command("upload")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@_with_upload_options
@pass_ctx
@handle_errors
def upload_cmd(ctx: Context, /, source: Path, **opts: Any) -> None:
    """Upload SOURCE (a directory or a .zip) as a new revision of code NAME."""
    config_file: Path | None = opts.pop("config_file")
    package = CodePackage(
        env=_parse_env(opts.pop("env")),
        config=config_file.read_text() if config_file else None,
        priority=opts.pop("default_priority"),
        **opts,
    )
    if source.is_dir():
        row = ctx.client.upload_directory(source, package)
    else:
        row = ctx.client.upload(package, source.read_bytes())
    console.print(f"uploaded [bold]{row['name']}[/bold] revision {row['revision']}")


@code.command("list")
@pass_ctx
@handle_errors
def list_cmd(ctx: Context, /) -> None:
    """Codes of the project."""
    table(
        None,
        ["name", "kind", "rev", "command", "max conc.", "rate", "paused", "updated"],
        [
            [
                c["name"],
                c["kind"],
                c["revision"],
                c["command"],
                c["max_concurrency"],
                describe_rate(c["rate_limit"]),
                "yes" if c["paused"] else "",
                fmt_time(c["updated_at"]),
            ]
            for c in ctx.client.codes()
        ],
    )


def _stored_in(revision: dict[str, Any]) -> str:
    return "blob dir" if revision["blob_path"] else "database"


def _limits_line(explicit: dict[str, int]) -> str:
    limits = limits_from(explicit)
    marked = ", ".join(f"{n} (set)" for n in sorted(explicit))
    return limits.describe() + (f"; {marked}" if marked else "; all defaults")


@code.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
@handle_errors
def show_cmd(ctx: Context, /, name: str, as_json: bool) -> None:
    """One code with its settings and latest revision."""
    c = ctx.client.code(name)
    latest = ctx.client.revisions(name)[0] if c["kind"] == "package" else None
    if as_json:
        emit_json(
            {**c, "latest": latest and {**latest, "options": asdict(latest["options"])}}
        )
        return
    shown = {**c, "rate_limit": describe_rate(c["rate_limit"])}
    rows: list[tuple[str, Any]] = [
        (key, shown[key])
        for key in (
            "name",
            "kind",
            "revision",
            "command",
            "runtime",
            "max_concurrency",
            "rate_limit",
            "retries",
            "retries_delay",
            "priority",
            "timeout",
            "paused",
        )
    ]
    if latest is not None:
        opts = latest["options"]
        rows += [
            ("checksum", latest["checksum"]),
            (
                "size",
                f"{latest['size']} bytes ({_stored_in(latest)})",
            ),
            ("uploaded", fmt_time(latest["created_at"])),
            ("limits", _limits_line(opts.limits)),
            ("network", "on" if opts.network else "off"),
            ("image", opts.image),
            ("env", ", ".join(sorted(opts.env)) or None),
        ]
    for key, value in rows:
        if value is not None:
            console.print(f"[bold]{key:>15}[/bold]  {value}")


@code.command("revisions")
@click.argument("name")
@pass_ctx
@handle_errors
def revisions_cmd(ctx: Context, /, name: str) -> None:
    """Revisions of NAME, newest first."""
    table(
        f"revisions of {name}",
        ["rev", "uploaded", "size", "checksum", "runtime", "command", "stored in"],
        [
            [
                r["revision"],
                fmt_time(r["created_at"]),
                r["size"],
                r["checksum"][:16],
                r["runtime"],
                r["command"],
                _stored_in(r),
            ]
            for r in ctx.client.revisions(name)
        ],
    )


@code.command("download")
@click.argument("name")
@click.option(
    "--revision", type=click.IntRange(1), default=None, help="default: the latest"
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="zip file to write [NAME_REV.zip]",
)
@pass_ctx
@handle_errors
def download_cmd(
    ctx: Context, name: str, revision: int | None, output: Path | None
) -> None:
    """Save a revision's package as a zip file."""
    number, data = ctx.client.download(name, revision)
    path = output or Path(f"{name}_{number}.zip")
    path.write_bytes(data)
    click.echo(f"{path} ({len(data)} bytes, revision {number})")


@code.command("stats")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
@handle_errors
def stats_cmd(ctx: Context, /, name: str, as_json: bool) -> None:
    """Task counts per status for NAME."""
    counts = ctx.client.code_stats(name)
    if as_json:
        emit_json(counts)
        return
    table(f"tasks of {name}", list(counts), [list(counts.values())])


@code.command("pause")
@click.argument("name")
@pass_ctx
@handle_errors
def pause_cmd(ctx: Context, /, name: str) -> None:
    """Stop starting tasks of NAME (queued tasks wait; nothing is lost)."""
    ctx.client.set_paused(name, True)
    click.echo(f"{name} paused")


@code.command("resume")
@click.argument("name")
@pass_ctx
@handle_errors
def resume_cmd(ctx: Context, /, name: str) -> None:
    """Start tasks of NAME again."""
    ctx.client.set_paused(name, False)
    click.echo(f"{name} resumed")


@code.command("delete")
@click.argument("name")
@pass_ctx
@handle_errors
def delete_cmd(ctx: Context, /, name: str) -> None:
    """Delete a code and all its revisions."""
    ctx.client.delete_code(name)
    click.echo(f"{name} deleted")


@click.command()
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def stacks(as_json: bool) -> None:
    """Language runtimes available to code packages on this runner host."""
    found = detect_stacks()
    launcher = choose_launcher(Settings.from_env())
    if as_json:
        emit_json(
            {
                "sandbox": launcher.name,
                "detail": launcher.describe(),
                "stacks": [asdict(s) for s in found],
            }
        )
        return
    table(
        "stacks",
        ["name", "version", "path"],
        [[s.name, s.version, s.path] for s in found],
    )
    console.print(f"sandbox: {launcher.name} ({launcher.describe()})")
