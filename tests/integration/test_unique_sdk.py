"""Unique tasks through the SDK, the CLI and a runner, on both backends."""

from __future__ import annotations

import threading
from collections.abc import Callable

from click.testing import CliRunner

from workhorse import App
from workhorse.cli.main import cli
from workhorse.worker.worker import Worker


def test_a_unique_task_runs_once_per_burst_and_again_after(
    app: App, start_worker: Callable[..., Worker]
) -> None:
    gate, started = threading.Event(), threading.Event()
    runs: list[int] = []

    @app.task(unique=True)
    def refresh(n: int) -> int:
        started.set()
        gate.wait(30)
        runs.append(n)
        return n

    app.register_all()
    first = refresh.queue(1)
    burst = [refresh.queue(1) for _ in range(3)]
    other = refresh.queue(2)
    assert [h.id for h in burst] == [first.id] * 3
    assert [h.duplicate for h in (first, *burst, other)] == [
        False,
        True,
        True,
        True,
        False,
    ]
    assert other.id != first.id

    start_worker(app)
    assert started.wait(30)
    assert first.status == "running"
    assert refresh.queue(1).id == first.id  # held while running, too
    gate.set()
    assert first.wait(timeout=30).result == 1
    assert other.wait(timeout=30).result == 2
    later = refresh.queue(1)
    assert (later.duplicate, later.id != first.id) == (False, True)
    assert later.wait(timeout=30).result == 1
    assert sorted(runs) == [1, 1, 2]


def test_the_cli_queues_with_a_key(app: App, database_url: str) -> None:
    @app.task
    def job() -> None:
        """Only queued here."""

    app.register_all()

    def queue() -> tuple[str, str]:
        result = CliRunner().invoke(
            cli,
            [
                "--database-url",
                database_url,
                "task",
                "queue",
                "job",
                "--unique-key",
                "k",
            ],
        )
        assert result.exit_code == 0, result.output
        return result.stdout.strip(), result.stderr

    (first, note), (again, note_again) = queue(), queue()
    assert again == first
    assert note == ""
    assert note_again.strip() == f"{first} holds unique key 'k': nothing queued"
    shown = CliRunner().invoke(
        cli, ["--database-url", database_url, "task", "show", first]
    )
    assert "unique  k" in shown.output
