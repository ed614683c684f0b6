"""`workhorse check` and `workhorse backup`: the database's own health and copies."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

import click
from rich.markup import escape

from workhorse.cli.common import (
    Context,
    console,
    emit_json,
    handle_errors,
    pass_ctx,
    table,
)
from workhorse.storage.checks import backup_sqlite, check_database

STYLES = {"ok": "green", "warning": "yellow", "error": "red"}


@click.command()
@click.option("--quick", is_flag=True, help="SQLite: skip comparing indexes with rows.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
@handle_errors
def check(ctx: Context, /, quick: bool, as_json: bool) -> None:
    """Look for damage in the database; exit code 1 if any is found.

    Reads only: safe while Workhorse runs, and on a damaged file or a backup.
    """
    findings = check_database(ctx.settings.database_url, quick=quick)
    if as_json:
        emit_json([asdict(f) for f in findings])
    else:
        table(
            "database",
            ["check", "result", "detail"],
            [
                [
                    f.check,
                    f"[{STYLES[f.level]}]{f.level}[/{STYLES[f.level]}]",
                    escape(f.detail),
                ]
                for f in findings
            ],
        )
    if any(f.level == "error" for f in findings):
        sys.exit(1)


@click.command()
@click.argument("dest", type=click.Path(path_type=Path))
@pass_ctx
@handle_errors
def backup(ctx: Context, /, dest: Path) -> None:
    """Copy the SQLite database to DEST (a new file) while Workhorse runs.

    The copy holds every commit made before it started; it is checked before it
    is put in place. PostgreSQL: use pg_dump or pg_basebackup.
    """
    done = backup_sqlite(ctx.settings.database_url, dest)
    console.print(
        f"backed up to {done.path} ({done.bytes:,} bytes in {done.seconds:.2f} s)",
        highlight=False,
    )
