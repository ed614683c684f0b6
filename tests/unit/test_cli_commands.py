"""The CLI loads a command's module only when that command runs."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

from workhorse.cli.main import LAZY_COMMANDS, cli


def test_every_lazy_command_loads_under_its_name() -> None:
    ctx = click.Context(cli)
    for name in LAZY_COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None
        assert command.name == name


def test_listing_shows_eager_and_lazy_commands_once() -> None:
    names = cli.list_commands(click.Context(cli))
    assert names == sorted(set(names))
    assert {"migrate", "status", "runners", *LAZY_COMMANDS} == set(names)


def test_a_runner_starts_without_the_other_commands_modules() -> None:
    # What a runner of Python tasks imports before it claims: no Rich (tables),
    # no cron parser, no sandbox launchers, no other command's module.
    probe = (
        "import sys, click\n"
        "from workhorse.cli.main import cli\n"
        "cli.get_command(click.Context(cli), 'runner')\n"
        "from workhorse.worker.worker import Worker, WorkerConfig\n"
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('rich', 'croniter') or m in ('workhorse.cli.codes', 'workhorse.cli.queues',"
        " 'workhorse.cli.tasks', 'workhorse.worker.runners.sandbox'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == []


def test_tables_never_cut_ids_short(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from rich.console import Console

    from workhorse.cli import common

    out = io.StringIO()
    monkeypatch.setattr(common, "console", Console(file=out, width=60))
    message_id, reservation_id = "6b1512f097cab7e6cd866d63", "e35ecbf7e8f6dd91ba60edce"
    common.table(
        None,
        ["id", "reserved", "reservation_id", "body"],
        [[message_id, 1, reservation_id, "a body long enough to need wrapping " * 3]],
    )
    text = out.getvalue()
    assert message_id in text
    assert reservation_id in text
