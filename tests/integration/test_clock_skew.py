"""A host whose clock is wrong judges nothing by it: ages, due times and
expiries follow the database clock."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from workhorse import App, TaskStatus
from workhorse.maintenance.pruner import Pruner
from workhorse.worker.worker import Worker

YEAR = 365 * 86400.0


def test_a_leader_whose_clock_runs_ahead_forgets_no_live_runner_nor_recent_task(
    app: App, start_worker: Callable[..., Worker], monkeypatch: pytest.MonkeyPatch
) -> None:
    @app.task
    def noop() -> None:
        return None

    worker = start_worker(app)
    task = noop.queue().wait(10)
    assert task.status == TaskStatus.COMPLETE
    ahead = time.time
    monkeypatch.setattr(time, "time", lambda: ahead() + YEAR)

    Pruner(app.storage, retention_seconds=7 * 86400).run_once()

    monkeypatch.undo()
    assert app.get_task(task.id).status == TaskStatus.COMPLETE
    assert worker.id in {r["id"] for r in app.client.runners()}
